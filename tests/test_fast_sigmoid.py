"""The binomial samples' float32 sigmoid without branches: glibc's expf reproduced, the samples
and every other sigmoid's values those of Theano's own code."""
import ctypes
import struct
import subprocess
from decimal import Decimal, getcontext

import numpy
import pytest

from dltutorials.support.engine import ENGINE, T, theano

pytestmark = pytest.mark.skipif(ENGINE != 'theano', reason="Theano's sigmoid (PyTensor's has no "
                                                           "branches)")

#: Where glibc's expf with fused multiply-adds and without differ by an ulp: an expf
#: that took the other build's arithmetic fails there.
BUILDS_DIFFER_AT = (0x4202422f, 0xc27c65d9)


def fast_sigmoid():
    from dltutorials.support import fast_sigmoid as module
    if not module.applies():
        pytest.skip('the C library is not glibc >= 2.27 on x86-64: the sigmoid is as it was')
    return module


def test_the_table_holds_the_powers_of_two():
    getcontext().prec = 60
    table = fast_sigmoid().TABLE
    assert len(table) == 32
    for k in range(32):
        exact = Decimal(2) ** (Decimal(k) / 32)
        nearest = float(exact)
        nearest = min((float(numpy.nextafter(nearest, 0)), nearest,
                       float(numpy.nextafter(nearest, 2))),     # (math.nextafter: 3.9+)
                      key=lambda double: abs(Decimal(double) - exact))
        assert table[k] == struct.unpack('<Q', struct.pack('<d', nearest))[0] - (k << 47), k


@pytest.fixture(scope='module')
def expf_library(tmp_path_factory):
    """The module's expf beside the C library's, compiled with the engine's compiler and flags."""
    from theano.gof.cmodule import GCC_compiler

    folder = tmp_path_factory.mktemp('expf')
    source = folder / 'expf.cpp'
    source.write_text(fast_sigmoid().SUPPORT_CODE + r'''
#include <math.h>
// How many floats with bits first, first + step, ... <= last, of magnitude at most 88,
// get other bits from the two expf; the first such bits in *where.
extern "C" long long count_differences(uint64_t first, uint64_t last, uint64_t step,
                                       uint32_t* where) {
    long long differences = 0;
    for (uint64_t bits = first; bits <= last; bits += step) {
        const uint32_t b = (uint32_t) bits;
        float x, ours, theirs;
        memcpy(&x, &b, 4);
        if (!(fabsf(x) <= 88.0f)) continue;
        ours = dlt_glibc_expf(x);
        theirs = expf(x);
        if (memcmp(&ours, &theirs, 4)) { if (!differences) *where = b; ++differences; }
    }
    return differences;
}
''')
    library = folder / 'expf.so'
    subprocess.run([theano.config.cxx, '-shared', '-fPIC', *GCC_compiler.compile_args(),
                    *theano.config.gcc.cxxflags.split(), str(source), '-o', str(library),
                    '-lm'], check=True)
    loaded = ctypes.CDLL(str(library))
    loaded.count_differences.restype = ctypes.c_longlong
    loaded.count_differences.argtypes = [ctypes.c_uint64, ctypes.c_uint64, ctypes.c_uint64,
                                         ctypes.POINTER(ctypes.c_uint32)]
    return loaded


def differences(library, first, last, step):
    where = ctypes.c_uint32(0)
    return library.count_differences(first, last, step, ctypes.byref(where)), hex(where.value)


def test_the_expf_is_the_c_librarys_where_its_two_builds_differ_and_on_a_sample(expf_library):
    for bits in BUILDS_DIFFER_AT:
        assert differences(expf_library, bits, bits, 1) == (0, '0x0'), hex(bits)
    # every 251st float: all exponents, all table entries, 17 million values
    assert differences(expf_library, 0, 2 ** 32 - 1, 251) == (0, '0x0')


@pytest.mark.slow
def test_the_expf_is_the_c_librarys_for_every_float_the_sigmoid_passes_it(expf_library):
    assert differences(expf_library, 0, 2 ** 32 - 1, 1) == (0, '0x0')


def compiled(theanos_own_loops):
    """The RBM's sample ``uniform < sigmoid(a + b)`` and a sigmoid ``sigmoid(a + b)`` (b
    broadcast over the rows: the engine's loop over arrays of any strides), with our loops
    or Theano's own."""
    from theano.tensor import elemwise_cgen
    from theano.tensor.nnet import sigm
    from dltutorials.support import vector_math
    module = fast_sigmoid()
    u, a, b = T.matrix(dtype='float32'), T.matrix(dtype='float32'), T.vector(dtype='float32')
    ours = elemwise_cgen.make_reordered_loop, module.c_code_cache_version
    if theanos_own_loops:      # (marked for vector code as the engine's loops all are)
        elemwise_cgen.make_reordered_loop = vector_math.vectorised_loops(
            module.theanos_make_reordered_loop)
        # (a version of its own: the engines key compiled modules by versions, not code)
        sigm.ScalarSigmoid.c_code_cache_version = lambda op: module._theano_version(op) + (
            'reference for test_fast_sigmoid', 1)
    try:
        functions = (theano.function([u, a, b], T.cast(u < T.nnet.sigmoid(a + b), 'float32')),
                     theano.function([a, b], T.nnet.sigmoid(a + b)))
    finally:
        elemwise_cgen.make_reordered_loop, sigm.ScalarSigmoid.c_code_cache_version = ours
    for function in functions:
        assert any('sigmoid' in str(node.op) for node in function.maker.fgraph.toposort())
    return functions


@pytest.fixture(scope='module')
def ours_and_theanos():
    return compiled(False), compiled(True)


def test_each_sample_compares_with_glibcs_sigmoid_to_the_ulp(ours_and_theanos):
    """u equal to the sigmoid (computed with the C library's scalar expf) gives 0, u one ulp
    below it 1: a sigmoid off by an ulp anywhere flips a sample."""
    (sample, _), _ = ours_and_theanos
    libm = ctypes.CDLL('libm.so.6')
    libm.expf.restype, libm.expf.argtypes = ctypes.c_float, [ctypes.c_float]
    every_kind = numpy.arange(0, 2 ** 32, 4099, dtype=numpy.uint64).astype(numpy.uint32)
    x = every_kind.view(numpy.float32)
    x = numpy.concatenate([x[(x >= -88) & (x <= 15)], numpy.float32(
        [-struct.unpack('<f', struct.pack('<I', bits))[0] for bits in BUILDS_DIFFER_AT])])
    x = x[:len(x) // 256 * 256].reshape(-1, 256)
    exp = numpy.float32([libm.expf(-float(value)) for value in x.ravel()]).reshape(x.shape)
    sigmoid = numpy.float32(1) / (numpy.float32(1) + exp)
    bias = numpy.zeros(256, dtype='float32')
    assert not sample(sigmoid, x, bias).any()
    assert sample(numpy.nextafter(sigmoid, numpy.float32(-1)), x, bias).all()


def test_the_rbms_samples_are_theanos(ours_and_theanos):
    (ours, _), (theanos, _) = ours_and_theanos
    rng = numpy.random.RandomState(0)
    uniform = rng.uniform(size=(500, 784)).astype('float32')
    activation = rng.normal(scale=6, size=uniform.shape).astype('float32')
    activation[0, :4] = numpy.nan, numpy.inf, -numpy.inf, -88
    bias = rng.normal(size=784).astype('float32')
    got, expected = ours(uniform, activation, bias), theanos(uniform, activation, bias)
    assert 0.3 < expected.mean() < 0.7
    numpy.testing.assert_array_equal(got, expected)


def test_a_sigmoid_not_compared_keeps_theanos_code_and_values(ours_and_theanos):
    """g++ vectorises that loop already, with glibc's vector expf for most values (not the
    scalar one the samples' sigmoid reproduces)."""
    (_, ours), (_, theanos) = ours_and_theanos
    every_kind = numpy.arange(0, 2 ** 32, 4099, dtype=numpy.uint64).astype(numpy.uint32)
    values = every_kind.view(numpy.float32)
    values = values[:len(values) // 256 * 256].reshape(-1, 256)
    bias = numpy.zeros(256, dtype='float32')
    got, expected = ours(values, bias), theanos(values, bias)
    nan = numpy.isnan(expected)
    numpy.testing.assert_array_equal(numpy.isnan(got), nan)
    numpy.testing.assert_array_equal(got[~nan].view(numpy.uint32),
                                     expected[~nan].view(numpy.uint32))


def test_theanos_own_sigmoid_code_is_found_and_rewritten_in_a_sample():
    """The rewrite finds Theano's sigmoid by its C text: were that text other, the samples
    would keep their values but lose their vector code, which no value test can see."""
    from theano import scalar
    from theano.tensor.nnet import sigm
    module = fast_sigmoid()
    node = sigm.scalar_sigmoid.make_node(scalar.float32())
    sigmoid = sigm.scalar_sigmoid.c_code(node, 'n', ['V9_tmp1'], ['V9_tmp2'], {})
    sample = (sigmoid + '\nnpy_bool V9_tmp3;\nV9_tmp3 = (V3_i < V9_tmp2);\n'
              'V1_i = (npy_float32)V9_tmp3;\n')
    rewritten = module.branch_free_sampling(sample)
    assert 'V9_tmp2 = dlt_sigmoidf_branch_free(V9_tmp1);' in rewritten
    assert 'npy_float32 V9_tmp3;' in rewritten
    assert module.branch_free_sampling(sigmoid) == sigmoid     # not compared: as it was
