r"""Pieces every layer shares: how its weights start.

A layer's initial weights must break the symmetry between its units (all
zeros would make every unit learn the same thing) and keep the signal's
scale from layer to layer.  Glorot and Bengio (2010) derive a uniform range
for tanh units from the numbers of inputs and outputs of each unit,
*fan-in* and *fan-out*:

.. math::

    W_{ij} \sim U\left[-\sqrt{\frac{6}{\mathrm{fan_{in}} + \mathrm{fan_{out}}}},
                       \sqrt{\frac{6}{\mathrm{fan_{in}} + \mathrm{fan_{out}}}}\right]

The MLP's hidden layers, LeNet's convolutional layers and the autoencoders
all start from it.

References:

- X. Glorot and Y. Bengio, "Understanding the difficulty of training deep
  feedforward neural networks", AISTATS 2010
"""
import numpy

# Theano's names, from Theano or, on Python 3.12+, PyTensor (see dltutorials.support.engine).
from dltutorials.support.engine import T, theano

__all__ = ['glorot_uniform']


def glorot_uniform(rng, n_in, n_out, activation=T.tanh, shape=None):
    """Initial weights, uniform in +-sqrt(6 / (n_in + n_out)), floatX.

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
    return numpy.asarray(rng.uniform(low=-bound, high=bound,
                                     size=(n_in, n_out) if shape is None else shape),
                         dtype=theano.config.floatX)
