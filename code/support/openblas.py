"""Find a BLAS for the engine's C code, and make OpenBLAS use the right kernel.

Theano and PyTensor compile their matrix products into C that calls the
Fortran BLAS (``sgemm_``, ``dgemm_``, ...).  Without a library to link they
fall back to numpy's C-API, which is slower and, called from OpenMP threads
that do not hold the GIL, crashes.  We look, in this order, for

1. the system OpenBLAS (Debian: ``libopenblas-dev``), when the C compiler
   can link it;
2. the ``scipy-openblas32`` wheel, a dependency of this package, so a plain
   ``pip install`` always has one.  Its symbols carry a ``scipy_`` prefix
   (``scipy_sgemm_``), so the link flags also rename each BLAS routine the
   engine's C code calls with a preprocessor define.

OpenBLAS picks its kernel from the CPU's identity when it is loaded.  Inside
virtual machines that hide the CPU model it may fall back to a generic kernel
(``Prescott``, no AVX) that is five times slower on an AVX-512 machine.  We
ask the library, in a child process so that nothing is loaded here yet, which
kernel it chose; when that is a generic one and the CPU has AVX2 or AVX-512,
we set ``OPENBLAS_CORETYPE`` to the matching kernel, after checking in a
second child process that the library then multiplies correctly.  A user's
own ``OPENBLAS_CORETYPE`` always wins.
"""
import dataclasses
import importlib.util
import os
import shutil
import subprocess
import sys

#: The BLAS routines the engines' C code calls (gemm, gemv, ger, dot, and
#: the few level-1 helpers), plus OpenBLAS's thread controls, which
#: Theano's convolution calls when OpenMP is on.
RENAMED_SYMBOLS = tuple(
    prefix + name for name in ('gemm_', 'gemv_', 'ger_', 'dot_', 'axpy_', 'scal_', 'copy_')
    for prefix in 'sd') + ('openblas_set_num_threads', 'openblas_get_num_threads',
                           'goto_set_num_threads')

#: OpenBLAS kernels that use no AVX at all: what it falls back to when it
#: does not recognise the CPU (lower case, as compared).
GENERIC_CORES = frozenset((
    'prescott', 'core2', 'penryn', 'dunnington', 'nehalem', 'atom', 'katmai', 'coppermine',
    'northwood', 'banias', 'opteron', 'opteron_sse3', 'barcelona', 'bobcat', 'nano',
    'unknown'))

AVX512_FLAGS = frozenset(('avx512f', 'avx512bw', 'avx512cd', 'avx512dq', 'avx512vl'))
AVX2_FLAGS = frozenset(('avx2', 'fma'))


@dataclasses.dataclass
class Blas:
    """A BLAS library the engine's C code can link.

    ``source`` says where it came from (``'system OpenBLAS'``,
    ``'scipy-openblas32'``); ``library`` is the shared object's path;
    ``prefix`` the prefix of its symbols; ``ldflags`` the engine setting
    that links it; ``kernel`` the OpenBLAS kernel in use, once known.
    """
    source: str
    library: str
    prefix: str
    ldflags: str
    kernel: str = None
    kernel_chosen_by_us: bool = False


def system_openblas(compiler='g++'):
    """The system OpenBLAS as a :class:`Blas`, or None when ``compiler`` cannot link one.

    Asks the compiler itself (``-print-file-name``), so the answer is exactly
    what the engine's own compile step will see.
    """
    if shutil.which(compiler) is None:
        return None
    try:
        found = subprocess.run([compiler, '-print-file-name=libopenblas.so'],
                               capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    # A found library is printed as a path; an unknown one is echoed back bare.
    if not (os.path.isabs(found) and os.path.exists(found)):
        return None
    return Blas('system OpenBLAS', os.path.realpath(found), '', '-lopenblas')


def wheel_openblas():
    """The OpenBLAS of the ``scipy-openblas32`` wheel as a :class:`Blas`, or None.

    The package is found, not imported: importing it loads the library, and
    OpenBLAS reads ``OPENBLAS_CORETYPE`` and ``OPENBLAS_THREAD_TIMEOUT``
    when it is loaded, which must come after :func:`choose_kernel`.
    """
    spec = importlib.util.find_spec('scipy_openblas32')
    if spec is None or not spec.submodule_search_locations:
        return None
    lib_dir = os.path.join(list(spec.submodule_search_locations)[0], 'lib')
    libraries = (sorted(name for name in os.listdir(lib_dir)
                        if name.startswith('libscipy_openblas')
                        and ('.so' in name or name.endswith('.dylib')))
                 if os.path.isdir(lib_dir) else [])
    # Theano splits the setting on white space: a folder with a space in its
    # name cannot be named in it.
    if not libraries or any(c.isspace() for c in lib_dir):
        return None
    link_name = libraries[0][len('lib'):].split('.')[0]
    prefix = 'scipy_'
    renames = ' '.join('-D%s=%s%s' % (name, prefix, name) for name in RENAMED_SYMBOLS)
    ldflags = '-L%s -l%s %s' % (lib_dir, link_name, renames)
    return Blas('scipy-openblas32', os.path.join(lib_dir, libraries[0]), prefix, ldflags)


def find_blas():
    """The BLAS to link: the system OpenBLAS when there is one, else the wheel's, else None."""
    return system_openblas() or wheel_openblas()


# Run in a child process: loads the library and prints its kernel; with a
# third argument, also the largest error of a 64 x 64 x 64 sgemm on small
# integers (exact in float32), else -1.
_PROBE = r'''
import ctypes, random, sys
lib = ctypes.CDLL(sys.argv[1])
prefix = sys.argv[2]
corename = getattr(lib, prefix + 'openblas_get_corename')
corename.restype = ctypes.c_char_p
error = -1
if len(sys.argv) > 3:
    n = 64
    rng = random.Random(0)
    a = [float(rng.randint(-4, 4)) for _ in range(n * n)]
    b = [float(rng.randint(-4, 4)) for _ in range(n * n)]
    Matrix = ctypes.c_float * (n * n)
    c = Matrix()
    size, one, zero = ctypes.c_int(n), ctypes.c_float(1), ctypes.c_float(0)
    no = ctypes.c_char(b'N')
    getattr(lib, prefix + 'sgemm_')(
        ctypes.byref(no), ctypes.byref(no), ctypes.byref(size), ctypes.byref(size),
        ctypes.byref(size), ctypes.byref(one), Matrix(*a), ctypes.byref(size), Matrix(*b),
        ctypes.byref(size), ctypes.byref(zero), c, ctypes.byref(size))
    # Column-major: c[i + n j] = sum_k a[i + n k] b[k + n j].
    error = max(abs(c[i + n * j] - sum(a[i + n * k] * b[k + n * j] for k in range(n)))
                for i in range(n) for j in range(n))
print(corename().decode(), error)
'''


def probe(blas, coretype=None, check=False, timeout=60):
    """Load ``blas`` in a child process; return ``(kernel name, sgemm error)``, or None.

    ``coretype`` is given to the child as ``OPENBLAS_CORETYPE``; the error is
    -1 unless ``check``.  None when the child fails (a kernel the CPU cannot
    run dies of SIGILL there, not here).
    """
    env = dict(os.environ)
    env.pop('OPENBLAS_CORETYPE', None)
    if coretype:
        env['OPENBLAS_CORETYPE'] = coretype
    env['OPENBLAS_NUM_THREADS'] = '1'
    try:
        command = [sys.executable, '-I', '-S', '-c', _PROBE, blas.library, blas.prefix]
        done = subprocess.run(command + (['check'] if check else []), env=env,
                              capture_output=True, text=True, timeout=timeout)
        name, error = done.stdout.split()
        return name, float(error)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def cpu_flags(cpuinfo='/proc/cpuinfo'):
    """The instruction-set flags of the first CPU in ``cpuinfo`` (empty where there is none)."""
    try:
        with open(cpuinfo) as stream:
            for line in stream:
                if line.startswith('flags'):
                    return frozenset(line.partition(':')[2].split())
    except OSError:
        pass
    return frozenset()


def better_coretype(kernel, flags):
    """The ``OPENBLAS_CORETYPE`` to ask for, or None to keep ``kernel``.

    >>> better_coretype('Prescott', {'sse3', 'avx', 'avx2', 'fma'})
    'Haswell'
    >>> better_coretype('Prescott', {'avx2', 'fma', 'avx512f', 'avx512bw', 'avx512cd',
    ...                              'avx512dq', 'avx512vl'})
    'SkylakeX'
    >>> better_coretype('Zen', {'avx2', 'fma'}) is None      # recognised: keep it
    True
    >>> better_coretype('Prescott', {'sse3'}) is None        # nothing better to run
    True
    """
    if kernel.lower() not in GENERIC_CORES:
        return None
    if AVX512_FLAGS <= flags:
        return 'SkylakeX'
    if AVX2_FLAGS <= flags:
        return 'Haswell'
    return None


def choose_kernel(blas, environ=os.environ, flags=None):
    """Find ``blas``'s kernel; set ``OPENBLAS_CORETYPE`` in ``environ`` when a better one works.

    Must run before the library is loaded in this process.  Fills in
    ``blas.kernel`` and returns it (None when the library could not be
    asked).  A user's own ``OPENBLAS_CORETYPE`` is left alone.
    """
    user_choice = environ.get('OPENBLAS_CORETYPE')
    found = probe(blas, user_choice)
    if found is None:
        return None
    blas.kernel = found[0]
    if user_choice:
        return blas.kernel
    wanted = better_coretype(blas.kernel, cpu_flags() if flags is None else flags)
    if wanted:
        checked = probe(blas, wanted, check=True)
        # The kernel must be the one asked for and multiply exactly (small integers).
        if checked and checked[0].lower() == wanted.lower() and checked[1] == 0:
            environ['OPENBLAS_CORETYPE'] = wanted
            blas.kernel, blas.kernel_chosen_by_us = checked[0], True
    return blas.kernel
