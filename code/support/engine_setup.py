"""Choose the engine (Theano or PyTensor) and set it up to run well, before it is imported.

Theano and PyTensor read their configuration once, when first imported, from
an environment variable (``THEANO_FLAGS``, ``PYTENSOR_FLAGS``) and a file
(``~/.theanorc``, ``~/.pytensorrc``).  On today's machines several things go
wrong unless somebody sets them, and a newcomer should not have to know any
of them:

``blas.ldflags``
    The BLAS the engine's C code links.  Theano 1.0.5 asks
    ``numpy.distutils``, which numpy wheels no longer answer, and fails to
    import; PyTensor finds none in a pip-only install and warns.  We give
    both the system OpenBLAS when the compiler can link it, else the OpenBLAS
    of the ``scipy-openblas32`` wheel (see :mod:`dltutorials.support.openblas`),
    and make OpenBLAS use the right kernel on CPUs it does not recognise.
``floatX``
    The tutorials are written for ``float32``, the type a GPU wants.
``linker`` (PyTensor)
    PyTensor's C backend (``cvm``) rather than its Numba default, which
    compiles each function for 10-60 s the first time.
``allow_gc``
    ``False``: a compiled function keeps the memory of its intermediate
    results between calls instead of freeing it and asking for it again on
    the next call.  Fresh buffers of several megabytes come from the
    operating system page by page: the row-by-row LSTM's training step took
    18.8 ms with the engines' default and 14.5 ms without (Theano, batch 128).
    The price is that memory stays held while a function is alive.
``OPENBLAS_THREAD_TIMEOUT`` (an environment variable)
    ``20`` where we link an OpenBLAS: after a call, its idle threads spin on
    the cores for 2**20 clock ticks (about 0.4 ms) before they sleep,
    instead of OpenBLAS's 2**28 (0.1 s).  Spinning that long took the cores
    from everything else the process ran on its own threads: the recurrent
    layers' fused op splits the minibatch over the cores (the LSTM's step,
    batch 128: 16.5 ms with OpenBLAS's wait, 14.4 with ours), and Theano's
    OpenMP convolution (a LeNet epoch: 20.4 s, 13.0 with ours; 2 cores).
    The price: the MLP at batch 20, whose small products follow each other
    closely, took 2.67 s an epoch instead of 2.50.  Set before the library
    is loaded; your own value wins.
``gcc.cxxflags=-g0 -fopenmp-simd -DDLTUTORIALS_VECTOR_MATH=5``
    ``-g0``: the engines compile every module with debugging information
    (``-g``), which nobody reads outside a debugger and which took a fifth
    of each module's compile time.  ``-fopenmp-simd``, where glibc's vector
    math library has the functions (x86-64 Linux,
    glibc 2.35 or newer): the elementwise loops the engine compiles call
    ``tanhf``, ``expf`` ... on 8 or 16 values at a time instead of one, IEEE
    semantics kept (see :mod:`dltutorials.support.vector_math`): ``tanh(x +
    b)`` 16.8 -> 3.2 ns a value, ``softplus`` 21.1 -> 2.9.  Set your own
    ``gcc.cxxflags`` without the flag and the loops call the scalar functions.
``optimizer_excluding=local_dot22_to_dot22scalar``
    The rewrite that folds ``scalar * dot(a, b)`` into one GEMM call does so
    even when the plain product is needed too, so that the product is then
    computed twice: with gradient clipping (the product feeds both the
    gradient's norm and the clipped gradient) PyTensor computed the input
    weights' gradient of the language-model LSTM twice, 3.5 ms of a 95 ms
    minibatch.  Without the rewrite the scaling is one elementwise pass.
``openmp`` (Theano)
    Left off globally (it slows small-minibatch models), and switched on
    while convolutional models compile, when that is safe: see
    :func:`convolution_openmp`.
Scan's compiled inner loop (Theano)
    Theano ships ``scan_perform.c`` generated for old Pythons; on 3.11 it
    fails to compile (``longintrepr.h: No such file or directory``) and the
    error surfaces as a crash.  We make its import fail cleanly, so that scan
    takes its own pure-Python implementation (same results, a little slower).

Whatever the user has set, in the flags variable or the engine's rc file,
wins: we only fill in what is missing.  :func:`configure` runs when
``dltutorials`` is imported; ``theano_defaults`` tells what it chose and
``python -m dltutorials`` prints it.
"""
import configparser
import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import os
import shlex
import sys
import types
import warnings

from dltutorials.support import openblas, vector_math

logger = logging.getLogger(__name__)

#: The environment variable that picks the engine: ``theano`` or ``pytensor``.
ENGINE_VARIABLE = 'DLTUTORIALS_ENGINE'

#: Per engine: its flags variable, its rc-file variable and default file, and
#: how a (section, option) pair is spelt in the flags.
ENGINES = {
    'theano': ('THEANO_FLAGS', 'THEANORC', '~/.theanorc', '.'),
    'pytensor': ('PYTENSOR_FLAGS', 'PYTENSORRC', '~/.pytensorrc', '__'),
}

#: log2 of the clock ticks OpenBLAS's idle threads spin before they sleep.
SPIN_TIMEOUT = '20'

#: The flags dltutorials added to the engine's flags variable on import, e.g.
#: ``{'blas.ldflags': '-lopenblas', 'floatX': 'float32'}``.
theano_defaults = {}
#: The BLAS library that dltutorials linked (a :class:`~dltutorials.support.openblas.Blas`),
#: or None when the user chose theirs or none was found.
blas_in_use = None
_configured = False


def engine_name(environ=os.environ):
    """``'theano'`` or ``'pytensor'``: the user's choice, else Theano where it is installed.

    Theano 1.0.5 installs only on Python 3.11 and older; ``setup.py``
    installs PyTensor on 3.12 and newer.
    """
    chosen = environ.get(ENGINE_VARIABLE, '').strip().lower()
    if chosen in ENGINES:
        return chosen
    if chosen:
        raise ImportError('%s must be theano or pytensor, not %r'
                          % (ENGINE_VARIABLE, environ[ENGINE_VARIABLE]))
    if sys.version_info < (3, 12) and importlib.util.find_spec('theano') is not None:
        return 'theano'
    return 'pytensor'


def parse_theano_flags(flags):
    """Return the ``THEANO_FLAGS`` string ``flags`` as a dict, the way Theano reads it.

    >>> parse_theano_flags('floatX=float64,blas.ldflags=')
    {'floatX': 'float64', 'blas.ldflags': ''}
    """
    splitter = shlex.shlex(flags, posix=True)
    splitter.whitespace = ','
    splitter.whitespace_split = True
    settings = {}
    for pair in splitter:
        key, sep, value = pair.strip().partition('=')
        if sep:
            settings[key] = value
    return settings


def flag_key(key, engine):
    """``key`` ('floatX', 'blas.ldflags') as ``engine`` spells it in its flags variable."""
    section, _, option = key.rpartition('.')
    return section + ENGINES[engine][3] + option if section else option


def theanorc_paths(environ=os.environ, engine='theano'):
    """The configuration files ``engine`` will read, as it finds them."""
    _, rc_variable, rc_default, _ = ENGINES[engine]
    return [os.path.expanduser(path)
            for path in environ.get(rc_variable, rc_default).split(os.pathsep)]


def user_has_set(key, environ=os.environ, engine='theano'):
    """True when ``key`` ('floatX', 'blas.ldflags', ...) is set in ``engine``'s flags or rc file."""
    if flag_key(key, engine) in parse_theano_flags(environ.get(ENGINES[engine][0], '')):
        return True
    section, _, option = key.rpartition('.')
    rc = configparser.ConfigParser(interpolation=None)
    try:
        rc.read(theanorc_paths(environ, engine))
    except configparser.Error:
        return False  # the engine will say what is wrong with the file
    return rc.has_option(section or 'global', option)


def default_flags(environ=os.environ, engine='theano', find_blas=openblas.find_blas):
    """The flags to add for the settings the user left unset, and the BLAS they link.

    Returns ``(flags, blas)``: ``flags`` keyed as in ``theano_defaults``;
    ``blas`` the :class:`~dltutorials.support.openblas.Blas` chosen, or None.
    """
    defaults, blas = {}, None
    if not user_has_set('blas.ldflags', environ, engine):
        blas = find_blas()
        defaults['blas.ldflags'] = blas.ldflags if blas else ''
    if not user_has_set('floatX', environ, engine):
        defaults['floatX'] = 'float32'
    if not user_has_set('allow_gc', environ, engine):
        defaults['allow_gc'] = 'False'
    if not user_has_set('gcc.cxxflags', environ, engine):
        defaults['gcc.cxxflags'] = ' '.join(
            ['-g0'] + ([vector_math.FLAG, vector_math.CODE_VERSION_FLAG]
                       if vector_math.vector_functions() else []))
    if not user_has_set('optimizer_excluding', environ, engine):
        defaults['optimizer_excluding'] = 'local_dot22_to_dot22scalar'
    if engine == 'pytensor' and not (user_has_set('mode', environ, engine)
                                     or user_has_set('linker', environ, engine)):
        defaults['linker'] = 'cvm'
    return defaults, blas


def _quiet_engine_warnings():
    # Theano's own modules use numpy.distutils and np.bool, each of which
    # warns on every import: noise the user can do nothing about.
    warnings.filterwarnings('ignore', category=DeprecationWarning, module=r'theano(\.|$)')
    warnings.filterwarnings('ignore', category=DeprecationWarning,
                            message=r'\s*`numpy.distutils` is deprecated')
    warnings.filterwarnings('ignore', category=UserWarning,
                            message='pkg_resources is deprecated')  # imported by scan


def _standard_distutils(environ=os.environ):
    """Import Python's own ``distutils`` for Theano, not setuptools' stand-in: 0.1 s a start.

    Theano imports ``distutils`` (to find the compiler and Python's library).
    In a virtualenv, setuptools puts its own copy in front (a finder that
    ``distutils-precedence.pth`` adds to ``sys.meta_path`` as Python starts),
    and importing that copy imports most of setuptools: ``python
    code/mlp.py --help`` took 0.72 s instead of 0.61 s with Python's own
    (``SETUPTOOLS_USE_DISTUTILS=stdlib``; medians of 6, interleaved), and 0.76
    s instead of 0.72 s with this function (medians of 8, a busier hour), on
    every start of every script.  Python 3.11 still has its own, which is what
    Theano was written for; the finder is stepped around for that one import.  A
    ``distutils`` already imported, or the user's SETUPTOOLS_USE_DISTUTILS,
    stays as it is.
    """
    if 'distutils' in sys.modules or 'SETUPTOOLS_USE_DISTUTILS' in environ or \
            sys.version_info >= (3, 12):
        return
    finders = [finder for finder in sys.meta_path
               if type(finder).__module__ == '_distutils_hack']
    for finder in finders:
        sys.meta_path.remove(finder)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', DeprecationWarning)   # distutils is deprecated
            import distutils  # noqa: F401
    except ImportError:
        pass                                   # a Python without it: setuptools' then
    finally:
        sys.meta_path[0:0] = finders


class _ScipyDeferral(importlib.abc.MetaPathFinder):
    """While Theano is imported: ``scipy.stats`` loaded lazily, ``scipy.signal`` not at all."""

    def find_spec(self, name, path, target=None):
        if name == 'scipy.signal':
            raise ModuleNotFoundError('not while Theano is imported', name=name)
        if name == 'scipy.stats':
            spec = importlib.machinery.PathFinder.find_spec(name, path)
            if spec is not None:
                spec.loader = importlib.util.LazyLoader(spec.loader)
            return spec
        return None


@contextlib.contextmanager
def scipy_deferred():
    """Import Theano without the two scipy modules it loads and does not use: 0.2 s a start.

    Theano's import loads ``scipy.stats`` (for one operation's Python code,
    ``chi2sf``) and ``scipy.signal`` (which loads ``scipy.stats`` too), on
    every start of every script: ``python code/mlp.py --help`` took 0.66 s
    with them and 0.42 s without (medians of 8, interleaved).  Since scipy
    1.8 the names Theano's convolution modules import from ``scipy.signal``
    (``signaltools._valfrommode`` ...) no longer exist, so that import fails
    after loading it all, and Theano goes on without them; here it fails
    before.  ``scipy.stats`` is given as a lazy
    module, loaded if anything uses it, and taken back afterwards if nothing
    did: scipy (1.9 and later) loads its submodules on first use, so that
    ``scipy.stats.chi2`` still works, and ``import scipy.stats`` gives the
    real module.  Either module imported already, or a scipy without lazy
    submodules (before 1.9): nothing changes.
    """
    try:
        import scipy
    except ImportError:
        scipy = None
    loads_submodules_on_use = callable(vars(scipy).get('__getattr__')) if scipy else False
    if not loads_submodules_on_use or {'scipy.stats', 'scipy.signal'} & set(sys.modules):
        yield
        return
    finder = _ScipyDeferral()
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
        stats = sys.modules.get('scipy.stats')
        if stats is not None and type(stats) is not types.ModuleType:    # still lazy: unused
            del sys.modules['scipy.stats']
            if vars(scipy).get('stats') is stats:
                del scipy.stats


def configure(environ=os.environ):
    """Fill in the engine settings the user left unset; call before the engine is imported.

    Returns the flags that were added (also kept in ``theano_defaults``).
    Calling it again, or after the engine was imported, changes nothing.
    """
    global _configured, blas_in_use
    engine = engine_name(environ)
    if engine == 'theano':
        _quiet_engine_warnings()
        _standard_distutils(environ)
        if sys.version_info >= (3, 11):
            # None in sys.modules makes "from . import scan_perform_ext" raise
            # ImportError, which Theano's scan answers with its Python loop.
            sys.modules.setdefault('theano.scan_module.scan_perform_ext', None)
    if _configured or engine in sys.modules:
        return dict(theano_defaults)
    _configured = True
    added, blas = default_flags(environ, engine)
    if blas is not None:
        # Before the engine loads the library: OPENBLAS_CORETYPE and
        # OPENBLAS_THREAD_TIMEOUT are read then.
        openblas.choose_kernel(blas, environ)
        environ.setdefault('OPENBLAS_THREAD_TIMEOUT', SPIN_TIMEOUT)
        blas_in_use = blas
    if added:
        flags_variable = ENGINES[engine][0]
        extra = ','.join('%s=%s' % (flag_key(key, engine), value)
                         for key, value in added.items())
        current = environ.get(flags_variable, '')
        environ[flags_variable] = current + ',' + extra if current else extra
    if added.get('blas.ldflags') == '':
        logger.info("dltutorials: no OpenBLAS found, using numpy's BLAS (slower); "
                    "pip install scipy-openblas32, or apt-get install libopenblas-dev")
    theano_defaults.update(added)
    return dict(added)


def openmp_refusal(environ=os.environ):
    """Why the convolution must not use OpenMP here, or None when it may.

    Theano's convolution (CorrMM) runs one image per OpenMP thread, each
    calling the BLAS.  That is only safe with a linked BLAS: Theano's
    fallback to numpy's BLAS calls into Python from threads that do not hold
    the GIL, and the process aborts.
    """
    from dltutorials.support.engine import ENGINE, theano

    if ENGINE != 'theano':
        return 'not used by PyTensor'
    if not theano.config.blas.ldflags:
        return "unsafe with numpy's BLAS"
    if user_has_set('openmp', environ):
        return 'set by you'
    if environ.get('OMP_NUM_THREADS') == '1' or (os.cpu_count() or 1) < 2:
        return 'one thread'
    return None


def refuse_unsafe_openmp(config):
    """Turn Theano's ``openmp`` off where it would abort the convolutions (numpy's BLAS).

    The one setting of a user's that is not obeyed: with ``openmp=True`` and
    ``blas.ldflags`` empty, the first convolutional training step aborts the
    process (see :func:`openmp_refusal`).  Says so in one warning.
    """
    if config.openmp and not config.blas.ldflags:
        config.openmp = False
        logger.warning("dltutorials: openmp=True is ignored: with numpy's BLAS (blas.ldflags "
                       "empty) Theano's convolution aborts under OpenMP; link a BLAS "
                       "(pip install scipy-openblas32) to use it")


def convolution_openmp(environ=os.environ):
    """A context in which to compile convolutional models: Theano's OpenMP on, where safe.

    Measured here on 2 cores (LeNet training step, batch 500): with the
    system OpenBLAS, OpenMP made it 1.1-1.5x faster when idle; with the
    scipy-openblas32 wheel, 1.2x slower when idle (239-269 ms against 200 ms).
    But when another process busied one core, both collapsed without it
    (system 600-1850 ms, wheel 630-700 ms: OpenBLAS's own threads wait on
    each other) and held with it (360-380 ms, 295-307 ms), so it is on with
    either library.  Globally it made the small-minibatch MLP 2.5x slower
    (idle OpenMP threads compete with OpenBLAS's), so only the ops compiled
    inside this context use it.  Nothing changes where :func:`openmp_refusal`
    says no.
    """
    if openmp_refusal(environ):
        return contextlib.nullcontext()
    from dltutorials.support.engine import change_flags
    return change_flags(openmp=True)


def describe():
    """Lines saying what the tutorials run on: Python, engine, floatX, BLAS, OpenMP, math."""
    from dltutorials.support.engine import ENGINE, theano

    ldflags = theano.config.blas__ldflags if ENGINE == 'pytensor' else theano.config.blas.ldflags
    if blas_in_use is not None:
        kernel = blas_in_use.kernel or 'unknown'
        if blas_in_use.kernel_chosen_by_us:
            kernel += ' (chosen by dltutorials: OpenBLAS saw a generic CPU)'
        elif os.environ.get('OPENBLAS_CORETYPE'):
            kernel += ' (OPENBLAS_CORETYPE)'
        blas = '%s, %s, kernel %s' % (blas_in_use.source, blas_in_use.library, kernel)
    elif ldflags:
        blas = 'set by you: %s' % ldflags
    else:
        blas = "numpy's BLAS through the C-API (slower; %s)" % (
            'no OpenBLAS found' if 'blas.ldflags' in theano_defaults else 'you set it empty')
    refusal = openmp_refusal()
    cxxflags = (theano.config.gcc__cxxflags if ENGINE == 'pytensor'
                else theano.config.gcc.cxxflags).split()
    functions = vector_math.vector_functions()
    if not functions:
        math = "scalar (no vector math library: glibc's libmvec 2.35 or newer on x86-64 Linux)"
    elif vector_math.FLAG not in cxxflags:
        math = 'scalar (your gcc.cxxflags have no %s)' % vector_math.FLAG
    else:
        math = 'vectorised (libmvec: %s)' % ', '.join(functions[:6] + ('...',))
    lines = [
        ('Python', sys.version.split()[0]),
        ('engine', '%s %s' % ('Theano' if ENGINE == 'theano' else 'PyTensor', theano.__version__)
         + ('' if ENGINE == 'theano' else ', linker %s' % theano.config.linker)),
        ('floatX', theano.config.floatX),
        ('BLAS', blas),
        ('OpenMP', 'for convolutions' if refusal is None else
         'on (set by you)' if refusal == 'set by you' and theano.config.openmp else
         'off (%s)' % refusal),
        ('cores', str(os.cpu_count())),
        ('math', math),
    ]
    return ['%-7s %s' % pair for pair in lines]
