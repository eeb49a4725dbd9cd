r"""Debugging a network: check its gradients, then see that it can learn a few examples.

Two first steps of the lectures' advice, before any long run:

1. **Check the gradients by finite differences.**  ``T.grad`` derives them
   for us, but a layer written by hand (an activation, a normalization) may
   hide a mistake that only slows training down.  For a few entries
   :math:`\theta_i` of each parameter, compare the gradient with the
   centred difference

   .. math::

       \frac{\partial C}{\partial \theta_i} \approx
       \frac{C(\theta + \epsilon e_i) - C(\theta - \epsilon e_i)}{2 \epsilon}

   Their relative error should be tiny: about 1e-7 or less in float64.
   In float32 rounding alone gives about 1e-2, so check in float64
   (``THEANO_FLAGS=floatX=float64``).  A ReLU's kink between the two
   points gives a large error at that entry for no fault of the code: look
   at several entries.

2. **Overfit a few examples** (``--overfit 100``): a network that cannot
   drive its training error to 0 on 100 examples has a bug, or a learning
   rate far off.
"""
import copy

import numpy

# Theano's names, from Theano or, on Python 3.12+, PyTensor (see dltutorials.support.engine).
from dltutorials.support.engine import T, theano

__all__ = ['check_grad']


def check_grad(cost, params, givens=None, n_entries=10, epsilon=1e-4, seed=0):
    """Relative errors of ``T.grad(cost, params)`` against finite differences.

    Random draws in ``cost`` (dropout masks) are frozen: the random
    streams' states are put back before every evaluation, so each sees the
    same mask.

    Parameters
    ----------
    cost : scalar Theano expression
        of the shared ``params`` (and of whatever ``givens`` fixes, such as
        the input minibatch).
    params : list of shared variables
    givens : dict, optional
        substitutions for the cost's inputs, as ``theano.function`` takes them.
    n_entries : int
        the entries of each parameter checked, drawn at random.
    epsilon : float
        the finite-difference step.
    seed : int
        draws the entries.

    Returns
    -------
    list of float, one per parameter: the largest relative error
    ``|analytic - numeric| / (|analytic| + |numeric|)`` over its checked
    entries.  Entries where both are below the differences' rounding noise
    (100 x the float's resolution x the cost / epsilon) count as 0: a bias
    under batch normalization has a true gradient of 0, and a relative
    error of two noises means nothing.
    """
    from dltutorials.support.checkpoints import updated_variables

    rng = numpy.random.RandomState(seed)
    # One function for the cost and its gradients: for a network of this size,
    # compiling takes far longer than the evaluations do.
    cost_and_gradients = theano.function([], [cost] + T.grad(cost, params), givens=givens)
    # The random streams' states, put back before every evaluation: the same draws each time.
    streams = updated_variables([cost_and_gradients])
    states = [stream.get_value() for stream in streams]

    def evaluate():
        for stream, state in zip(streams, states):
            stream.set_value(copy.deepcopy(state))
        return cost_and_gradients()

    cost_now, *analytic = evaluate()
    cost_now = float(cost_now)
    noise = 100 * numpy.finfo(theano.config.floatX).eps * max(abs(cost_now), 1.0) / epsilon
    errors = []
    for param, gradient in zip(params, analytic):
        value = param.get_value()
        original = value.copy()
        worst = 0.0
        for flat_index in rng.choice(value.size, size=min(n_entries, value.size), replace=False):
            index = numpy.unravel_index(flat_index, value.shape)
            value[index] = original[index] + epsilon
            param.set_value(value)
            cost_plus = float(evaluate()[0])
            value[index] = original[index] - epsilon
            param.set_value(value)
            cost_minus = float(evaluate()[0])
            value[index] = original[index]
            numeric = (cost_plus - cost_minus) / (2 * epsilon)
            exact = float(gradient[index])
            scale = abs(exact) + abs(numeric)
            if scale > noise:
                worst = max(worst, abs(exact - numeric) / scale)
        param.set_value(original)
        errors.append(worst)
    return errors
