"""Theano's float32 sigmoid without branches, so that its loops vectorise; its values to the bit.

Theano writes the sigmoid of a float32 ``x`` as ``x < -88 ? 0 : x > 15 ? 1 :
1 / (1 + expf(-x))``.  In the RBM's (and the DBN's) Gibbs sampling, each
unit drawn as ``uniform < sigmoid(v W + b)`` in one loop, g++ leaves that
loop one value at a time (it reports "control flow in loop": the calls of
``expf`` and the division stay inside their branches, as they could trap),
4.6 ns a value against 1 ns for the loop of ``sigmoid(v W + b)`` alone,
19 % of the PCD-15 step.  Vectorised with glibc's vector ``expf``, as that
loop is (``vector_math``), the sampling would draw other samples wherever
the vector ``expf`` is an ulp off the scalar one, and change every number
the RBM and DBN pages print.

So in that loop, and only there (a sigmoid whose value is compared, in the
engine's loop over arrays of any strides), the sigmoid computes ``1 / (1 +
expf(-x))`` for every value and then picks 0, 1 or that, without a branch,
with an ``expf`` of its own: glibc's scalar ``expf``'s algorithm (since
glibc 2.27: ``x`` split into a multiple of ``ln 2 / 32`` and a rest, a
table of the 32 powers ``2^(k/32)``, a cubic polynomial, in double
precision), with the fused multiply-adds that glibc's build for CPUs with
FMA and AVX2 has, and none on other CPUs.  For every float32 of magnitude
below 88 (2.2 billion: the sigmoid passes ``expf`` values in [-15, 88]) it
gives glibc's ``expf`` to the bit on this AVX-512 CPU (without the fused
multiply-adds, 2 values differ by an ulp; with them, none), so the samples
are the ones Theano's code draws.  The comparison's result, kept as a byte
before its cast to float32, stopped g++ too (it does not vectorise a loop
with 1-byte values among 4- and 8-byte ones): where only the cast reads it,
it is a float32 (the same 0 or 1).  The sampling loop (20 x 784): 4.5-5.0
-> 1.2-1.9 ns a value; the RBM's and the DBN's model files after two epochs
on the 8,000 digits are the same to the byte.

Only where the C library is glibc 2.27 or newer on x86-64; elsewhere the
sigmoid stays as Theano wrote it.  PyTensor's sigmoid has no branches: its
loops vectorise already, with glibc's vector ``expf``.
"""
import platform
import re

from theano.gof.utils import MethodNotDefined
from theano.tensor import elemwise_cgen
from theano.tensor.nnet import sigm

from dltutorials.support import vector_math

#: glibc's table for ``expf``: the bits of the double nearest 2^(k/32), less k << 47,
#: for k = 0 ... 31, so that adding i << 47 to entry i % 32 gives the bits of the
#: double nearest 2^(i/32) for any integer i.  (The tests compute them again.)
TABLE = (
    0x3ff0000000000000, 0x3fefd9b0d3158574, 0x3fefb5586cf9890f, 0x3fef9301d0125b51,
    0x3fef72b83c7d517b, 0x3fef54873168b9aa, 0x3fef387a6e756238, 0x3fef1e9df51fdee1,
    0x3fef06fe0a31b715, 0x3feef1a7373aa9cb, 0x3feedea64c123422, 0x3feece086061892d,
    0x3feebfdad5362a27, 0x3feeb42b569d4f82, 0x3feeab07dd485429, 0x3feea47eb03a5585,
    0x3feea09e667f3bcd, 0x3fee9f75e8ec5f74, 0x3feea11473eb0187, 0x3feea589994cce13,
    0x3feeace5422aa0db, 0x3feeb737b0cdc5e5, 0x3feec49182a3f090, 0x3feed503b23e255d,
    0x3feee89f995ad3ad, 0x3feeff76f2fb5e47, 0x3fef199bdd85529c, 0x3fef3720dcef9069,
    0x3fef5818dcfba487, 0x3fef7c97337b9b5f, 0x3fefa4afa2a490da, 0x3fefd0765b6e4540)

_C_CODE = r'''
#ifndef DLT_GLIBC_EXPF
#define DLT_GLIBC_EXPF
#include <stdint.h>
#include <string.h>
static const uint64_t dlt_expf_table[32] = {TABLE};
#if defined(__FMA__) && defined(__AVX2__)
#define DLT_FMA(a, b, c) __builtin_fma(a, b, c)   // as glibc's build for such CPUs has them
#else
#define DLT_FMA(a, b, c) ((a) * (b) + (c))
#endif
// glibc's expf for |x| < 88.72 (no overflow to handle: the sigmoid passes it -15 ... 88)
static inline float dlt_glibc_expf(float x) {
    const double n_over_ln2 = 0x1.71547652b82fep+0 * 32;
    const double shift = 0x1.8p+52;                  // rounds to an integer k
    // 2^(r/32) ~ 1 + c2 r + c1 r^2 + c0 r^3
    const double c0 = 0x1.c6af84b912394p-5 / 32 / 32 / 32, c1 = 0x1.ebfce50fac4f3p-3 / 32 / 32,
                 c2 = 0x1.62e42ff0c52d6p-1 / 32;
    const double xd = x;
    uint64_t k_bits, scale_bits;
    double k, scale;
    k = DLT_FMA(n_over_ln2, xd, shift);              // x 32 / ln 2 = k + r
    memcpy(&k_bits, &k, 8);
    k -= shift;
    const double r = DLT_FMA(n_over_ln2, xd, -k);
    scale_bits = dlt_expf_table[k_bits % 32] + (k_bits << 47);     // 2^(k/32)
    memcpy(&scale, &scale_bits, 8);
    const double polynomial = DLT_FMA(DLT_FMA(c0, r, c1), r * r, DLT_FMA(c2, r, 1.0));
    return (float) (polynomial * scale);
}
// Theano's float32 sigmoid: x < -88 ? 0 : x > 15 ? 1 : 1 / (1 + expf(-x)), the last case
// computed for every x and the answer picked with masks (with a ?: g++ moves the division
// into its branch and cannot vectorise the loop: a division may trap).
static inline float dlt_sigmoidf_branch_free(float x) {
    const float logistic = 1.0f / (1.0f + dlt_glibc_expf(-x));
    uint32_t bits;
    memcpy(&bits, &logistic, 4);
    const uint32_t below = -(uint32_t) (x < -88.0f), above = -(uint32_t) (x > 15.0f);
    bits = (bits & ~(below | above)) | (0x3f800000u & above);      // 0.0f, 1.0f
    float sigmoid;
    memcpy(&sigmoid, &bits, 4);
    return sigmoid;
}
#endif
'''

#: The C code the sigmoid's modules get: glibc's ``expf`` and the sigmoid.
SUPPORT_CODE = _C_CODE.replace('TABLE', ', '.join('0x%016xull' % entry for entry in TABLE))


def applies():
    """True where the C library's ``expf`` is the one reproduced here (glibc >= 2.27, x86-64)."""
    library, version = platform.libc_ver()
    if library != 'glibc' or platform.machine() != 'x86_64':
        return False
    try:
        return tuple(int(part) for part in version.split('.')[:2]) >= (2, 27)
    except ValueError:
        return False


#: Theano's C code of the float32 sigmoid, ``z = x < -88.0f ? ...;``, as it is in a loop.
THEANOS_CODE = re.compile(r'(\w+) = (\w+) < -88\.0f \? 0\.0 : \2 > 15\.0f \? 1\.0f : '
                          r'1\.0f /\(1\.0f \+ exp\(-\2\)\);')

_theano_support_code = sigm.ScalarSigmoid.c_support_code
_theano_version = sigm.ScalarSigmoid.c_code_cache_version


def branch_free_sampling(inner_task):
    """``inner_task`` (the C code of one element) with each float32 sigmoid whose value is
    compared (a binomial sample, ``u < p``) written without branches, and the comparison
    kept as a float32 (``vector_math.float_comparisons``)."""
    def rewritten_sigmoid(match):
        result, argument = match.groups()
        compared = re.search(r'\(\w+ < %s\)|\(%s < \w+\)' % (result, result), inner_task)
        return ('%s = dlt_sigmoidf_branch_free(%s);' % (result, argument) if compared
                else match.group(0))
    code = THEANOS_CODE.sub(rewritten_sigmoid, inner_task)
    return inner_task if code == inner_task else vector_math.float_comparisons(code)


def c_support_code(op):
    """Theano's support code of the op (none, so far) and ours."""
    try:
        theanos = _theano_support_code(op)
    except MethodNotDefined:
        theanos = ''
    return theanos + SUPPORT_CODE


def c_code_cache_version(op):
    """Theano's version with ours: modules compiled with Theano's branches are not reused."""
    version = _theano_version(op)
    return version + ('branch-free float32', 6) if version else version


#: The engine's loop before ours (set by :func:`install`; vector_math marks ours afterwards).
theanos_make_reordered_loop = None


def install():
    """Our sigmoid's code and loop in Theano's, where :func:`applies` (once)."""
    global theanos_make_reordered_loop
    if theanos_make_reordered_loop is not None or not applies():
        return
    theanos_make_reordered_loop = elemwise_cgen.make_reordered_loop
    sigm.ScalarSigmoid.c_support_code = c_support_code
    sigm.ScalarSigmoid.c_code_cache_version = c_code_cache_version
    elemwise_cgen.make_reordered_loop = vector_math.rewriting_element_code(
        theanos_make_reordered_loop, branch_free_sampling)
