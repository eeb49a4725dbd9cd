"""The faster sums (each feature map's, Sum{axis=[0, 2, 3]}; the first axis's, Sum{axis=[0]})
give Theano's results.

Bit for bit: the same additions in the same order, on values whose sum
depends on the order, with NaN, infinities and signed zeros, map counts that
are not a multiple of the eight summed at once, float32 and float64, OpenMP
on and off, the C code and the Python one.
"""
import numpy
import pytest

from conftest import assert_same_bits
from dltutorials.support.engine import ENGINE, T, change_flags, theano
from dltutorials.support.fast_sums import FeatureMapSum, LeadingAxisSum

# (PyTensor's Sum adds in Theano's order: the same tests hold there; the sum over the first
# axis is left to PyTensor's own op)
theano_only = pytest.mark.skipif(ENGINE != 'theano',
                                 reason='the sum over the first axis is replaced on Theano only')
DEFAULT = theano.compile.get_default_mode()
THEANOS = DEFAULT.excluding('local_feature_map_sum', 'local_leading_axis_sum')
PYTHON = theano.compile.Mode(linker='py', optimizer=DEFAULT.optimizer)
SHAPES = [(3, 5, 4, 6), (2, 8, 3, 3), (4, 13, 5, 2), (2, 20, 1, 7)]


def map_sums(input_dtype, mode, openmp=False, **sum_arguments):
    x = T.tensor4('x', dtype=input_dtype)
    with change_flags(openmp=openmp):     # the op takes it from the flag, when made
        return theano.function([x], x.sum(axis=[0, 2, 3], **sum_arguments), mode=mode)


def tensor(dtype, ndim):
    return {1: T.vector, 2: T.matrix, 3: T.tensor3, 4: T.tensor4}[ndim]('x', dtype=dtype)


def op_types(function):
    return {type(node.op) for node in function.maker.fgraph.toposort()}


def order_sensitive_values(shape, dtype, seed=0):
    """Magnitudes from 1e-9 to 1e9 and both signs: a different order of additions rounds apart."""
    rng = numpy.random.RandomState(seed)
    return (rng.randn(*shape) * 10.0 ** rng.randint(-9, 10, size=shape)).astype(dtype)


@pytest.mark.parametrize('openmp', [False, True])
@pytest.mark.parametrize('dtype', ['float32', 'float64'])
def test_the_sums_are_theanos_bit_for_bit(dtype, openmp):
    fast, theanos = map_sums(dtype, DEFAULT, openmp), map_sums(dtype, THEANOS)
    assert [node.op.openmp for node in fast.maker.fgraph.toposort()] == [openmp]
    assert FeatureMapSum not in op_types(theanos)
    for shape in SHAPES:
        x = order_sensitive_values(shape, dtype)
        assert_same_bits(fast(x), theanos(x))
    if dtype == 'float64':
        # the values are such that another order (numpy's pairwise sums) gives other bits
        x = order_sensitive_values((16, 13, 12, 12), dtype)
        assert_same_bits(fast(x), theanos(x))
        assert not numpy.array_equal(fast(x), x.sum(axis=(0, 2, 3)))


def test_nan_infinities_and_signed_zeros_come_out_as_in_theano():
    fast, theanos = map_sums('float32', DEFAULT), map_sums('float32', THEANOS)
    x = numpy.ones((2, 11, 3, 3), dtype='float32')
    x[0, 0, 0, 0] = numpy.nan                      # map 0: NaN
    x[1, 1, 2, 2] = numpy.inf                      # map 1: inf
    x[:, 2] = -0.0                                 # map 2: all -0.0
    x[0, 3, 0, 0], x[1, 3, 0, 0] = numpy.inf, -numpy.inf  # map 3: inf - inf
    x[:, 9] = -numpy.inf                           # map 9, in the leftover group: -inf
    ours = fast(x)
    assert_same_bits(ours, theanos(x))
    assert numpy.isnan(ours[[0, 3]]).all() and ours[1] == numpy.inf and ours[9] == -numpy.inf
    assert ours[2] == 0 and not numpy.signbit(ours[2])


@pytest.mark.parametrize('sum_arguments', [dict(acc_dtype='float32'), dict(dtype='float64')])
def test_other_accumulator_and_output_dtypes_are_theanos_too(sum_arguments):
    fast = map_sums('float32', DEFAULT, **sum_arguments)
    theanos = map_sums('float32', THEANOS, **sum_arguments)
    assert FeatureMapSum in op_types(fast)
    x = order_sensitive_values((4, 13, 5, 2), 'float32')
    assert_same_bits(fast(x), theanos(x))


@pytest.mark.parametrize('dtype', ['float32', 'float64'])
def test_the_python_code_gives_what_the_c_code_gives(dtype):
    python = PYTHON
    fast, slow = map_sums(dtype, DEFAULT), map_sums(dtype, python)
    assert FeatureMapSum in op_types(slow)
    for shape in SHAPES + [(0, 3, 2, 2), (2, 3, 0, 4)]:
        x = order_sensitive_values(shape, dtype)
        assert_same_bits(slow(x), fast(x))


def test_empty_minibatches_and_images_sum_to_zeros():
    fast = map_sums('float32', DEFAULT)
    for shape in [(0, 3, 2, 2), (2, 3, 0, 4)]:
        assert_same_bits(fast(numpy.zeros(shape, dtype='float32')),
                         numpy.zeros(3, dtype='float32'))


def test_arrays_that_are_not_contiguous_are_read_right():
    x = T.tensor4('x')
    strided = x.dimshuffle(1, 0, 3, 2)[:, :, ::2, :]
    fast = theano.function([x], strided.sum(axis=[0, 2, 3]), mode=DEFAULT)
    theanos = theano.function([x], strided.sum(axis=[0, 2, 3]), mode=THEANOS)
    assert FeatureMapSum in op_types(fast)
    values = order_sensitive_values((9, 3, 5, 6), theano.config.floatX)
    assert_same_bits(fast(values), theanos(values))


@pytest.mark.parametrize('axes, ndim', [([0, 2], 4), ([0, 1, 2, 3], 4), ([0, 2], 3)])
def test_other_sums_keep_theanos_op(axes, ndim):
    x = tensor(theano.config.floatX, ndim)
    function = theano.function([x], x.sum(axis=axes), mode=DEFAULT)
    assert FeatureMapSum not in op_types(function)


# --- the sum over the first axis ---

def first_axis_sums(ndim, input_dtype, mode, **sum_arguments):
    x = tensor(input_dtype, ndim)
    return theano.function([x], x.sum(axis=0, **sum_arguments), mode=mode)


@theano_only
@pytest.mark.parametrize('dtype', ['float32', 'float64'])
def test_first_axis_sums_are_theanos_bit_for_bit(dtype):
    for shape in [(28, 9, 13), (5, 3), (1, 7), (6, 2, 3, 4)]:
        fast = first_axis_sums(len(shape), dtype, DEFAULT)
        theanos = first_axis_sums(len(shape), dtype, THEANOS)
        assert LeadingAxisSum in op_types(fast) and LeadingAxisSum not in op_types(theanos)
        x = order_sensitive_values(shape, dtype)
        assert_same_bits(fast(x), theanos(x))
    if dtype == 'float64':
        # the rows added in the other order give other bits on these values
        x = order_sensitive_values((300, 40), dtype)
        fast, theanos = first_axis_sums(2, dtype, DEFAULT), first_axis_sums(2, dtype, THEANOS)
        assert_same_bits(fast(x), theanos(x))
        assert not numpy.array_equal(fast(x), fast(x[::-1]))


@theano_only
@pytest.mark.parametrize('sum_arguments', [dict(acc_dtype='float32'), dict(dtype='float64')])
def test_first_axis_sums_with_other_accumulator_and_output_dtypes(sum_arguments):
    fast = first_axis_sums(3, 'float32', DEFAULT, **sum_arguments)
    theanos = first_axis_sums(3, 'float32', THEANOS, **sum_arguments)
    assert LeadingAxisSum in op_types(fast)
    x = order_sensitive_values((17, 5, 6), 'float32')
    assert_same_bits(fast(x), theanos(x))


@theano_only
def test_first_axis_sums_of_nan_infinities_signed_zeros_and_empty_arrays():
    fast, theanos = first_axis_sums(2, 'float32', DEFAULT), first_axis_sums(2, 'float32', THEANOS)
    python = first_axis_sums(2, 'float32', PYTHON)
    x = numpy.ones((3, 5), dtype='float32')
    x[1, 0] = numpy.nan
    x[2, 1] = numpy.inf
    x[:, 2] = -0.0
    x[0, 3], x[2, 3] = numpy.inf, -numpy.inf
    ours = fast(x)
    assert_same_bits(ours, theanos(x))
    assert_same_bits(python(x), ours)
    assert numpy.isnan(ours[[0, 3]]).all() and ours[1] == numpy.inf
    assert ours[2] == 0 and not numpy.signbit(ours[2])
    for shape in [(0, 4), (3, 0)]:
        empty = numpy.zeros(shape, dtype='float32')
        assert_same_bits(fast(empty), numpy.zeros(shape[1], dtype='float32'))
        assert_same_bits(python(empty), fast(empty))


@theano_only
@pytest.mark.parametrize('dtype', ['float32', 'float64'])
def test_first_axis_python_code_gives_what_the_c_code_gives(dtype):
    python = PYTHON
    fast, slow = first_axis_sums(3, dtype, DEFAULT), first_axis_sums(3, dtype, python)
    assert LeadingAxisSum in op_types(slow)
    x = order_sensitive_values((19, 4, 6), dtype)
    assert_same_bits(slow(x), fast(x))


@theano_only
def test_first_axis_sums_of_strided_arrays_and_a_reused_output_are_right():
    x = T.tensor3('x')
    strided = x.dimshuffle(2, 0, 1)[::2]
    fast = theano.function([x], strided.sum(axis=0), mode=DEFAULT)
    theanos = theano.function([x], strided.sum(axis=0), mode=THEANOS)
    assert LeadingAxisSum in op_types(fast)
    for shape in [(4, 5, 9), (4, 5, 9), (2, 3, 7)]:     # the second call reuses the output
        values = order_sensitive_values(shape, theano.config.floatX)
        assert_same_bits(fast(values), theanos(values))


@theano_only
@pytest.mark.parametrize('axes, ndim', [([1], 2), ([0, 1], 2), ([0], 1), (None, 3)])
def test_other_sums_keep_theanos_op_not_the_first_axis_sum(axes, ndim):
    x = tensor(theano.config.floatX, ndim)
    function = theano.function([x], x.sum(axis=axes), mode=DEFAULT)
    assert LeadingAxisSum not in op_types(function)
