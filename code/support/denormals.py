"""Inside the engine's compiled functions, numbers below float's normal range are flushed to zero.

Floats smaller than about 1.2e-38 (float32; 2.2e-308 in float64) are
*subnormal*: the CPU computes with them through a slow path, around a
hundred cycles per operation instead of one.  Training makes them: Adam's
second moment of a weight whose gradient has gone to zero (a ReLU unit
that died, an input pixel that is always black in this minibatch) decays
by 0.999 each step and spends about 16,000 steps in the subnormal range
on its way to zero; its first moment, 150 steps.  The MLP with Adam
(``benchmarks/benchmark_epoch.py --models mlp_adam``) took 11-15 s an
epoch on Theano, 4.6-5.5 s with subnormals flushed; 57 % of its time was
the one elementwise pass that divides by the square root of the second
moment.

So, while a compiled function runs, the thread sets the CPU's
flush-to-zero and denormals-are-zero modes (x86-64's ``MXCSR`` bits; on
other CPUs nothing changes), and restores its own modes afterwards:
subnormal results and inputs count as zero.  NaN, infinities and every
normal number are unchanged, so the divergence checks see what they saw.
TensorFlow does the same on CPUs, and GPUs flush in their fast paths;
numpy's arithmetic outside the functions keeps subnormals.
``DLTUTORIALS_FLUSH_DENORMALS=0`` in the environment keeps them inside too.
"""
import ctypes
import functools
import os
import platform

#: MXCSR's flush-to-zero (bit 15) and denormals-are-zero (bit 6).
FLUSH_BITS = 0x8040


class _Environment(ctypes.Structure):
    """glibc's ``fenv_t`` on x86-64: the x87 environment (28 bytes), then MXCSR."""
    _fields_ = [('x87', ctypes.c_char * 28), ('mxcsr', ctypes.c_uint32)]


def _math_library():
    if platform.machine() != 'x86_64' or platform.system() != 'Linux':
        return None
    if os.environ.get('DLTUTORIALS_FLUSH_DENORMALS', '1').strip() == '0':
        return None
    try:
        library = ctypes.CDLL('libm.so.6')     # by name: find_library would run ldconfig
        library.fegetenv, library.fesetenv    # noqa: B018  (both there)
    except (OSError, AttributeError):
        return None
    return library


_libm = _math_library()


def flushing(call):
    """``call`` run with subnormal numbers flushed to zero, the thread's modes restored after."""
    if _libm is None:
        return call

    @functools.wraps(call)
    def flushed(*args, **kwargs):
        saved = _Environment()
        _libm.fegetenv(ctypes.byref(saved))
        if saved.mxcsr & FLUSH_BITS == FLUSH_BITS:     # already (a function inside a function)
            return call(*args, **kwargs)
        flushing_environment = _Environment.from_buffer_copy(saved)
        flushing_environment.mxcsr |= FLUSH_BITS
        _libm.fesetenv(ctypes.byref(flushing_environment))
        try:
            return call(*args, **kwargs)
        finally:
            _libm.fesetenv(ctypes.byref(saved))
    flushed.flushes_denormals = True
    return flushed


def install(function_class):
    """Make ``function_class`` (the engine's compiled function) flush subnormals when called."""
    if not getattr(function_class.__call__, 'flushes_denormals', False):
        function_class.__call__ = flushing(function_class.__call__)
