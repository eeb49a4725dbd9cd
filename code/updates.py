r"""Update rules: small pure functions from a loss to Theano ``updates``.

Each rule returns an ``OrderedDict`` mapping every parameter to its new
value, and every variable of the rule's own state (a velocity, running
averages of the gradients, a step count) to its next value, to pass to
``theano.function(..., updates=...)``.  The state lives in shared variables,
so it stays on the device beside the parameters and a checkpoint saves it
with them.  The order is the order of ``params``, so compiled graphs are the
same from run to run.

The rules follow PyTorch's ``torch.optim`` to the letter (where epsilon is
added, bias correction, the first step), each docstring says how, and the
tests step each against a numpy transcription of the published update: a
learner who compares with PyTorch sees the same numbers.

Plain SGD steps against the gradient :math:`g_t` of the minibatch loss:
:math:`\theta_{t} = \theta_{t-1} - \eta g_t`.  Its troubles are the ones
the rules below address: a learning rate small enough for the steep
directions crawls along the shallow ones (*momentum* builds up speed along
directions the gradient keeps pointing to), and one rate rarely suits every
weight (*adaptive* rules give each weight its own step size, from the sizes
or the signs of its past gradients).

A learning rate may change with time: :func:`scheduled_learning_rate` turns
a schedule (:func:`constant`, :func:`inverse_time`, :func:`step_decay`,
:func:`exponential_decay`) into an expression of a shared count of the
epochs trained, which the training step advances.

References:

- G. Hinton, N. Srivastava, K. Swersky, *Neural Networks for Machine
  Learning*, lecture 6 (momentum, adaptive gains, rmsprop)
- J. Duchi, E. Hazan, Y. Singer, "Adaptive Subgradient Methods", JMLR 2011 (AdaGrad)
- M. Zeiler, "ADADELTA: An Adaptive Learning Rate Method", 2012
- D. Kingma, J. Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015
- I. Sutskever et al., "On the importance of initialization and momentum
  in deep learning", ICML 2013 (Nesterov's momentum)
"""
from collections import OrderedDict

import numpy

# Theano's names, from Theano or, on Python 3.12+, PyTensor (see dltutorials.support.engine).
from dltutorials.support.engine import T, theano

__all__ = ['sgd', 'momentum', 'nesterov_momentum', 'adagrad', 'rmsprop', 'adadelta', 'adam',
           'adaptive_gains', 'OPTIMIZERS', 'constant', 'inverse_time', 'step_decay',
           'exponential_decay', 'SCHEDULES', 'scheduled_learning_rate', 'max_norm',
           'clip_grad_norm']


def gradients(loss_or_grads, params):
    """``T.grad(loss, params)``, or the given list of gradients after checking its length."""
    if isinstance(loss_or_grads, (list, tuple)):
        if len(loss_or_grads) != len(params):
            raise ValueError('Got %d gradient expressions for %d parameters'
                             % (len(loss_or_grads), len(params)))
        return list(loss_or_grads)
    return T.grad(loss_or_grads, wrt=list(params))


def state_like(param, name, value=0.0):
    """A shared variable of ``param``'s shape and dtype, filled with ``value``: a rule's state."""
    current = param.get_value(borrow=True)
    return theano.shared(numpy.full(current.shape, value, dtype=current.dtype),
                         name='%s_%s' % (name, param.name or 'param'))


def as_dtype(number, like):
    """``number`` (a float or an expression) cast to ``like``'s dtype: no float64 creeps in."""
    return T.cast(number, like.dtype)


def sgd(loss_or_grads, params, learning_rate):
    """Plain stochastic gradient descent: ``param <- param - learning_rate * gradient``.

    Parameters
    ----------
    loss_or_grads : scalar Theano expression, or list of expressions
        the loss to differentiate, or its gradients, one per parameter.
    params : list of shared variables
    learning_rate : float or scalar Theano expression

    Returns
    -------
    OrderedDict {param: updated param expression}
    """
    grads = gradients(loss_or_grads, params)
    return OrderedDict((param, param - as_dtype(learning_rate, param) * grad)
                       for param, grad in zip(params, grads))


def momentum(loss_or_grads, params, learning_rate, momentum=0.9):
    r"""SGD with momentum: a ball rolling down the loss, whose velocity remembers past gradients.

    PyTorch's ``SGD(momentum=m)`` (no dampening): the velocity is a moving
    sum of gradients, and the step is the learning rate times it:

    .. math::

        v_t = m v_{t-1} + g_t, \qquad \theta_t = \theta_{t-1} - \eta v_t

    with :math:`v_0 = 0`, so the first step is plain SGD's.  Along a
    direction where the gradient keeps its sign the step grows to
    :math:`\eta / (1 - m)`: ten times SGD's for m = 0.9.

    Parameters as :func:`sgd`'s, plus ``momentum``, m in [0, 1).  The state
    is one velocity per parameter.
    """
    updates = OrderedDict()
    for param, grad in zip(params, gradients(loss_or_grads, params)):
        velocity = state_like(param, 'velocity')
        new_velocity = as_dtype(momentum, param) * velocity + grad
        updates[param] = param - as_dtype(learning_rate, param) * new_velocity
        updates[velocity] = new_velocity
    return updates


def nesterov_momentum(loss_or_grads, params, learning_rate, momentum=0.9):
    r"""Nesterov's momentum: correct the step with where the velocity is about to carry.

    PyTorch's ``SGD(momentum=m, nesterov=True)``:

    .. math::

        v_t = m v_{t-1} + g_t, \qquad \theta_t = \theta_{t-1} - \eta (g_t + m v_t)

    which is Sutskever et al.'s "jump with the velocity, then correct by the
    gradient there", rewritten so that the gradient is taken at the stored
    parameters.  Parameters and state as :func:`momentum`'s.
    """
    updates = OrderedDict()
    for param, grad in zip(params, gradients(loss_or_grads, params)):
        velocity = state_like(param, 'velocity')
        m = as_dtype(momentum, param)
        new_velocity = m * velocity + grad
        updates[param] = param - as_dtype(learning_rate, param) * (grad + m * new_velocity)
        updates[velocity] = new_velocity
    return updates


def adagrad(loss_or_grads, params, learning_rate=0.01, epsilon=1e-10):
    r"""AdaGrad: each weight's step divided by the root of the sum of its squared gradients.

    PyTorch's ``Adagrad`` (no learning-rate decay, accumulator starting at 0):

    .. math::

        s_t = s_{t-1} + g_t^2, \qquad
        \theta_t = \theta_{t-1} - \eta \frac{g_t}{\sqrt{s_t} + \epsilon}

    Weights with large or frequent gradients slow down; rare features keep
    large steps.  The steps only shrink, which suits convex problems better
    than long non-convex ones (rmsprop forgets old gradients instead).
    """
    updates = OrderedDict()
    for param, grad in zip(params, gradients(loss_or_grads, params)):
        sum_squares = state_like(param, 'sum_squares')
        new_sum = sum_squares + grad ** 2
        updates[param] = param - as_dtype(learning_rate, param) * grad / (
            T.sqrt(new_sum) + as_dtype(epsilon, param))
        updates[sum_squares] = new_sum
    return updates


def rmsprop(loss_or_grads, params, learning_rate=0.01, rho=0.99, epsilon=1e-8):
    r"""rmsprop: divide the gradient by the root of a moving average of its square.

    From Hinton's lecture 6; PyTorch's ``RMSprop`` (``alpha`` is rho; no
    momentum, not centred):

    .. math::

        r_t = \rho r_{t-1} + (1 - \rho) g_t^2, \qquad
        \theta_t = \theta_{t-1} - \eta \frac{g_t}{\sqrt{r_t} + \epsilon}

    A minibatch version of using only the gradient's sign (rprop): every
    weight moves by about the learning rate, whatever its gradient's scale.
    """
    updates = OrderedDict()
    for param, grad in zip(params, gradients(loss_or_grads, params)):
        mean_square = state_like(param, 'mean_square')
        r = as_dtype(rho, param)
        new_mean_square = r * mean_square + (1 - r) * grad ** 2
        updates[param] = param - as_dtype(learning_rate, param) * grad / (
            T.sqrt(new_mean_square) + as_dtype(epsilon, param))
        updates[mean_square] = new_mean_square
    return updates


def adadelta(loss_or_grads, params, learning_rate=1.0, rho=0.9, epsilon=1e-6):
    r"""AdaDelta: rmsprop whose step size is a moving root mean square of the past steps.

    PyTorch's ``Adadelta`` (Zeiler's algorithm 1, times a learning rate):

    .. math::

        r_t &= \rho r_{t-1} + (1 - \rho) g_t^2 \\
        \Delta_t &= \frac{\sqrt{u_{t-1} + \epsilon}}{\sqrt{r_t + \epsilon}} g_t \\
        u_t &= \rho u_{t-1} + (1 - \rho) \Delta_t^2, \qquad
        \theta_t = \theta_{t-1} - \eta \Delta_t

    The ratio has the units of the parameter, so the default rate is 1.
    """
    updates = OrderedDict()
    for param, grad in zip(params, gradients(loss_or_grads, params)):
        mean_square = state_like(param, 'mean_square')
        mean_square_step = state_like(param, 'mean_square_step')
        r, eps = as_dtype(rho, param), as_dtype(epsilon, param)
        new_mean_square = r * mean_square + (1 - r) * grad ** 2
        step = T.sqrt(mean_square_step + eps) / T.sqrt(new_mean_square + eps) * grad
        updates[param] = param - as_dtype(learning_rate, param) * step
        updates[mean_square] = new_mean_square
        updates[mean_square_step] = r * mean_square_step + (1 - r) * step ** 2
    return updates


def adam(loss_or_grads, params, learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8):
    r"""Adam: momentum on the gradient, rmsprop's scaling, both corrected for starting at zero.

    PyTorch's ``Adam`` (no weight decay, not AMSGrad), with t the step count
    from 1:

    .. math::

        m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
        \theta_t &= \theta_{t-1} - \frac{\eta}{1 - \beta_1^t}
            \frac{m_t}{\sqrt{v_t} / \sqrt{1 - \beta_2^t} + \epsilon}

    Epsilon is added to the bias-corrected root, as in PyTorch (the paper's
    algorithm 1; its section 2's cheaper form adds it before the correction).
    The state: the two moving averages per parameter and the step count t.
    """
    grads = gradients(loss_or_grads, params)
    # One step count for all parameters, in floatX (exact up to 2**24 steps in float32).
    t = theano.shared(numpy.asarray(0, dtype=theano.config.floatX), name='adam_t')
    new_t = t + 1
    updates = OrderedDict()
    for param, grad in zip(params, grads):
        first = state_like(param, 'first_moment')
        second = state_like(param, 'second_moment')
        b1, b2 = as_dtype(beta1, param), as_dtype(beta2, param)
        new_first = b1 * first + (1 - b1) * grad
        new_second = b2 * second + (1 - b2) * grad ** 2
        step_size = as_dtype(learning_rate, param) / (1 - b1 ** as_dtype(new_t, param))
        denominator = (T.sqrt(new_second) / T.sqrt(1 - b2 ** as_dtype(new_t, param))
                       + as_dtype(epsilon, param))
        updates[param] = param - step_size * new_first / denominator
        updates[first] = new_first
        updates[second] = new_second
    updates[t] = new_t
    return updates


def adaptive_gains(loss_or_grads, params, learning_rate, increase=0.05, decrease=0.95,
                   min_gain=0.1, max_gain=10.0):
    r"""The lecture's adaptive learning rates: per-weight gains, steered by the gradient's sign.

    From Hinton's lecture 6: each weight's step is the global rate times its
    own gain, :math:`\Delta w = -\eta\, \mathrm{gain}\, g_t`.  Where the
    gradient keeps its sign (:math:`g_t g_{t-1} > 0`) the weight is going
    the right way and its gain grows *additively*, by ``increase``; where it
    flips, the weight overshot and its gain shrinks *multiplicatively*, times
    ``decrease``, so oscillating gains fall fast.  Gains start at 1 and stay
    in [``min_gain``, ``max_gain``], as the lecture advises.  Computed in
    the graph (the previous gradient is state beside the gain), so nothing
    crosses to the host.  No PyTorch counterpart (``Rprop`` is its
    full-batch cousin, which uses the sign alone).
    """
    updates = OrderedDict()
    for param, grad in zip(params, gradients(loss_or_grads, params)):
        gain = state_like(param, 'gain', value=1.0)
        previous_grad = state_like(param, 'previous_gradient')
        agree = grad * previous_grad > 0
        new_gain = T.clip(T.switch(agree, gain + as_dtype(increase, param),
                                   gain * as_dtype(decrease, param)),
                          as_dtype(min_gain, param), as_dtype(max_gain, param))
        updates[param] = param - as_dtype(learning_rate, param) * new_gain * grad
        updates[gain] = new_gain
        updates[previous_grad] = grad
    return updates


#: The rules by name, for the command line's ``--optimizer``; each takes
#: (loss_or_grads, params, learning_rate) and keeps its other defaults.
OPTIMIZERS = OrderedDict([
    ('sgd', sgd), ('momentum', momentum), ('nesterov', nesterov_momentum),
    ('adagrad', adagrad), ('rmsprop', rmsprop), ('adadelta', adadelta), ('adam', adam),
    ('adaptive_gains', adaptive_gains)])


# --------------------------------------------------------------------------
# Learning-rate schedules
# --------------------------------------------------------------------------
# Each maps the initial rate and the number of epochs trained (a Theano
# scalar that grows by 1 / minibatches-per-epoch with every minibatch) to
# the rate now.

def constant(learning_rate, epoch):
    """The same rate throughout: the tutorial's."""
    return learning_rate + 0 * epoch


def inverse_time(learning_rate, epoch, tau=10.0):
    r"""The lecture's 1/t decay: :math:`\eta_t = \eta_0 \tau / (\tau + t)`; half the rate at tau.

    Decaying as 1/t is what stochastic approximation theory asks of SGD to
    converge (the steps sum to infinity, their squares do not).
    """
    return learning_rate * tau / (tau + epoch)


def step_decay(learning_rate, epoch, step=10, gamma=0.5):
    """The rate times ``gamma`` every ``step`` whole epochs (PyTorch's ``StepLR``)."""
    return learning_rate * gamma ** T.floor(epoch / step)


def exponential_decay(learning_rate, epoch, gamma=0.95):
    """The rate times ``gamma`` per epoch (PyTorch's ``ExponentialLR``, at whole epochs)."""
    return learning_rate * gamma ** T.floor(epoch)


def exponential_after(learning_rate, epoch, start=20, gamma=0.85):
    """The rate for ``start`` epochs, then times ``gamma`` per epoch (char-rnn's decay).

    A constant rate first, while it makes progress; then smaller steps for the
    bottom of the valley, where the constant rate's steps only bounce.
    """
    return learning_rate * gamma ** T.maximum(T.floor(epoch) - start + 1, 0)


#: The schedules by name, for the command line's ``--schedule``.
SCHEDULES = OrderedDict([('constant', constant), ('inverse_time', inverse_time),
                         ('step', step_decay), ('exponential', exponential_decay),
                         ('exponential_after', exponential_after)])


def scheduled_learning_rate(schedule, learning_rate, minibatches_per_epoch):
    """A learning rate that follows ``schedule``: ``(rate expression, updates)``.

    ``schedule``: a name of :data:`SCHEDULES`, or a function (learning_rate,
    epoch) -> rate, say ``functools.partial(step_decay, step=5)``.  The
    epochs trained are counted in minibatches by a shared variable (so
    checkpoints save it), which ``updates``, added to the training step's,
    advances by one.  The rate, a
    floatX expression, goes to an update rule in place of a number.
    """
    if isinstance(schedule, str):
        schedule = SCHEDULES[schedule]
    floatX = theano.config.floatX
    # A whole count (exact in float32 up to 2**24 minibatches), divided: no drift.
    minibatches_trained = theano.shared(numpy.asarray(0, dtype=floatX),
                                        name='minibatches_trained')
    epoch = minibatches_trained / numpy.asarray(minibatches_per_epoch, dtype=floatX)
    rate = T.cast(schedule(numpy.asarray(learning_rate, dtype=floatX), epoch), floatX)
    return rate, OrderedDict([(minibatches_trained, minibatches_trained + 1)])


def max_norm(updates, weights, limit):
    r"""Constrain the incoming weights of every unit to a norm of at most ``limit``.

    ``updates``: a rule's updates; ``weights``: the (n_in, n_out) weight
    matrices to constrain (not the biases).  After each step a column (one
    unit's incoming weights) longer than ``limit`` is scaled back onto the
    sphere of that radius (Srebro and Shraibman; with dropout in Srivastava
    et al. 2014).  Large learning rates then cannot blow the weights up.
    Returns a new OrderedDict.
    """
    constrained = OrderedDict(updates)
    for weight in weights:
        new_weight = constrained[weight]
        norms = T.sqrt(T.sum(new_weight ** 2, axis=0, keepdims=True))
        scale = T.minimum(1, as_dtype(limit, weight) / T.maximum(norms, 1e-7))
        constrained[weight] = new_weight * T.cast(scale, weight.dtype)
    return constrained


def clip_grad_norm(loss_or_grads, params, max_norm):
    r"""The gradients, rescaled together so that their joint norm is at most ``max_norm``.

    Recurrent networks' gradients occasionally explode (a product of many
    Jacobians, see :mod:`dltutorials.recurrent`); one huge step would undo
    what training learnt.  Pascanu et al. (2013) rescale the whole gradient
    when its norm :math:`\|g\| = \sqrt{\sum_p \|g_p\|^2}` passes the limit:
    :math:`g \leftarrow g \cdot \min(1, c / (\|g\| + 10^{-6}))`, PyTorch's
    ``clip_grad_norm_``.  The direction is kept; any update rule can then
    take the returned list as its ``loss_or_grads``.
    """
    grads = gradients(loss_or_grads, params)
    norm = T.sqrt(sum(T.sum(T.sqr(grad)) for grad in grads))
    scale = T.minimum(1, as_dtype(max_norm, norm) / (norm + as_dtype(1e-6, norm)))
    return [grad * T.cast(scale, grad.dtype) for grad in grads]
