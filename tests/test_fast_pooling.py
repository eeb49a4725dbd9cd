"""The pooling ops for non-overlapping windows give Theano's own Pool and MaxPoolGrad results.

Bit for bit: ties, NaN and infinities, signed zeros, rows and columns the
windows leave over, float32 and float64, the C code and the Python one.
"""
import numpy
import pytest

from conftest import assert_same_bits
from dltutorials.support.engine import ENGINE

if ENGINE != 'theano':
    pytest.skip('the pooling rewrites are for Theano', allow_module_level=True)

import theano  # noqa: E402
import theano.tensor as T  # noqa: E402
from theano.tensor.signal.pool import MaxPoolGrad, Pool, pool_2d  # noqa: E402

# (importing the module registers its rewrites)
from dltutorials.support.fast_pooling import MaxPoolByWindows, MaxPoolGradByWindows  # noqa: E402

REWRITES = ('local_max_pool_by_windows', 'local_max_pool_grad_by_windows')


def pooling_and_gradient(dtype, ws, mode):
    """A compiled function (x, gz) -> (pooled, gradient of x) for 2-D max-pooling."""
    x = T.tensor4('x', dtype=dtype)
    gz = T.tensor4('gz', dtype=dtype)
    pooled = pool_2d(x, ws=ws, ignore_border=True)
    grad = T.grad(None, x, known_grads={pooled: gz})
    return theano.function([x, gz], [pooled, grad], mode=mode)


def ops_of(function):
    return {type(node.op) for node in function.maker.fgraph.toposort()}


def awkward_values(shape, dtype, seed=0):
    """Many ties, and NaN, infinities and signed zeros sprinkled in."""
    rng = numpy.random.RandomState(seed)
    values = rng.randint(-2, 3, size=shape).astype(dtype)
    flat = values.reshape(-1)
    for value in (numpy.nan, numpy.inf, -numpy.inf, -0.0):
        flat[rng.choice(flat.size, size=max(1, flat.size // 40), replace=False)] = value
    return values


@pytest.mark.parametrize('openmp', [False, True])
@pytest.mark.parametrize('dtype', ['float32', 'float64'])
@pytest.mark.parametrize('shape, ws', [((3, 2, 8, 8), (2, 2)),     # divisible
                                       ((2, 3, 7, 9), (2, 2)),     # with leftovers
                                       ((2, 2, 9, 8), (3, 2))])    # a window that is not square
def test_the_ops_give_theanos_results_bit_for_bit(dtype, shape, ws, openmp):
    default = theano.compile.get_default_mode()
    with theano.change_flags(openmp=openmp):     # the ops take it from the flag, when made
        fast = pooling_and_gradient(dtype, ws, default)
    assert {node.op.openmp for node in fast.maker.fgraph.toposort()
            if isinstance(node.op, (MaxPoolByWindows, MaxPoolGradByWindows))} == {openmp}
    theanos = pooling_and_gradient(dtype, ws, default.excluding(*REWRITES))
    assert {MaxPoolByWindows, MaxPoolGradByWindows} <= ops_of(fast)
    assert not ops_of(fast) & {Pool, MaxPoolGrad}
    assert {Pool, MaxPoolGrad} <= ops_of(theanos)
    x = awkward_values(shape, dtype)
    pooled_shape = (shape[0], shape[1], shape[2] // ws[0], shape[3] // ws[1])
    gz = awkward_values(pooled_shape, dtype, seed=1)
    for ours, expected in zip(fast(x, gz), theanos(x, gz)):
        assert_same_bits(ours, expected)
    # A NaN is the maximum only in a window's first place, as in Theano.
    pooled = fast(x, gz)[0]
    first = x[:, :, :pooled_shape[2] * ws[0]:ws[0], :pooled_shape[3] * ws[1]:ws[1]]
    assert numpy.array_equal(numpy.isnan(pooled), numpy.isnan(first))


@pytest.mark.parametrize('dtype', ['float32', 'float64'])
def test_the_python_code_gives_what_the_c_code_gives(dtype):
    x = awkward_values((2, 3, 7, 9), dtype)
    gz = awkward_values((2, 3, 3, 4), dtype, seed=1)
    in_c = pooling_and_gradient(dtype, (2, 2), theano.compile.get_default_mode())
    in_python = pooling_and_gradient(dtype, (2, 2), theano.compile.Mode(
        linker='py', optimizer=theano.compile.get_default_mode().optimizer))
    assert MaxPoolGradByWindows in ops_of(in_python)
    for c_result, python_result in zip(in_c(x, gz), in_python(x, gz)):
        assert_same_bits(c_result, python_result)


def test_images_that_are_not_contiguous_are_read_right():
    x = T.tensor4('x')
    seen = x.dimshuffle(0, 1, 3, 2)[:, :, ::-1]              # transposed and reversed
    pooled = pool_2d(seen, ws=(2, 2), ignore_border=True)
    f = theano.function([x], [pooled, T.grad(pooled.sum(), x)])
    assert MaxPoolGradByWindows in ops_of(f)
    values = numpy.random.RandomState(2).normal(size=(2, 3, 6, 8)).astype(x.dtype)
    expected = values.transpose(0, 1, 3, 2)[:, :, ::-1].reshape(2, 3, 4, 2, 3, 2).max(axis=(3, 5))
    pooled_value, grad_value = f(values)
    numpy.testing.assert_array_equal(pooled_value, expected)
    assert grad_value.sum() == expected.size                  # one maximum per window


def test_the_gradient_of_the_pooling_op_matches_finite_differences():
    rng = numpy.random.RandomState(3)
    # distinct values: the maximum of a window is a smooth function of the input nearby
    theano.gradient.verify_grad(MaxPoolByWindows((2, 2)),
                                [rng.permutation(96).reshape(2, 3, 4, 4).astype('float64')],
                                rng=rng)


def test_overlapping_windows_and_padding_keep_theanos_ops():
    x, gz = T.tensor4('x'), T.tensor4('gz')
    for options in (dict(ws=(3, 3), stride=(1, 1)), dict(ws=(2, 2), pad=(1, 1)),
                    dict(ws=(2, 2), mode='average_inc_pad')):
        pooled = pool_2d(x, ignore_border=True, **options)
        f = theano.function([x, gz], [pooled, T.grad(None, x, known_grads={pooled: gz})])
        assert Pool in ops_of(f) and not ops_of(f) & {MaxPoolByWindows, MaxPoolGradByWindows}


def test_a_gradient_of_the_wrong_shape_is_refused():
    x, m, gz = T.tensor4('x'), T.tensor4('m'), T.tensor4('gz')
    f = theano.function([x, m, gz], MaxPoolGradByWindows((2, 2))(x, m, gz))
    values = numpy.zeros((1, 1, 4, 4), dtype=x.dtype)
    with pytest.raises(ValueError, match='does not have the pooled shape'):
        f(values, values[:, :, :2, :2], values[:, :, :2, :1])
