r"""Recurrent networks: a state carried from step to step, trained by backpropagation through time.

A recurrent layer reads a sequence :math:`x_1, \dots, x_T` one step at a
time and keeps a state :math:`h_t` that summarises what it has read.  The
same weights serve every step.  The simplest, Elman's network, is

.. math::

    h_t = \tanh(x_t W + h_{t-1} U + b)

Unrolled over the T steps it is a deep feed-forward network whose layers
share their weights, and ``T.grad`` of a cost through that unrolled graph is
*backpropagation through time* (BPTT).  Theano writes the loop as a
``scan`` over the time axis: the step function below is the body, and
``scan`` builds the gradient of the whole loop.

The gradient that reaches step t from the cost at step T has passed through
T - t products by :math:`U` and by the slopes of ``tanh``: it shrinks (or
grows) geometrically with the distance, so a plain RNN learns short
dependencies only (Bengio, Simard and Frasconi 1994).  Running this module
(``python code/recurrent.py``) measures it.  The *LSTM* (Hochreiter and
Schmidhuber 1997) carries a second state, the cell :math:`c_t`, that is
changed only by addition, under gates that read, keep and write it:

.. math::

    i_t, f_t, o_t &= \sigma(x_t W_{i,f,o} + h_{t-1} U_{i,f,o} + b_{i,f,o}) \\
    c_t &= f_t \odot c_{t-1} + i_t \odot \tanh(x_t W_c + h_{t-1} U_c + b_c) \\
    h_t &= o_t \odot \tanh(c_t)

While the forget gate :math:`f_t` stays near 1 the cell passes its gradient
back unchanged; its bias starts at 1 so that it does at first (Jozefowicz et
al. 2015).  The *GRU* (Cho et al. 2014) has one state and two gates, reset
:math:`r_t` and update :math:`z_t` (as PyTorch's ``nn.GRU``):

.. math::

    r_t, z_t &= \sigma(x_t W_{r,z} + h_{t-1} U_{r,z} + b_{r,z}) \\
    n_t &= \tanh(x_t W_n + b_n + r_t \odot (h_{t-1} U_n)) \\
    h_t &= (1 - z_t) \odot n_t + z_t \odot h_{t-1}

Three things make the layers practical.  The input projections
:math:`x_t W + b` of all steps do not depend on the state, so they are one
matrix product before the loop, and only :math:`h_{t-1} U` stays inside it;
the gates of a layer are one matrix, so that product is one call too.
Sequences of different lengths share a minibatch padded to the longest,
with a *mask* (1 for a real step, 0 for padding): at a padded step the state
is carried over unchanged, so a sequence's last state is the one of its
last real step.  And recurrent weights start orthogonal
(:func:`~dltutorials.layers.orthogonal`).  Exploding gradients, the other
side of the product above, are cut by rescaling the whole gradient when its
norm passes a limit (:func:`~dltutorials.updates.clip_grad_norm`).

Every layer takes a ``(time, batch, features)`` input and a ``(time,
batch)`` mask and gives ``output``, the states of every step ``(time, batch,
n_hidden)``, and ``final_states``, the states after the last step.

The loop over time is ``scan`` of the step functions below when a layer is
built with ``loop='scan'``: that is the version to read.  By default
(``loop='fused'``) the same loop runs as one C op for the whole sequence,
forward and backward (:mod:`dltutorials.support.fused_recurrent`), three to
four times faster; tests hold the two equal.

References:

- J. Elman, "Finding structure in time", Cognitive Science 1990
- Y. Bengio, P. Simard, P. Frasconi, "Learning long-term dependencies with
  gradient descent is difficult", IEEE Trans. Neural Networks 1994
- S. Hochreiter, J. Schmidhuber, "Long short-term memory", Neural Computation 1997
- K. Cho et al., "Learning phrase representations using RNN encoder-decoder
  for statistical machine translation", EMNLP 2014
- R. Jozefowicz, W. Zaremba, I. Sutskever, "An empirical exploration of
  recurrent network architectures", ICML 2015
- R. Pascanu, T. Mikolov, Y. Bengio, "On the difficulty of training
  recurrent neural networks", ICML 2013 (gradient clipping)
"""
import sys

import numpy

from dltutorials.layers import glorot_uniform, orthogonal
from dltutorials.support import fused_recurrent
from dltutorials.support.runs import tutorial_logger
# Theano's names, from Theano or, on Python 3.12+, PyTensor (see dltutorials.support.engine).
from dltutorials.support.engine import T, theano

__all__ = ['RNN', 'LSTM', 'GRU', 'ENCODERS', 'LOOPS', 'keep_padded', 'gradient_norm_by_step']

logger = tutorial_logger(__name__)


def keep_padded(mask, new_state, old_state):
    """``new_state`` where ``mask`` is 1 (a real step), ``old_state`` where it is 0 (padding).

    ``mask``: (batch,); the states: (batch, n_hidden).
    """
    mask = mask.dimshuffle(0, 'x')
    return mask * new_state + (1 - mask) * old_state


def _slice(gates, k, n):
    """Gate ``k`` of the ``n``-wide gates laid side by side in ``gates`` (batch, n_gates * n)."""
    return gates[:, k * n:(k + 1) * n]


class RecurrentLayer(object):
    """What the three layers share: weights, the input projection, the loop over time.

    A subclass sets ``n_gates`` (how many n_hidden-wide blocks its weights
    have), ``n_states`` (h, or h and c) and writes :meth:`step`.

    Parameters
    ----------
    rng : numpy.random.RandomState
        draws the initial weights.
    input : Theano tensor3 (time, batch, n_in)
    n_in, n_hidden : int
    mask : Theano matrix (time, batch), optional
        1 for real steps, 0 for padding; default all ones.
    initial_states : list of Theano matrices (batch, n_hidden), optional
        the states before the first step (h, and the LSTM's c); default zeros.
    W, U, b : shared variables, optional
        input weights (n_in, n_gates * n_hidden), recurrent weights
        (n_hidden, n_gates * n_hidden) and biases (n_gates * n_hidden,);
        default Glorot-uniform W, orthogonal U, biases from :meth:`initial_bias`.
    prefix : str
        names the shared variables (``lstm_W`` ...).
    loop : str
        ``'scan'``: the loop over time is a ``scan`` of :meth:`step`, as
        this page shows it; ``'fused'`` (the default): the same loop as one C
        op for the whole sequence, forward and backward, several times faster
        (:mod:`dltutorials.support.fused_recurrent`; scan where the engine
        has no C compiler).
    """

    n_gates = 1
    n_states = 1
    cell = None        # the fused op's name for the layer's step, if it has one

    def __init__(self, rng, input, n_in, n_hidden, mask=None, initial_states=None, W=None,
                 U=None, b=None, prefix=None, loop='fused'):
        floatX = theano.config.floatX
        prefix = type(self).__name__.lower() if prefix is None else prefix
        self.input, self.n_in, self.n_hidden = input, n_in, n_hidden
        if W is None:
            W = theano.shared(numpy.concatenate(
                [glorot_uniform(rng, n_in, n_hidden) for _ in range(self.n_gates)], axis=1),
                name=prefix + '_W')
        if U is None:
            U = theano.shared(self.initial_recurrent_weights(rng, n_hidden), name=prefix + '_U')
        if b is None:
            b = theano.shared(self.initial_bias(n_hidden).astype(floatX), name=prefix + '_b')
        self.W, self.U, self.b = W, U, b
        self.params = [self.W, self.U, self.b]

        n_steps, n_batch = input.shape[0], input.shape[1]
        if mask is None:
            mask = T.ones((n_steps, n_batch), dtype=floatX)
        self.mask = mask
        if initial_states is None:
            initial_states = [T.zeros((n_batch, n_hidden), dtype=floatX)
                              for _ in range(self.n_states)]
        self.initial_states = list(initial_states)

        # The input projections of every step at once: (time, batch, n_gates * n_hidden).
        if loop == 'fused' and self.cell is not None and fused_recurrent.available():
            states = fused_recurrent.recurrence(self.cell, T.dot(input, self.W), self.b, mask,
                                                self.U, self.initial_states)
        else:
            projected = T.dot(input, self.W) + self.b
            states, _ = theano.scan(self.step, sequences=[mask, projected],
                                    outputs_info=self.initial_states, non_sequences=[self.U],
                                    name=prefix + '_scan')
        states = states if isinstance(states, (list, tuple)) else [states]
        #: The hidden states of every step (time, batch, n_hidden).
        self.output = states[0]
        #: The states after the last step, each (batch, n_hidden): h (and the LSTM's c).
        self.final_states = [state[-1] for state in states]

    @classmethod
    def initial_recurrent_weights(cls, rng, n_hidden):
        """The recurrent weights' start, (n_hidden, n_gates * n_hidden): one orthogonal block a gate."""
        return numpy.concatenate([orthogonal(rng, n_hidden) for _ in range(cls.n_gates)], axis=1)

    @classmethod
    def initial_bias(cls, n_hidden):
        """The biases' starting values, (n_gates * n_hidden,): zeros."""
        return numpy.zeros(cls.n_gates * n_hidden)

    def __repr__(self):
        return '%s(n_in=%d, n_hidden=%d)' % (type(self).__name__, self.n_in, self.n_hidden)


class RNN(RecurrentLayer):
    """Elman's recurrent layer: ``h_t = tanh(x_t W + h_{t-1} U + b)``."""

    cell = 'rnn'

    def step(self, mask, x_projected, h_previous, U):
        """One step: mask (batch,), x_projected = x_t W + b (batch, n), h_previous (batch, n)."""
        h = T.tanh(x_projected + T.dot(h_previous, U))
        return keep_padded(mask, h, h_previous)


class LSTM(RecurrentLayer):
    """Long short-term memory: gates in the order input, forget, output, cell candidate."""

    n_gates = 4
    n_states = 2
    cell = 'lstm'

    @classmethod
    def initial_bias(cls, n_hidden):
        """Zeros, but 1 for the forget gate: the cell keeps its content at first."""
        bias = numpy.zeros(cls.n_gates * n_hidden)
        bias[n_hidden:2 * n_hidden] = 1.0
        return bias

    def step(self, mask, x_projected, h_previous, c_previous, U):
        """One step: ``x_projected`` (batch, 4n) holds x_t W + b for the four gates."""
        n = self.n_hidden
        gates = x_projected + T.dot(h_previous, U)
        i = T.nnet.sigmoid(_slice(gates, 0, n))
        f = T.nnet.sigmoid(_slice(gates, 1, n))
        o = T.nnet.sigmoid(_slice(gates, 2, n))
        c = f * c_previous + i * T.tanh(_slice(gates, 3, n))
        h = o * T.tanh(c)
        return keep_padded(mask, h, h_previous), keep_padded(mask, c, c_previous)


class GRU(RecurrentLayer):
    """Gated recurrent unit: reset and update gates, then the new state (PyTorch's form)."""

    n_gates = 3
    cell = 'gru'

    def step(self, mask, x_projected, h_previous, U):
        """One step: ``x_projected`` (batch, 3n) holds x_t W + b for r, z and n."""
        n = self.n_hidden
        h_U = T.dot(h_previous, U)
        r = T.nnet.sigmoid(_slice(x_projected, 0, n) + _slice(h_U, 0, n))
        z = T.nnet.sigmoid(_slice(x_projected, 1, n) + _slice(h_U, 1, n))
        candidate = T.tanh(_slice(x_projected, 2, n) + r * _slice(h_U, 2, n))
        h = (1 - z) * candidate + z * h_previous
        return keep_padded(mask, h, h_previous)


#: The layers by name (the ``encoder`` that lstm.py and char_rnn.py take).
ENCODERS = {'rnn': RNN, 'lstm': LSTM, 'gru': GRU}

#: The loops over time a layer can run (its ``loop``).
LOOPS = ('fused', 'scan')


# --------------------------------------------------------------------------
# The vanishing gradient, measured
# --------------------------------------------------------------------------

def gradient_norm_by_step(layer_class, n_steps=50, n_in=10, n_hidden=100, batch_size=20,
                          seed=1234):
    """How much gradient reaches each step's input from a cost on the last step's state.

    A freshly initialised layer reads ``n_steps`` steps of standard normal
    input; the cost is the sum of its last hidden state.  Returns a numpy
    array (n_steps,): the norm of d cost / d x_t over the batch, for t = 1
    .. n_steps, divided by the norm at the last step.
    """
    rng = numpy.random.RandomState(seed)
    x = T.tensor3('x')
    layer = layer_class(rng, x, n_in, n_hidden)
    cost = layer.final_states[0].sum()
    gradient = T.grad(cost, x)
    norms = T.sqrt((gradient ** 2).sum(axis=(1, 2)))
    measure = theano.function([x], norms)
    inputs = rng.normal(size=(n_steps, batch_size, n_in)).astype(theano.config.floatX)
    values = numpy.asarray(measure(inputs), dtype=numpy.float64)
    return values / values[-1]


def main(argv=None):
    """Print the gradient reaching each step for the RNN, the GRU and the LSTM."""
    n_steps = 50
    norms = {name: gradient_norm_by_step(layer, n_steps) for name, layer in ENCODERS.items()}
    print('gradient norm reaching step t from the last step (%d), relative to step %d'
          % (n_steps, n_steps))
    print('steps back  ' + ''.join('%12s' % name for name in norms))
    for back in (0, 1, 2, 5, 10, 20, 30, 49):
        print('%10d  ' % back + ''.join('%12.3g' % values[n_steps - 1 - back]
                                        for values in norms.values()))
    return 0


if __name__ == '__main__':
    sys.exit(main())
