"""Make Theano 1.0.5 import and run well on a modern Python, before it is imported.

Theano reads its configuration once, when it is first imported, from the
``THEANO_FLAGS`` environment variable and from ``~/.theanorc`` (or the files
named by ``THEANORC``).  On today's machines three things go wrong unless
somebody sets them, and a newcomer should not have to know any of them:

``blas.ldflags``
    Theano asks ``numpy.distutils`` which BLAS numpy was built with; numpy
    wheels since 1.22 no longer say, and ``import theano`` fails with
    ``numpy.distutils.__config__ has no attribute blas_opt_info``.  We link
    OpenBLAS when the C compiler can find it (Debian: ``libopenblas-dev``),
    which is much faster, and otherwise set the empty value, with which Theano
    calls numpy's own BLAS through the numpy C-API.
``floatX``
    The tutorials are written for ``float32``, the type a GPU wants.
``openmp``
    Left off globally (it slows small-minibatch models), and switched on while
    convolutional models compile: see :func:`convolution_openmp`.
Scan's compiled inner loop
    Theano ships ``scan_perform.c`` generated for old Pythons; on 3.11 it
    fails to compile (``longintrepr.h: No such file or directory``) and the
    error surfaces as a crash.  We make its import fail cleanly, so that scan
    takes its own pure-Python implementation (same results, a little slower).

Whatever the user has set, in ``THEANO_FLAGS`` or a ``.theanorc``, wins: we
only fill in what is missing.  :func:`configure` runs when ``dltutorials`` is
imported; ``theano_defaults`` tells what it chose.
"""
import configparser
import contextlib
import logging
import os
import shlex
import shutil
import subprocess
import sys
import warnings

logger = logging.getLogger(__name__)

#: The flags dltutorials added to ``THEANO_FLAGS`` on import, e.g.
#: ``{'blas.ldflags': '-lopenblas', 'floatX': 'float32'}``.
theano_defaults = {}
_configured = False


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


def theanorc_paths(environ=os.environ):
    """The configuration files Theano will read, as it finds them."""
    return [os.path.expanduser(path)
            for path in environ.get('THEANORC', '~/.theanorc').split(os.pathsep)]


def user_has_set(key, environ=os.environ):
    """True when ``key`` ('floatX', 'blas.ldflags', ...) is set in THEANO_FLAGS or a theanorc."""
    if key in parse_theano_flags(environ.get('THEANO_FLAGS', '')):
        return True
    section, _, option = key.rpartition('.')
    rc = configparser.ConfigParser(interpolation=None)
    rc.read(theanorc_paths(environ))
    return rc.has_option(section or 'global', option)


def find_openblas_ldflags(compiler='g++'):
    """Return ``'-lopenblas'`` when ``compiler`` can link OpenBLAS, else ``None``.

    Asks the compiler itself (``-print-file-name``), so the answer is exactly
    what Theano's own compile step will see, and costs a few milliseconds.
    """
    if shutil.which(compiler) is None:
        return None
    try:
        found = subprocess.run([compiler, '-print-file-name=libopenblas.so'],
                               capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    # A found library is printed as a path; an unknown one is echoed back bare.
    return '-lopenblas' if os.path.isabs(found) and os.path.exists(found) else None


def default_flags(environ=os.environ):
    """The flags to add to ``THEANO_FLAGS`` for the settings the user left unset."""
    defaults = {}
    if not user_has_set('blas.ldflags', environ):
        defaults['blas.ldflags'] = find_openblas_ldflags() or ''
    if not user_has_set('floatX', environ):
        defaults['floatX'] = 'float32'
    return defaults


def configure(environ=os.environ):
    """Fill in the Theano settings the user left unset; call before ``import theano``.

    Returns the flags that were added (also kept in ``theano_defaults``).
    Calling it again, or after Theano was imported, changes nothing.
    """
    # Theano's own modules use numpy.distutils and np.bool, each of which
    # warns on every import: noise the user can do nothing about.
    warnings.filterwarnings('ignore', category=DeprecationWarning, module=r'theano(\.|$)')
    warnings.filterwarnings('ignore', category=DeprecationWarning,
                            message=r'\s*`numpy.distutils` is deprecated')
    warnings.filterwarnings('ignore', category=UserWarning,
                            message='pkg_resources is deprecated')  # imported by scan
    if sys.version_info >= (3, 11):
        # None in sys.modules makes "from . import scan_perform_ext" raise
        # ImportError, which Theano's scan answers with its Python loop.
        sys.modules.setdefault('theano.scan_module.scan_perform_ext', None)
    global _configured
    if _configured or 'theano' in sys.modules:
        return dict(theano_defaults)
    _configured = True
    added = default_flags(environ)
    if added:
        extra = ','.join('%s=%s' % item for item in added.items())
        current = environ.get('THEANO_FLAGS', '')
        environ['THEANO_FLAGS'] = current + ',' + extra if current else extra
    if added.get('blas.ldflags') == '':
        # Theano warns about this itself; say what to do about it.
        logger.info('dltutorials: OpenBLAS not found, using numpy\'s BLAS (slower); '
                    'install it (Debian/Ubuntu: apt-get install libopenblas-dev) '
                    'or set blas.ldflags in ~/.theanorc')
    theano_defaults.update(added)
    return dict(added)


def convolution_openmp(environ=os.environ):
    """A context in which to compile convolutional models: Theano's OpenMP on.

    Measured here on 2 cores, OpenMP makes LeNet's convolution and pooling
    1.5x faster, but makes the small-minibatch MLP 2.5x slower (idle OpenMP
    threads compete with OpenBLAS's), so it is not switched on globally:
    only the ops compiled inside this context use it.  Nothing changes when
    the user set ``openmp`` themselves, when ``OMP_NUM_THREADS=1``, or on a
    single core.
    """
    import theano

    if (user_has_set('openmp', environ) or environ.get('OMP_NUM_THREADS') == '1'
            or (os.cpu_count() or 1) < 2):
        return contextlib.nullcontext()
    return theano.change_flags(openmp=True)
