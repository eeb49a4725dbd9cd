r"""Pieces every layer shares: activations, how weights start, dropout, batch normalization.

**Activations.**  ``tanh`` and the logistic sigmoid saturate: far from 0
their slope vanishes and so do the gradients that flow through them.  The
rectified linear unit, :math:`\max(0, x)`, passes the gradient unchanged
wherever it is active; its leaky and exponential variants (:func:`leaky_relu`,
:func:`elu`) keep a small gradient where it is not.

**Initialisation.**  A layer's initial weights must break the symmetry
between its units (all zeros would make every unit learn the same thing)
and keep the signal's scale from layer to layer.  Glorot and Bengio (2010)
derive, for tanh units with *fan-in* inputs and *fan-out* outputs, the
variance :math:`2 / (\mathrm{fan_{in}} + \mathrm{fan_{out}})`:

.. math::

    W_{ij} \sim U\left[-\sqrt{\frac{6}{\mathrm{fan_{in}} + \mathrm{fan_{out}}}},
                       \sqrt{\frac{6}{\mathrm{fan_{in}} + \mathrm{fan_{out}}}}\right]

A ReLU zeroes half its inputs, so He et al. (2015) double the variance and
count the inputs only: :math:`2 / \mathrm{fan_{in}}`.  Each initialiser here
comes uniform or normal with the same variance.

**Dropout** (Srivastava et al. 2014) sets each hidden unit to 0 with
probability p at each training step, so that no unit can rely on particular
others: it trains an ensemble of thinned networks that share weights.  At
test time the whole network stands for the ensemble's average.  "Inverted"
dropout scales the kept units by 1 / (1 - p) in training, so that the test
network is the trained one, unchanged.

**Batch normalization** (Ioffe and Szegedy 2015) standardises each unit's
input over the minibatch, then rescales it by a learned gain and shift;
training is then far less sensitive to the learning rate and the
initialisation.  At test time there is no minibatch to average over: the
averages of the training batches' statistics stand in for them.

A layer with dropout or batch normalization therefore computes two
different things in training and at test time.  The layers that use them
(:class:`~dltutorials.mlp.HiddenLayer`, LeNet's conv-pool layer) build both
graphs on the same parameters: ``train_output`` for the cost, ``output``
for predictions, so a compiled predictor is deterministic.

References:

- X. Glorot and Y. Bengio, "Understanding the difficulty of training deep
  feedforward neural networks", AISTATS 2010
- K. He, X. Zhang, S. Ren, J. Sun, "Delving deep into rectifiers", ICCV 2015
- N. Srivastava et al., "Dropout: A Simple Way to Prevent Neural Networks
  from Overfitting", JMLR 2014
- S. Ioffe and C. Szegedy, "Batch Normalization: Accelerating Deep Network
  Training by Reducing Internal Covariate Shift", ICML 2015
"""
from collections import OrderedDict

import numpy

# Theano's names, from Theano or, on Python 3.12+, PyTensor (see dltutorials.support.engine).
from dltutorials.support.engine import T, theano

__all__ = ['relu', 'leaky_relu', 'elu', 'ACTIVATIONS', 'glorot_uniform', 'glorot_normal',
           'he_uniform', 'he_normal', 'INITIALISERS', 'orthogonal', 'Dropout', 'BatchNorm']


# --------------------------------------------------------------------------
# Activations
# --------------------------------------------------------------------------

def relu(x):
    """The rectified linear unit: ``max(0, x)``."""
    return T.maximum(x, 0)


def leaky_relu(x, slope=0.01):
    """``x`` where positive, ``slope * x`` elsewhere: a unit that is never quite off."""
    return T.switch(x > 0, x, slope * x)


def elu(x, alpha=1.0):
    """``x`` where positive, ``alpha * (exp(x) - 1)`` elsewhere: smooth, saturating at -alpha."""
    # exp of the negative part only: exp(large x) in the unused branch would
    # make its gradient inf * 0 = NaN.
    return T.switch(x > 0, x, alpha * (T.exp(T.minimum(x, 0)) - 1))


#: Activations by name (the names the command line's ``--activation`` takes).
ACTIVATIONS = OrderedDict([('tanh', T.tanh), ('sigmoid', T.nnet.sigmoid), ('relu', relu),
                           ('leaky_relu', leaky_relu), ('elu', elu)])


# --------------------------------------------------------------------------
# Initialisers: (rng, n_in, n_out, activation, shape) -> floatX array
# --------------------------------------------------------------------------

def _weights(draw, rng, spread, n_in, n_out, shape):
    size = (n_in, n_out) if shape is None else shape
    values = rng.uniform(low=-spread, high=spread, size=size) if draw == 'uniform' \
        else rng.normal(scale=spread, size=size)
    return numpy.asarray(values, dtype=theano.config.floatX)


def glorot_uniform(rng, n_in, n_out, activation=T.tanh, shape=None):
    """Initial weights, uniform in +-sqrt(6 / (n_in + n_out)), floatX: the tutorial's.

    Parameters
    ----------
    rng : numpy.random.RandomState
    n_in, n_out : int
        fan-in and fan-out: the inputs each unit sees, the units each input
        feeds.
    activation : Theano function
        sigmoid units, whose slope at 0 is a quarter of tanh's, get four
        times the range.
    shape : tuple of int, optional
        the array's shape; default ``(n_in, n_out)``, a dense layer's.
        (A convolutional layer's filters have 4 dimensions.)
    """
    bound = numpy.sqrt(6.0 / (n_in + n_out))
    if activation is T.nnet.sigmoid:
        bound *= 4
    return _weights('uniform', rng, bound, n_in, n_out, shape)


def glorot_normal(rng, n_in, n_out, activation=T.tanh, shape=None):
    """Initial weights, normal, standard deviation sqrt(2 / (n_in + n_out)) (4x for sigmoid)."""
    std = numpy.sqrt(2.0 / (n_in + n_out))
    if activation is T.nnet.sigmoid:
        std *= 4
    return _weights('normal', rng, std, n_in, n_out, shape)


def he_uniform(rng, n_in, n_out, activation=relu, shape=None):
    """Initial weights for ReLUs, uniform in +-sqrt(6 / n_in): variance 2 / n_in."""
    return _weights('uniform', rng, numpy.sqrt(6.0 / n_in), n_in, n_out, shape)


def he_normal(rng, n_in, n_out, activation=relu, shape=None):
    """Initial weights for ReLUs, normal with standard deviation sqrt(2 / n_in)."""
    return _weights('normal', rng, numpy.sqrt(2.0 / n_in), n_in, n_out, shape)


#: Initialisers by name (the names the command line's ``--init`` takes).
INITIALISERS = OrderedDict([('glorot_uniform', glorot_uniform), ('glorot_normal', glorot_normal),
                            ('he_uniform', he_uniform), ('he_normal', he_normal)])


def orthogonal(rng, n):
    """A random orthogonal (n, n) floatX matrix: the recurrent weights' start.

    Multiplying by an orthogonal matrix keeps a vector's norm, so a state
    carried through many steps by the recurrent weights neither grows nor
    shrinks at first (Saxe et al. 2014); the original lstm.py's ``ortho_weight``.
    """
    u, _, _ = numpy.linalg.svd(rng.normal(size=(n, n)))
    return numpy.asarray(u, dtype=theano.config.floatX)


# --------------------------------------------------------------------------
# Dropout and batch normalization
# --------------------------------------------------------------------------

class Dropout(object):
    """Inverted dropout: ``Dropout(srng, p)(units)`` zeroes each unit with probability ``p``.

    The kept units are scaled by 1 / (1 - p), so their expected value is
    unchanged and the test-time network uses its units as they are (it does
    not call this).  A new mask is drawn at every call of the compiled
    function, from ``srng`` (the engine's MRG random streams).
    """

    def __init__(self, srng, p):
        self.srng, self.p = srng, p

    def __call__(self, units):
        keep = self.srng.binomial(size=units.shape, n=1, p=1 - self.p, dtype=units.dtype)
        return units * keep / T.cast(1 - self.p, units.dtype)


class BatchNorm(object):
    r"""Batch normalization of ``n_units`` units (features, or a convolution's maps).

    In training (``batch_norm(x, training=True)``) each unit is
    standardised with its mean and variance over the minibatch (and, for
    feature maps, over the positions):
    :math:`\hat x = (x - \mu_B) / \sqrt{\sigma_B^2 + \epsilon}`, then
    :math:`y = \gamma \hat x + \beta`.  ``updates`` then holds the updates
    of the running averages, for the training step:
    :math:`\mu \leftarrow (1 - m) \mu + m \mu_B` and the same for the
    variance, unbiased (PyTorch's ``BatchNorm``, momentum m = 0.1).  At test
    time (``training=False``) the running averages replace the batch's.

    ``params`` (gamma, beta) are trained; ``statistics`` (the running mean
    and variance) are not, but are saved with the model.

    Parameters
    ----------
    n_units : int
    axes : tuple of int
        the axes averaged over: ``(0,)`` for (n, units) input, ``(0, 2, 3)``
        for (n, maps, rows, columns).
    """

    def __init__(self, n_units, axes=(0,), momentum=0.1, epsilon=1e-5):
        floatX = theano.config.floatX
        self.axes, self.momentum, self.epsilon = tuple(axes), momentum, epsilon
        self.gamma = theano.shared(numpy.ones(n_units, dtype=floatX), name='gamma')
        self.beta = theano.shared(numpy.zeros(n_units, dtype=floatX), name='beta')
        self.running_mean = theano.shared(numpy.zeros(n_units, dtype=floatX),
                                          name='running_mean')
        self.running_var = theano.shared(numpy.ones(n_units, dtype=floatX), name='running_var')
        self.params = [self.gamma, self.beta]
        self.statistics = [self.running_mean, self.running_var]
        self.updates = OrderedDict()

    def _broadcast(self, vector, ndim):
        """A (units,) vector laid along the unit axis of an ndim-d input."""
        pattern = ['x'] * ndim
        pattern[[axis for axis in range(ndim) if axis not in self.axes][0]] = 0
        return vector.dimshuffle(*pattern)

    def __call__(self, x, training):
        if training:
            mean, var = x.mean(axis=self.axes), x.var(axis=self.axes)
            n = T.cast(T.prod([x.shape[axis] for axis in self.axes]), x.dtype)
            m = T.cast(self.momentum, x.dtype)
            self.updates[self.running_mean] = (1 - m) * self.running_mean + m * mean
            self.updates[self.running_var] = (1 - m) * self.running_var + m * var * n / (n - 1)
        else:
            mean, var = self.running_mean, self.running_var
        ndim = x.ndim
        scale = self.gamma / T.sqrt(var + T.cast(self.epsilon, x.dtype))
        return ((x - self._broadcast(mean, ndim)) * self._broadcast(scale, ndim)
                + self._broadcast(self.beta, ndim))
