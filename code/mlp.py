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
import logging
import numbers
import sys

import numpy

# Importing dltutorials first sets the engine's defaults (BLAS, floatX) before it reads them.
from dltutorials.layers import glorot_uniform
from dltutorials.logistic_sgd import LogisticRegression
from dltutorials.support import checks, command_line
from dltutorials.support.models import load_network
from dltutorials.support.runs import entry_point, load_training_data, train_and_save
from dltutorials.training import build_minibatch_functions
from dltutorials.updates import sgd

# Theano's names, from Theano or, on Python 3.12+, PyTensor (see dltutorials.support.engine).
from dltutorials.support.engine import T, theano

__all__ = ['HiddenLayer', 'MLP', 'test_mlp', 'train_mlp', 'load_mlp']

logger = logging.getLogger(__name__)

MODEL_FILE = 'mlp.npz'


class HiddenLayer(object):
    """A fully connected layer: ``output = activation(dot(input, W) + b)``.

    Parameters
    ----------
    rng : numpy.random.RandomState
        draws the initial weights.
    input : Theano matrix (n_examples, n_in)
    n_in, n_out : int
        input and output dimensions.
    W : shared variable (n_in, n_out), optional
        weights to use (shared with another layer, or loaded); default
        :func:`~dltutorials.layers.glorot_uniform`.
    b : shared variable (n_out,), optional
        biases; default zeros.
    activation : Theano function, or None for a linear layer
    """

    def __init__(self, rng, input, n_in, n_out, W=None, b=None, activation=T.tanh):
        self.input = input
        if W is None:
            W = theano.shared(value=glorot_uniform(rng, n_in, n_out, activation),
                              name='W', borrow=True)
        if b is None:
            b = theano.shared(value=numpy.zeros((n_out,), dtype=theano.config.floatX),
                              name='b', borrow=True)
        self.W = W
        self.b = b
        self.n_in, self.n_out, self.activation = n_in, n_out, activation

        linear_output = T.dot(input, self.W) + self.b
        # (n_examples, n_out)
        self.output = linear_output if activation is None else activation(linear_output)
        self.params = [self.W, self.b]

    def __repr__(self):
        # T.tanh is an Elemwise op wrapping the scalar op that carries the name.
        name = getattr(getattr(self.activation, 'scalar_op', None), 'name', None) or \
            getattr(self.activation, '__name__', repr(self.activation))
        return 'HiddenLayer(n_in=%d, n_out=%d, activation=%s)' % (self.n_in, self.n_out, name)


class MLP(object):
    """Hidden layer(s) of tanh units under a :class:`~dltutorials.logistic_sgd.LogisticRegression`.

    ``hiddenLayer`` is the first hidden layer (the original tutorial's name),
    ``hidden_layers`` all of them, ``logRegressionLayer`` the output layer.

    Parameters
    ----------
    rng : numpy.random.RandomState
    input : Theano matrix (n_examples, n_in)
    n_in : int
    n_hidden : int, or sequence of int
        the hidden layer's size, or the sizes of several stacked hidden layers.
    n_out : int
        number of classes.
    """

    def __init__(self, rng, input, n_in, n_hidden, n_out):
        sizes = [n_hidden] if isinstance(n_hidden, numbers.Integral) else list(n_hidden)
        self.input = input
        self.hidden_layers = []
        layer_input, layer_n_in = input, n_in
        for size in sizes:
            layer = HiddenLayer(rng=rng, input=layer_input, n_in=layer_n_in, n_out=size,
                                activation=T.tanh)
            self.hidden_layers.append(layer)
            layer_input, layer_n_in = layer.output, size
        self.hiddenLayer = self.hidden_layers[0]
        self.logRegressionLayer = LogisticRegression(input=layer_input, n_in=layer_n_in,
                                                     n_out=n_out)
        self.n_in, self.n_hidden, self.n_out = n_in, sizes, n_out

        weights = [layer.W for layer in self.hidden_layers] + [self.logRegressionLayer.W]
        # L1 norm and squared L2 norm of the weights (not the biases): the
        # regularisation terms added to the cost.
        self.L1 = sum(abs(W).sum() for W in weights)
        self.L2_sqr = sum((W ** 2).sum() for W in weights)

        self.negative_log_likelihood = self.logRegressionLayer.negative_log_likelihood
        self.errors = self.logRegressionLayer.errors
        self.y_pred = self.logRegressionLayer.y_pred
        self.params = sum((layer.params for layer in self.hidden_layers), []) + \
            self.logRegressionLayer.params

    def __repr__(self):
        return 'MLP(n_in=%d, n_hidden=%s, n_out=%d)' % (
            self.n_in, self.n_hidden[0] if len(self.n_hidden) == 1 else self.n_hidden,
            self.n_out)


def build_mlp_functions(classifier, x, y, datasets, batch_size, learning_rate, L1_reg, L2_reg):
    """Compile the training step and the two scorers for an :class:`MLP`.

    The cost is the negative log-likelihood plus ``L1_reg * L1 + L2_reg *
    L2_sqr``.  Returns ``(train_fn, validate_fn, test_fn)`` as
    :func:`~dltutorials.training.build_minibatch_functions` does.
    """
    cost = (classifier.negative_log_likelihood(y)
            + L1_reg * classifier.L1
            + L2_reg * classifier.L2_sqr)
    updates = sgd(cost, classifier.params, learning_rate)
    return build_minibatch_functions(x, y, cost, classifier.errors(y), updates,
                                     datasets, batch_size)


@entry_point(learning_rate=checks.positive, L1_reg=checks.non_negative,
             L2_reg=checks.non_negative, n_epochs=checks.positive_int,
             batch_size=checks.positive_int, n_hidden=checks.size_or_sizes,
             patience=checks.positive_int, seed=checks.seed)
def train_mlp(learning_rate=0.01, L1_reg=0.00, L2_reg=0.0001, n_epochs=1000,
              dataset='mnist.pkl.gz', batch_size=20, n_hidden=500, patience=10000, seed=1234,
              verbose=True):
    """Train an MLP on ``dataset`` with minibatch SGD and early stopping.

    Parameters
    ----------
    learning_rate : float
        SGD step size.
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
        seeds the weight initialisation.
    verbose : bool
        show the progress where no logging is set up (a notebook).

    Returns
    -------
    dict: the :class:`~dltutorials.training.TrainingResult` fields,
    ``model_file`` (``mlp.npz`` in the output folder), ``plot_file`` and
    ``model``.
    """
    datasets, n_train_batches = load_training_data(dataset, batch_size)

    logger.info('... building the model')
    rng = numpy.random.RandomState(seed)
    x = T.matrix('x')
    y = T.ivector('y')
    architecture = dict(n_in=28 * 28, n_hidden=n_hidden, n_out=10)
    classifier = MLP(rng=rng, input=x, **architecture)
    train_fn, validate_fn, test_fn = build_mlp_functions(
        classifier, x, y, datasets, batch_size, learning_rate, L1_reg, L2_reg)

    logger.info('... training %r', classifier)
    return train_and_save(classifier, train_fn, validate_fn, test_fn, n_train_batches, n_epochs,
                          MODEL_FILE, architecture, dataset, patience=patience)


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
