"""A multilayer perceptron: logistic regression on top of learned features.

A multilayer perceptron (MLP) is a logistic regression classifier whose input
is first transformed by a learnt non-linear map :math:`\\Phi`, which projects
the data into a space where it becomes linearly separable.  With one hidden
layer of non-linear units, :math:`s` (``tanh`` here):

.. math::

    f(x) = \\mathrm{softmax}\\left(W^{(2)} s\\left(W^{(1)} x + b^{(1)}\\right) + b^{(2)}\\right)

A single hidden layer already makes the MLP a universal approximator; more
layers can be stacked by giving a list of sizes.  Training is minibatch SGD
on the negative log-likelihood plus L1 and L2 penalties on the weights, with
the gradients computed by backpropagation, here ``T.grad``.

Run it::

    python code/mlp.py                              # the tutorial's settings
    python code/mlp.py --dataset fashion-mnist --n-epochs 20
    python code/mlp.py --quick                      # smoke test: seconds
    python code/mlp.py --predict                    # first 10 test digits

References:

- textbooks: C. M. Bishop, "Pattern Recognition and Machine Learning", chapter 5
- X. Glorot and Y. Bengio, "Understanding the difficulty of training deep
  feedforward neural networks", AISTATS 2010 (the initialisation)
"""
import functools
import numbers
import sys
from collections import OrderedDict

import numpy

# Importing dltutorials first sets the engine's defaults (BLAS, floatX) before it reads them.
from dltutorials.layers import (ACTIVATIONS, INITIALISERS, BatchNorm, Dropout,
                                glorot_uniform)
from dltutorials.logistic_sgd import LogisticRegression
from dltutorials.preprocessing import (AUGMENTATIONS, WHITENINGS, Whitening, build_whitened,
                                       data_of_each_epoch)
from dltutorials.support import checks, command_line
from dltutorials.support.models import load_network
from dltutorials.support.runs import entry_point, tutorial_logger
from dltutorials.training import (build_minibatch_functions, load_training_data, train_and_save,
                                  training_updates)
from dltutorials.updates import OPTIMIZERS, SCHEDULES

# Theano's names, from Theano or, on Python 3.12+, PyTensor (see dltutorials.support.engine).
from dltutorials.support.engine import MRG_RandomStreams, T, theano

__all__ = ['HiddenLayer', 'MLP', 'test_mlp', 'train_mlp', 'load_mlp']

logger = tutorial_logger(__name__)

MODEL_FILE = 'mlp.npz'


class HiddenLayer(object):
    """A fully connected layer: ``output = activation(dot(input, W) + b)``.

    With ``batch_norm``, ``dot(input, W) + b`` is batch-normalized before the
    activation; with ``dropout``, units are dropped in training.  Both make
    training differ from testing: ``train_output`` is then the training
    graph, on ``train_input``, and ``output`` the deterministic test graph
    (see :mod:`dltutorials.layers`).  Without them the two are one.

    Parameters
    ----------
    rng : numpy.random.RandomState
        draws the initial weights.
    input : Theano matrix (n_examples, n_in)
    n_in, n_out : int
        input and output dimensions.
    W : shared variable (n_in, n_out), optional
        weights to use (shared with another layer, or loaded); default
        drawn by ``init``.
    b : shared variable (n_out,), optional
        biases; default zeros.
    activation : Theano function, or None for a linear layer
    init : function, optional
        an initialiser of :mod:`dltutorials.layers`; default
        :func:`~dltutorials.layers.glorot_uniform`.
    batch_norm : bool
    dropout : float
        the probability of dropping a unit in training.
    srng : MRG_RandomStreams
        draws the dropout masks (needed with ``dropout``).
    train_input : Theano matrix, optional
        the training graph's input (the layer below's ``train_output``);
        default ``input``.
    """

    def __init__(self, rng, input, n_in, n_out, W=None, b=None, activation=T.tanh,
                 init=glorot_uniform, batch_norm=False, dropout=0.0, srng=None,
                 train_input=None):
        self.input = input
        if W is None:
            W = theano.shared(value=init(rng, n_in, n_out, activation), name='W', borrow=True)
        if b is None:
            b = theano.shared(value=numpy.zeros((n_out,), dtype=theano.config.floatX),
                              name='b', borrow=True)
        self.W = W
        self.b = b
        self.n_in, self.n_out, self.activation = n_in, n_out, activation
        self.batch_norm = BatchNorm(n_out) if batch_norm else None

        # (n_examples, n_out)
        self.output = self.apply(input, training=False)
        if train_input is None:
            train_input = input
        if batch_norm or dropout or train_input is not input:
            train_output = self.apply(train_input, training=True)
            self.train_output = Dropout(srng, dropout)(train_output) if dropout \
                else train_output
        else:
            self.train_output = self.output
        self.params = [self.W, self.b] + (self.batch_norm.params if batch_norm else [])
        self.statistics = self.batch_norm.statistics if batch_norm else []
        self.updates = self.batch_norm.updates if batch_norm else {}

    def apply(self, input, training):
        """The layer's units for ``input``: with batch statistics if ``training``."""
        linear_output = T.dot(input, self.W) + self.b
        if self.batch_norm is not None:
            linear_output = self.batch_norm(linear_output, training)
        return linear_output if self.activation is None else self.activation(linear_output)

    def __repr__(self):
        # T.tanh is an Elemwise op wrapping the scalar op that carries the name.
        name = getattr(getattr(self.activation, 'scalar_op', None), 'name', None) or \
            getattr(self.activation, '__name__', repr(self.activation))
        return 'HiddenLayer(n_in=%d, n_out=%d, activation=%s)' % (self.n_in, self.n_out, name)


class MLP(object):
    """Hidden layer(s) under a :class:`~dltutorials.logistic_sgd.LogisticRegression`.

    ``hiddenLayer`` is the first hidden layer (the original tutorial's name),
    ``hidden_layers`` all of them, ``logRegressionLayer`` the output layer.
    The defaults are the tutorial's: tanh units, Glorot's initialisation.

    ``negative_log_likelihood``, ``errors`` and ``y_pred`` are the test
    graph's; the cost to train is ``train_negative_log_likelihood``, which
    differs with dropout or batch normalization (and then ``updates`` holds
    the running averages' updates, for the training step).

    Parameters
    ----------
    rng : numpy.random.RandomState
    input : Theano matrix (n_examples, n_in)
    n_in : int
    n_hidden : int, or sequence of int
        the hidden layer's size, or the sizes of several stacked hidden layers.
    n_out : int
        number of classes.
    activation : str
        the hidden units' activation, a name of
        :data:`~dltutorials.layers.ACTIVATIONS`.
    init : str
        the initialiser of the hidden weights, a name of
        :data:`~dltutorials.layers.INITIALISERS`.
    dropout : float
        the probability of dropping a hidden unit in training.
    batch_norm : bool
        batch-normalize every hidden layer.
    whitening_components : int, optional
        first project the input onto this many whitened directions (see
        :mod:`dltutorials.preprocessing`): a fixed layer, fitted to the
        training set, whose ``mean`` and ``transform`` are set after
        construction and saved with the model.
    """

    def __init__(self, rng, input, n_in, n_hidden, n_out, activation='tanh',
                 init='glorot_uniform', dropout=0.0, batch_norm=False,
                 whitening_components=None):
        sizes = [n_hidden] if isinstance(n_hidden, numbers.Integral) else list(n_hidden)
        self.input = input
        self.n_in, self.n_hidden, self.n_out = n_in, sizes, n_out
        self.whitening = None
        if whitening_components:
            self.whitening = Whitening(input, n_in, whitening_components)
            input, n_in = self.whitening.output, whitening_components
        srng = MRG_RandomStreams(rng.randint(2 ** 30)) if dropout else None
        self.hidden_layers = []
        layer_input, layer_train_input, layer_n_in = input, None, n_in
        for size in sizes:
            layer = HiddenLayer(rng=rng, input=layer_input, n_in=layer_n_in, n_out=size,
                                activation=ACTIVATIONS[activation], init=INITIALISERS[init],
                                batch_norm=batch_norm, dropout=dropout, srng=srng,
                                train_input=layer_train_input)
            self.hidden_layers.append(layer)
            layer_input, layer_train_input, layer_n_in = \
                layer.output, layer.train_output, size
        self.hiddenLayer = self.hidden_layers[0]
        self.logRegressionLayer = LogisticRegression(input=layer_input, n_in=layer_n_in,
                                                     n_out=n_out)
        output_layer = self.logRegressionLayer
        # The training graph's output layer: the same weights on the training units.
        train_output_layer = output_layer if layer_train_input is layer_input else \
            LogisticRegression(layer_train_input, layer_n_in, n_out, W=output_layer.W,
                               b=output_layer.b)
        self.options = dict(activation=activation, init=init, dropout=dropout,
                            batch_norm=batch_norm)

        weights = [layer.W for layer in self.hidden_layers] + [self.logRegressionLayer.W]
        # L1 norm and squared L2 norm of the weights (not the biases): the
        # regularisation terms added to the cost.
        self.L1 = sum(abs(W).sum() for W in weights)
        self.L2_sqr = sum((W ** 2).sum() for W in weights)

        self.negative_log_likelihood = self.logRegressionLayer.negative_log_likelihood
        self.train_negative_log_likelihood = train_output_layer.negative_log_likelihood
        self.errors = self.logRegressionLayer.errors
        self.y_pred = self.logRegressionLayer.y_pred
        self.params = sum((layer.params for layer in self.hidden_layers), []) + \
            self.logRegressionLayer.params
        # Not trained by gradient, but part of the model: saved with it.
        self.statistics = ([] if self.whitening is None else self.whitening.statistics) + \
            sum((layer.statistics for layer in self.hidden_layers), [])
        self.updates = OrderedDict()
        for layer in self.hidden_layers:
            self.updates.update(layer.updates)

    def __repr__(self):
        options = ''.join(', %s=%r' % item for item in self.options.items()
                          if item[1] != DEFAULT_OPTIONS[item[0]])
        return 'MLP(n_in=%d, n_hidden=%s, n_out=%d%s)' % (
            self.n_in, self.n_hidden[0] if len(self.n_hidden) == 1 else self.n_hidden,
            self.n_out, options)


#: The tutorial's recipe (what MLP's options default to).
DEFAULT_OPTIONS = dict(activation='tanh', init='glorot_uniform', dropout=0.0, batch_norm=False)


def build_mlp_functions(classifier, x, y, datasets, batch_size, learning_rate, L1_reg, L2_reg,
                        **training_options):
    """Compile the training step and the two scorers for an :class:`MLP`.

    The cost is the negative log-likelihood (of the training graph) plus
    ``L1_reg * L1 + L2_reg * L2_sqr``; ``training_options`` (optimizer,
    schedule, n_train_batches, max_norm) go to
    :func:`~dltutorials.training.training_updates`.  Returns ``(train_fn,
    validate_fn, test_fn)`` as
    :func:`~dltutorials.training.build_minibatch_functions` does.
    """
    cost = (classifier.train_negative_log_likelihood(y)
            + L1_reg * classifier.L1
            + L2_reg * classifier.L2_sqr)
    updates = training_updates(classifier, cost, learning_rate,
                               constrained=[layer.W for layer in classifier.hidden_layers],
                               **training_options)
    return build_minibatch_functions(x, y, cost, classifier.errors(y), updates,
                                     datasets, batch_size)


#: The rules of the tricks' arguments, which the MLP and LeNet share.
TRICK_RULES = dict(optimizer=checks.Choice(OPTIMIZERS), schedule=checks.Choice(SCHEDULES),
                   activation=checks.Choice(ACTIVATIONS), init=checks.Choice(INITIALISERS),
                   dropout=checks.fraction, batch_norm=checks.switch, max_norm=checks.positive,
                   augment=checks.Choice(AUGMENTATIONS, each=True), shuffle=checks.switch,
                   overfit=checks.positive_int)


@entry_point(learning_rate=checks.positive, L1_reg=checks.non_negative,
             L2_reg=checks.non_negative, n_epochs=checks.positive_int,
             batch_size=checks.positive_int, n_hidden=checks.size_or_sizes,
             patience=checks.positive_int, seed=checks.seed,
             whiten=checks.Choice(WHITENINGS), **TRICK_RULES)
def train_mlp(learning_rate=0.01, L1_reg=0.00, L2_reg=0.0001, n_epochs=1000,
              dataset='mnist.pkl.gz', batch_size=20, n_hidden=500, patience=10000, seed=1234,
              verbose=True, optimizer='sgd', schedule='constant', activation='tanh',
              init='glorot_uniform', dropout=0.0, batch_norm=False, max_norm=None, whiten=None,
              shuffle=False, augment=None, overfit=None):
    """Train an MLP on ``dataset`` with minibatch SGD and early stopping.

    The defaults are the tutorial's recipe; the tricks of the trade are
    options (see the "Tricks of the trade" page).

    Parameters
    ----------
    learning_rate : float
        the step size (the initial one, with a schedule).
    L1_reg, L2_reg : float
        weights of the L1 and squared-L2 penalties in the cost (>= 0).
    n_epochs : int
        the most passes over the training set.
    dataset : str
        a .pkl.gz file, a folder of IDX files, or a known name.
    batch_size : int
        examples per minibatch.
    n_hidden : int or list of int
        hidden layer size(s).
    patience : int
        minibatches to look at before stopping without improvement.
    seed : int
        seeds the weight initialisation (and the dropout masks, the augmentation).
    verbose : bool
        show the progress where no logging is set up (a notebook).
    optimizer : str
        the update rule: sgd, momentum, nesterov, adagrad, rmsprop, adadelta, adam, adaptive_gains.
    schedule : str
        how the learning rate changes with the epochs: constant, inverse_time, step, exponential.
    activation : str
        the hidden units: tanh, sigmoid, relu, leaky_relu, elu.
    init : str
        the hidden weights' initialisation: glorot_uniform, glorot_normal, he_uniform, he_normal.
    dropout : float
        the probability of dropping a hidden unit in training.
    batch_norm : bool
        batch-normalize the hidden layers.
    max_norm : float
        the largest norm of a hidden unit's incoming weights (default: no limit).
    whiten : str
        whiten the inputs first: pca or zca (default: no).
    shuffle : bool
        a new random order of the training examples every epoch.
    augment : list of str
        new random copies of the training images every epoch: shift (by up
        to 2 pixels), flip (left-right).
    overfit : int
        debugging: train on this many training examples only and report
        whether the training error reaches 0.

    Returns
    -------
    dict: the :class:`~dltutorials.training.TrainingResult` fields,
    ``model_file`` (``mlp.npz`` in the output folder), ``plot_file`` and
    ``model``.
    """
    datasets, n_train_batches = load_training_data(dataset, batch_size, overfit)

    logger.info('... building the model')
    rng = numpy.random.RandomState(seed)
    x = T.matrix('x')
    y = T.ivector('y')
    architecture = dict(n_in=28 * 28, n_hidden=n_hidden, n_out=10, activation=activation,
                        init=init, dropout=dropout, batch_norm=batch_norm,
                        whitening_components=None)
    classifier = build_whitened(functools.partial(MLP, rng=rng, input=x), architecture,
                                datasets[0][0].get_value(borrow=True), whiten)
    train_fn, validate_fn, test_fn = build_mlp_functions(
        classifier, x, y, datasets, batch_size, learning_rate, L1_reg, L2_reg,
        optimizer=optimizer, schedule=schedule, n_train_batches=n_train_batches,
        max_norm=max_norm)

    logger.info('... training %r', classifier)
    return train_and_save(classifier, train_fn, validate_fn, test_fn, n_train_batches, n_epochs,
                          MODEL_FILE, architecture, dataset, patience=patience, overfit=overfit,
                          on_epoch_start=data_of_each_epoch(datasets[0], seed, shuffle, augment))


def test_mlp(learning_rate=0.01, L1_reg=0.00, L2_reg=0.0001, n_epochs=1000,
             dataset='mnist.pkl.gz', batch_size=20, n_hidden=500, **options):
    """The original tutorial's entry point: :func:`train_mlp` under its old name."""
    return train_mlp(learning_rate, L1_reg, L2_reg, n_epochs, dataset, batch_size, n_hidden,
                     **options)


def load_mlp(model_file, input=None):
    """Build the :class:`MLP` saved in ``model_file`` and load its parameters.

    Returns ``(classifier, x)``: the model and its symbolic input (``input``,
    or a new matrix).  Raises ModelFileError for a file of another model
    (:func:`dltutorials.load_model` loads any).
    """
    classifier = load_network(model_file, 'MLP', input)
    return classifier, classifier.input


def main(argv=None):
    return command_line.main(train_mlp, MODEL_FILE, __doc__, argv)


if __name__ == '__main__':
    sys.exit(main())
