"""Let Theano 1.0.5 reuse the C code it compiled in an earlier process.

Theano keys each compiled C module by the versions of the code in it, and
keeps it in its disk cache (``~/.theano``) for the next process.  Two bugs
of Theano 1.0.5 defeat that for ops every model uses, so that each script
started compiled them again with ``g++``: 4 to 5 s at the start of an MLP
run (a one-epoch run on the sample: 6.6 s before, 2.6 s after, measured
here), more for LeNet, and a cache that grew by one module per run.

* **Ops without properties.**  Theano puts every op's ``__props__`` into
  the version list and treats an empty entry as "unversioned, do not
  cache": an op with ``__props__ = ()`` (``Dot22``, ``ScalarFromTensor``,
  the softmax cross-entropies ...) was never cached (``THEANO_FLAGS=
  cmodule.warn_no_version=True`` names them).  Their empty ``__props__`` is
  replaced by an empty tuple that is true.  Nothing else changes:
  Theano built each op class's ``__eq__``, ``__hash__`` and ``__str__``
  from the original ``__props__`` when the class was made, and the tuple
  pickles (into the cache's ``key.pkl``) as a plain ``()``, equal to it with
  the same hash.
* **Ops whose C code is in a file** (``COp``: ``DimShuffle``, the
  convolution's ``CorrMM`` ...) are versioned by Python's ``hash()`` of
  their code, which changes with every process (hash randomisation): a new
  key, a new compilation and a new cache entry each time.  Their version
  is now a SHA-256 digest of the same code.

And one cost that grows with the cache: every process reads the keys of
every module in it (``key.pkl``) before its first compilation, and each
fused elementwise op (``Composite``) in those keys rebuilt its inner graph
as it was unpickled, almost half of the time it took: 1.8 s per process for
the 2,100 modules of a folder after the test suite, 1.0 s without it.  The
inner graph of an unpickled ``Composite`` is now built when something
first asks for it (its C code, which is what the cache compares, is pickled
with it).
"""
import hashlib

import theano


class _EmptyProperties(tuple):
    """``()`` that is true: an op without properties, whose code is versioned all the same."""

    def __bool__(self):
        return True

    def __reduce__(self):
        return (tuple, ())


def _op_classes(base):
    for subclass in base.__subclasses__():
        yield subclass
        yield from _op_classes(subclass)


def version_ops_without_properties():
    """Give every op class imported so far whose ``__props__`` is ``()`` a true one; return them."""
    patched = []
    for op_class in set(_op_classes(theano.gof.Op)):
        if op_class.__dict__.get('__props__', None) == () and \
                not isinstance(op_class.__dict__['__props__'], _EmptyProperties):
            op_class.__props__ = _EmptyProperties()
            patched.append(op_class)
    return patched


def stable_code_version(op):
    """A ``COp``'s cache version from a digest of its C code: the same in every process."""
    digest = hashlib.sha256('\0'.join(op.func_codes).encode('utf-8')).hexdigest()
    version = ('sha256:' + digest[:32],)
    if hasattr(op, 'params_type'):
        version += (op.params_type.c_code_cache_version(),)
    return version


version_ops_without_properties()
theano.gof.op.COp.c_code_cache_version = stable_code_version


_Composite = theano.scalar.basic.Composite


def _unpickle_without_inner_graph(op, state):
    """``Composite.__setstate__``, less the inner graph: built on first use."""
    op.__dict__.update(state)
    op.prepare_node_called = set()


def _inner_graph_when_first_used(op, name):
    """``Composite.__getattr__``: only ever called for attributes the op lacks."""
    if name in ('fgraph', '_impls') and 'inputs' in op.__dict__:
        op.init_fgraph()
        op.init_py_impls()
        return op.__dict__[name]
    raise AttributeError('%r object has no attribute %r' % (type(op).__name__, name))


def _pickled_state(op):
    """``Composite.__getstate__`` for an op whose inner graph may not be built yet."""
    state = dict(op.__dict__)
    for derived in ('fgraph', '_impls', 'prepare_node_called'):
        state.pop(derived, None)
    return state


_Composite.__setstate__ = _unpickle_without_inner_graph
_Composite.__getattr__ = _inner_graph_when_first_used
_Composite.__getstate__ = _pickled_state
