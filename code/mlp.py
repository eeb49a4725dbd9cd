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
from pathlib import Path

import numpy

# Importing dltutorials first sets the engine's defaults (BLAS, floatX) before it reads them.
from dltutorials.support import command_line
from dltutorials.data_loading import load_data
from dltutorials.support.errors import HyperparameterError
from dltutorials.logistic_sgd import LogisticRegression
from dltutorials.support.model_files import load_params, read_params, report_predictions
from dltutorials.training import (build_minibatch_functions, check_positive,
                                  n_train_batches_of, train_and_save)
from dltutorials.updates import sgd

# Theano's names, from Theano or, on Python 3.12+, PyTensor (see dltutorials.support.engine).
from dltutorials.support.engine import T, theano

__all__ = ['HiddenLayer', 'MLP', 'test_mlp', 'train_mlp', 'load_mlp', 'predict']

logger = logging.getLogger(__name__)

MODEL_FILE = 'mlp.npz'


def glorot_uniform(rng, n_in, n_out, activation=T.tanh):
    """Initial weights (n_in, n_out), uniform in +-sqrt(6 / (n_in + n_out)), floatX.

    Glorot and Bengio (2010) derive this range for tanh so that activations
    and gradients keep their variance from layer to layer; sigmoid units,
    whose slope at 0 is a quarter of tanh's, need four times the range.
    """
    bound = numpy.sqrt(6.0 / (n_in + n_out))
    if activation is T.nnet.sigmoid:
        bound *= 4
    return numpy.asarray(rng.uniform(low=-bound, high=bound, size=(n_in, n_out)),
                         dtype=theano.config.floatX)


def layer_sizes(value, name, allow_single=False):
    """``value`` as a list of hidden layer sizes; HyperparameterError if it is not one.

    A non-empty sequence of positive integers, or with ``allow_single`` also
    one positive integer (one layer).  ``name`` is the argument named in the
    error.
    """
    if allow_single and isinstance(value, numbers.Integral):
        sizes = [value]
    else:
        sizes = list(value) if hasattr(value, '__iter__') else []
    if not sizes or not all(isinstance(s, numbers.Integral) and s > 0 for s in sizes):
        raise HyperparameterError('%s must be %s, got %r' % (
            name, 'a positive size or a list of them' if allow_single
            else 'a non-empty list of positive sizes', value))
    return sizes


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
        :func:`glorot_uniform`.
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
    """Hidden layer(s) of tanh units feeding a :class:`LogisticRegression`.

    Parameters
    ----------
    rng : numpy.random.RandomState
    input : Theano matrix (n_examples, n_in)
    n_in : int
    n_hidden : int, or sequence of int
        the hidden layer's size, or the sizes of several stacked hidden layers.
    n_out : int
        number of classes.

    ``hiddenLayer`` is the first hidden layer (the original tutorial's name),
    ``hidden_layers`` all of them, ``logRegressionLayer`` the output layer.
    """

    def __init__(self, rng, input, n_in, n_hidden, n_out):
        sizes = layer_sizes(n_hidden, 'n_hidden', allow_single=True)
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


def train_mlp(learning_rate=0.01, L1_reg=0.00, L2_reg=0.0001, n_epochs=1000,
              dataset='mnist.pkl.gz', batch_size=20, n_hidden=500, patience=10000, seed=1234,
              output_dir='results', quick=False, plot=True):
    """Train an MLP on ``dataset`` with minibatch SGD and early stopping.

    Parameters
    ----------
    learning_rate : float
    L1_reg, L2_reg : float
        weights of the L1 and squared-L2 penalties in the cost (>= 0).
    n_epochs : int
    dataset : str
        a .pkl.gz file, a folder of IDX files, or a known name.
    batch_size : int
    n_hidden : int or list of int
        hidden layer size(s).
    patience : int
        minibatches to look at before stopping without improvement.
    seed : int
        seeds the weight initialisation.
    output_dir : str
        where ``mlp.npz`` and ``mlp_curve.png`` go.
    quick : bool
        smoke test: one minibatch of each split, one epoch.
    plot : bool
        write the learning curve.

    Returns
    -------
    dict: the :class:`~dltutorials.training.TrainingResult` fields,
    ``model_file`` and ``plot_file``.
    """
    check_positive(learning_rate=learning_rate, n_epochs=n_epochs, batch_size=batch_size,
                   patience=patience)
    for name, value in (('L1_reg', L1_reg), ('L2_reg', L2_reg)):
        if not (isinstance(value, numbers.Real) and 0 <= value < float('inf')):
            raise HyperparameterError('%s must be >= 0, got %r' % (name, value))
    datasets = load_data(dataset, limit=batch_size if quick else None)
    n_train_batches = n_train_batches_of(datasets, batch_size)

    logger.info('... building the model')
    rng = numpy.random.RandomState(seed)
    x = T.matrix('x')
    y = T.ivector('y')
    classifier = MLP(rng=rng, input=x, n_in=28 * 28, n_hidden=n_hidden, n_out=10)
    train_fn, validate_fn, test_fn = build_mlp_functions(
        classifier, x, y, datasets, batch_size, learning_rate, L1_reg, L2_reg)

    logger.info('... training %r', classifier)
    return train_and_save(
        train_fn, validate_fn, test_fn, classifier.params, n_train_batches,
        1 if quick else n_epochs, Path(output_dir) / MODEL_FILE, plot=plot, patience=patience,
        meta=dict(model='MLP', n_in=28 * 28, n_hidden=classifier.n_hidden, n_out=10,
                  dataset=str(dataset)))


def test_mlp(learning_rate=0.01, L1_reg=0.00, L2_reg=0.0001, n_epochs=1000,
             dataset='mnist.pkl.gz', batch_size=20, n_hidden=500, **options):
    """The original tutorial's entry point: :func:`train_mlp` under its old name."""
    return train_mlp(learning_rate, L1_reg, L2_reg, n_epochs, dataset, batch_size, n_hidden,
                     **options)


# pytest would take test_mlp for a test of its own when this module is imported by one.
test_mlp.__test__ = False


def load_mlp(model_file, input=None):
    """Build an :class:`MLP` of the architecture saved in ``model_file`` and load its parameters.

    Returns ``(classifier, x)``: the model and its symbolic input (``input``,
    or a new matrix).  Raises ModelFileError for a file of another model.
    """
    saved = read_params(model_file)
    meta = saved[1]
    x = T.matrix('x') if input is None else input
    classifier = MLP(rng=numpy.random.RandomState(0), input=x, n_in=meta.get('n_in', 784),
                     n_hidden=meta.get('n_hidden', 500), n_out=meta.get('n_out', 10))
    load_params(model_file, classifier.params, saved)
    return classifier, x


def predict(model_file='results/' + MODEL_FILE, dataset='mnist.pkl.gz', images=None, n=10):
    """Print and return the saved MLP's predictions for ``images`` or the first test images."""
    classifier, x = load_mlp(model_file)
    return report_predictions(theano.function([x], classifier.y_pred), dataset, images, n)


def build_parser():
    parser = command_line.build_parser(__doc__.split('\n')[0])
    command_line.add_training_arguments(parser, learning_rate=0.01, n_epochs=1000,
                                        batch_size=20, patience=10000)
    parser.add_argument('--L1-reg', type=command_line.non_negative_float, default=0.0,
                        help='weight of the L1 penalty')
    parser.add_argument('--L2-reg', type=command_line.non_negative_float, default=0.0001,
                        help='weight of the squared L2 penalty')
    parser.add_argument('--n-hidden', type=command_line.positive_int, nargs='+', default=[500],
                        help='hidden layer size; several values stack several layers')
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    return command_line.train_or_predict(args, lambda: train_mlp(
        args.learning_rate, args.L1_reg, args.L2_reg, args.n_epochs, args.dataset,
        args.batch_size, args.n_hidden, patience=args.patience, seed=args.seed,
        output_dir=args.output_dir, quick=args.quick, plot=not args.no_plot), predict, MODEL_FILE)


if __name__ == '__main__':
    sys.exit(main())
