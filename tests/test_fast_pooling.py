"""The max-pooling gradient rewrite gives Theano's own MaxPoolGrad results, ties included."""
import numpy
import pytest

from dltutorials.support.engine import ENGINE

if ENGINE != 'theano':
    pytest.skip('the MaxPoolGrad rewrite is for Theano', allow_module_level=True)

import theano  # noqa: E402
import theano.tensor as T  # noqa: E402
from theano.tensor.signal.pool import MaxPoolGrad, pool_2d  # noqa: E402

from dltutorials.support import fast_pooling  # noqa: E402,F401  (registers the rewrite)


def pooling_gradient(mode):
    x, gz = T.tensor4('x'), T.tensor4('gz')
    pooled = pool_2d(x, ws=(2, 2), ignore_border=True)
    grad = T.grad(None, x, known_grads={pooled: gz})
    return theano.function([x, gz], grad, mode=mode), theano.function([x], pooled)


@pytest.mark.parametrize('shape', [(3, 2, 8, 8), (2, 3, 7, 9)])   # divisible, and with leftovers
def test_rewrite_matches_max_pool_grad(shape):
    fast, pool = pooling_gradient(theano.compile.get_default_mode())
    slow, _ = pooling_gradient(
        theano.compile.get_default_mode().excluding('local_max_pool_grad_by_windows'))
    assert not any(isinstance(n.op, MaxPoolGrad) for n in fast.maker.fgraph.toposort())
    assert any(isinstance(n.op, MaxPoolGrad) for n in slow.maker.fgraph.toposort())
    rng = numpy.random.RandomState(0)
    x = rng.randint(0, 3, size=shape).astype(theano.config.floatX)   # many tied maxima
    gz = rng.normal(size=pool(x).shape).astype(theano.config.floatX)
    numpy.testing.assert_array_equal(fast(x, gz), slow(x, gz))


def test_overlapping_windows_keep_theanos_gradient():
    x, gz = T.tensor4('x'), T.tensor4('gz')
    pooled = pool_2d(x, ws=(3, 3), stride=(1, 1), ignore_border=True)
    f = theano.function([x, gz], T.grad(None, x, known_grads={pooled: gz}))
    assert any(isinstance(n.op, MaxPoolGrad) for n in f.maker.fgraph.toposort())
