"""Update rules: small pure functions from a cost to Theano ``updates``.

Each returns an ``OrderedDict`` mapping every parameter to its new value, to
pass to ``theano.function(..., updates=...)``; the order is the order of
``params``, so compiled graphs are the same from run to run.
"""
from collections import OrderedDict

# Theano's names, from Theano or, on Python 3.12+, PyTensor (see dltutorials.support.engine).
from dltutorials.support.engine import T


def gradients(cost_or_grads, params):
    """``T.grad(cost, params)``, or the given list of gradients after checking its length."""
    if isinstance(cost_or_grads, (list, tuple)):
        if len(cost_or_grads) != len(params):
            raise ValueError('Got %d gradient expressions for %d parameters'
                             % (len(cost_or_grads), len(params)))
        return list(cost_or_grads)
    return T.grad(cost_or_grads, wrt=list(params))


def sgd(cost_or_grads, params, learning_rate):
    """Plain stochastic gradient descent: ``param <- param - learning_rate * gradient``.

    Parameters
    ----------
    cost_or_grads : scalar Theano expression, or list of expressions
        the cost to differentiate, or its gradients, one per parameter.
    params : list of shared variables
    learning_rate : float or scalar Theano expression

    Returns
    -------
    OrderedDict {param: updated param expression}
    """
    grads = gradients(cost_or_grads, params)
    return OrderedDict((param, param - T.cast(learning_rate, param.dtype) * grad)
                       for param, grad in zip(params, grads))
