"""Theano's disk cache of compiled C code: found again by the next process, and read cheaply.

See ``code/support/compile_cache.py``.  Theano only: PyTensor has neither bug.
"""
import os
import pickle
import subprocess
import sys
import textwrap

import numpy
import pytest

from conftest import REPO
from dltutorials.support.engine import ENGINE

pytestmark = pytest.mark.skipif(ENGINE != 'theano', reason='fixes for Theano 1.0.5')

# A small MLP's training step: Dot22, the softmax cross-entropy, DimShuffle and fused
# elementwise ops (Composite), the ops the fixes are about.  Prints the modules in the cache
# and what loading the cache cost: how many Composite inner graphs it built, how many
# Composite ops the keys it read hold; then the loss of three steps.
SCRIPT = textwrap.dedent('''
    import glob, os
    import numpy
    import dltutorials
    from dltutorials.support.engine import theano, T
    from theano.scalar.basic import Composite

    built = []
    init_fgraph = Composite.init_fgraph
    Composite.init_fgraph = lambda op: built.append(op) or init_fgraph(op)
    cache = theano.gof.cc.get_module_cache()
    in_keys = sum(isinstance(getattr(part, 'scalar_op', None), Composite)
                  for key in cache.entry_from_key for part in key[1] if isinstance(part, tuple)
                  for part in part)
    print('built', len(built))
    print('held', in_keys)

    rng = numpy.random.RandomState(0)
    x = theano.shared(rng.rand(20, 30).astype('float32'))
    y = theano.shared(rng.randint(0, 5, 20).astype('int64'))
    W1 = theano.shared(rng.randn(30, 16).astype('float32') * 0.1)
    W2 = theano.shared(numpy.zeros((16, 5), 'float32'))
    b = theano.shared(numpy.zeros(16, 'float32'))
    hidden = T.tanh(T.dot(x, W1) + b)
    loss = T.nnet.categorical_crossentropy(T.nnet.softmax(T.dot(hidden, W2)), y).mean()
    step = theano.function([], loss, updates=[(p, p - 0.5 * g) for p, g in
                                              zip([W1, W2, b], T.grad(loss, [W1, W2, b]))])
    losses = [float(step()) for _ in range(3)]
    modules = glob.glob(os.path.join(theano.config.compiledir, 'tmp*', 'key.pkl'))
    print('modules', len(modules))
    print('losses', ' '.join(repr(value) for value in losses))
''')


def run_in(compile_folder):
    environ = dict(os.environ, THEANO_FLAGS='base_compiledir=%s' % compile_folder)
    result = subprocess.run([sys.executable, '-c', SCRIPT], capture_output=True, text=True,
                            cwd=str(REPO), env=environ, timeout=600)
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(' ', 1) for line in result.stdout.splitlines())
    return lines


def test_a_second_process_compiles_nothing_and_reads_the_cache_without_building_graphs(
        tmp_path):
    first = run_in(tmp_path)
    second = run_in(tmp_path)
    assert int(first['modules']) >= 5
    assert second['modules'] == first['modules']
    assert second['losses'] == first['losses']
    losses = [float(value) for value in first['losses'].split()]
    assert losses[0] == pytest.approx(numpy.log(5), rel=1e-3) and losses[2] < losses[0]
    # The second process read keys holding fused ops, and built none of their inner graphs.
    assert int(second['held']) >= 1 and int(second['built']) == 0


def test_an_unpickled_composite_builds_its_inner_graph_when_first_used():
    from theano import scalar
    from theano.scalar.basic import Composite

    x, y = scalar.float32('x'), scalar.float32('y')
    op = Composite([x, y], [scalar.tanh(x * y) + scalar.exp(-y)])
    c_code = op.c_code(None, 'node', ['a', 'b'], ['out'], {'fail': ''})
    loaded = pickle.loads(pickle.dumps(op))
    assert 'fgraph' not in loaded.__dict__
    assert loaded == op and hash(loaded) == hash(op)
    # Pickled again before any use (a cache entry's keys are written again when one is added).
    again = pickle.loads(pickle.dumps(loaded))
    assert again == op and 'fgraph' not in again.__dict__
    assert loaded.impl(0.5, 2.0) == pytest.approx(numpy.tanh(1.0) + numpy.exp(-2.0))
    assert 'fgraph' in loaded.__dict__ and len(loaded.fgraph.apply_nodes) == 5
    assert loaded.c_code(None, 'node', ['a', 'b'], ['out'], {'fail': ''}) == c_code
    assert str(again) == str(op)
    with pytest.raises(AttributeError):
        loaded.no_such_attribute
