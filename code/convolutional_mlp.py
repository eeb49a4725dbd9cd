"""LeNet: a convolutional network for digit images.

Convolutional networks exploit the 2-D structure of images.  A convolutional
layer applies the same small filters at every position of its input, so it
detects a feature wherever it appears, with few parameters; max-pooling then
keeps the strongest response in each small window, which shrinks the maps and
makes the features robust to small shifts.  For input feature maps
:math:`x^{(m)}`, the k-th output map of a conv-pool layer is

.. math::

    h^{(k)} = \\tanh\\left(\\mathrm{maxpool}\\left(\\sum_m W^{(k,m)} * x^{(m)}\\right) + b_k\\right)

LeNet-5, as simplified in the tutorial, stacks two conv-pool layers (5 x 5
filters, 2 x 2 pooling: 28 x 28 -> 12 x 12 -> 4 x 4), then a fully connected
tanh layer of 500 units and a logistic regression output layer.

Run it::

    python code/convolutional_mlp.py                  # the tutorial's settings
    python code/convolutional_mlp.py --dataset fashion-mnist --n-epochs 10
    python code/convolutional_mlp.py --quick          # smoke test: seconds
    python code/convolutional_mlp.py --predict        # first 10 test digits

On more than one core, LeNet's functions are compiled with Theano's OpenMP,
which makes the convolution faster (``openmp`` in ``~/.theanorc`` or
``THEANO_FLAGS`` overrides this).

References:

- Y. LeCun, L. Bottou, Y. Bengio and P. Haffner, "Gradient-Based Learning
  Applied to Document Recognition", Proc. IEEE, 1998
"""
import logging
import sys

import numpy

# Importing dltutorials first sets the engine's defaults (BLAS, floatX) before it reads them.
from dltutorials.layers import glorot_uniform
from dltutorials.logistic_sgd import LogisticRegression
from dltutorials.mlp import HiddenLayer
from dltutorials.support import checks, command_line
from dltutorials.support.engine_setup import convolution_openmp
from dltutorials.support.models import load_network
from dltutorials.support.runs import entry_point, load_training_data, train_and_save
from dltutorials.training import build_minibatch_functions
from dltutorials.updates import sgd

# Theano's names, from Theano or, on Python 3.12+, PyTensor (see dltutorials.support.engine).
from dltutorials.support.engine import T, conv2d, pool_2d, theano

__all__ = ['LeNetConvPoolLayer', 'LeNet5', 'evaluate_lenet5', 'load_lenet5']

logger = logging.getLogger(__name__)

MODEL_FILE = 'convolutional_mlp.npz'


class LeNetConvPoolLayer(object):
    """Convolution, then max-pooling, then bias and tanh.

    Parameters
    ----------
    rng : numpy.random.RandomState
        draws the initial filters.
    input : Theano 4-D tensor of shape ``image_shape``
    filter_shape : tuple of 4 ints
        (number of filters, input feature maps, filter height, filter width)
    image_shape : tuple of 4 ints (the batch size may be None)
        (batch size, input feature maps, image height, image width)
    poolsize : tuple of 2 ints
        the max-pooling window (rows, columns).

    ``output`` has shape (batch, filters, (height - filter height + 1) //
    pool rows, (width - filter width + 1) // pool columns).
    """

    def __init__(self, rng, input, filter_shape, image_shape, poolsize=(2, 2)):
        if filter_shape[1] != image_shape[1]:
            raise ValueError('filter_shape[1] (%d input feature maps) must equal image_shape[1] '
                             '(%d feature maps in the input)' % (filter_shape[1], image_shape[1]))
        self.input = input
        self.filter_shape, self.image_shape, self.poolsize = \
            tuple(filter_shape), tuple(image_shape), tuple(poolsize)

        # Each hidden unit sees "input maps x filter height x filter width"
        # inputs; each input unit feeds "filters x filter area / pooling area"
        # units after pooling: Glorot's range for those fan-in and fan-out.
        fan_in = numpy.prod(filter_shape[1:])
        fan_out = filter_shape[0] * numpy.prod(filter_shape[2:]) // numpy.prod(poolsize)
        self.W = theano.shared(glorot_uniform(rng, fan_in, fan_out, shape=filter_shape),
                               name='W', borrow=True)
        self.b = theano.shared(numpy.zeros((filter_shape[0],), dtype=theano.config.floatX),
                               name='b', borrow=True)

        # Passing the shapes lets Theano pick a faster convolution.
        conv_out = conv2d(input=input, filters=self.W, filter_shape=filter_shape,
                          input_shape=image_shape)
        pooled_out = pool_2d(input=conv_out, ws=poolsize, ignore_border=True)
        # The bias is a vector (one per filter): dimshuffle broadcasts it over
        # the batch, rows and columns.
        self.output = T.tanh(pooled_out + self.b.dimshuffle('x', 0, 'x', 'x'))
        self.params = [self.W, self.b]

    def __repr__(self):
        return 'LeNetConvPoolLayer(filter_shape=%s, image_shape=%s, poolsize=%s)' % (
            self.filter_shape, self.image_shape, self.poolsize)


class LeNet5(object):
    """Two conv-pool layers, a tanh hidden layer and a logistic output, on 28 x 28 images.

    Parameters
    ----------
    rng : numpy.random.RandomState
    input : Theano matrix (n_examples, 784)
        flattened images, one per row.
    nkerns : pair of int
        number of filters of the two convolutional layers.
    batch_size : int or None
        the batch size, if fixed; None accepts any (the last, partial
        minibatch of a set, say).
    n_hidden, n_out : int
    """

    def __init__(self, rng, input, nkerns=(20, 50), batch_size=None, n_hidden=500, n_out=10):
        self.input = input
        self.nkerns = tuple(nkerns)
        # (n_examples, 784) -> (n_examples, 1 feature map, 28, 28)
        layer0_input = input.reshape((input.shape[0], 1, 28, 28))
        # 28 x 28 -> convolution 24 x 24 -> pooling 12 x 12
        self.layer0 = LeNetConvPoolLayer(rng, input=layer0_input,
                                         image_shape=(batch_size, 1, 28, 28),
                                         filter_shape=(nkerns[0], 1, 5, 5), poolsize=(2, 2))
        # 12 x 12 -> convolution 8 x 8 -> pooling 4 x 4
        self.layer1 = LeNetConvPoolLayer(rng, input=self.layer0.output,
                                         image_shape=(batch_size, nkerns[0], 12, 12),
                                         filter_shape=(nkerns[1], nkerns[0], 5, 5),
                                         poolsize=(2, 2))
        # (n_examples, nkerns[1], 4, 4) -> (n_examples, nkerns[1] * 16) for the dense layers
        self.layer2 = HiddenLayer(rng, input=self.layer1.output.flatten(2),
                                  n_in=nkerns[1] * 4 * 4, n_out=n_hidden, activation=T.tanh)
        self.layer3 = LogisticRegression(input=self.layer2.output, n_in=n_hidden, n_out=n_out)

        self.negative_log_likelihood = self.layer3.negative_log_likelihood
        self.errors = self.layer3.errors
        self.y_pred = self.layer3.y_pred
        # The original tutorial's order: output layer first.
        self.params = self.layer3.params + self.layer2.params + self.layer1.params + \
            self.layer0.params

    def __repr__(self):
        return 'LeNet5(nkerns=%s, n_hidden=%d, n_out=%d)' % (
            self.nkerns, self.layer2.n_out, self.layer3.n_out)


def build_lenet_functions(classifier, x, y, datasets, batch_size, learning_rate):
    """Compile the training step and the two scorers for a :class:`LeNet5`.

    Compiled with OpenMP on more than one core (see
    :func:`~dltutorials.support.engine_setup.convolution_openmp`): the convolutions
    and pooling then run 1.5x faster here.
    """
    cost = classifier.negative_log_likelihood(y)
    updates = sgd(cost, classifier.params, learning_rate)
    with convolution_openmp():
        return build_minibatch_functions(x, y, cost, classifier.errors(y), updates,
                                         datasets, batch_size)


@entry_point(learning_rate=checks.positive, n_epochs=checks.positive_int,
             nkerns=checks.two_sizes, batch_size=checks.positive_int,
             patience=checks.positive_int, seed=checks.seed)
def evaluate_lenet5(learning_rate=0.1, n_epochs=200, dataset='mnist.pkl.gz', nkerns=(20, 50),
                    batch_size=500, patience=10000, seed=23455, verbose=True):
    """Train LeNet on ``dataset`` with minibatch SGD and early stopping.

    Parameters
    ----------
    learning_rate : float
        SGD step size.
    n_epochs : int
        the most passes over the training set.
    dataset : str
        a .pkl.gz file, a folder of IDX files, or a known name.
    nkerns : pair of int
        filters in the two convolutional layers (a list, as in the original, works too).
    batch_size : int
        examples per minibatch.
    patience : int
        minibatches to look at before stopping without improvement.
    seed : int
        seeds the weight initialisation (23455, the tutorial's).
    verbose : bool
        show the progress where no logging is set up (a notebook).

    Returns
    -------
    dict: the :class:`~dltutorials.training.TrainingResult` fields,
    ``model_file`` (``convolutional_mlp.npz`` in the output folder),
    ``plot_file`` and ``model``.
    """
    datasets, n_train_batches = load_training_data(dataset, batch_size)

    rng = numpy.random.RandomState(seed)
    x = T.matrix('x')
    y = T.ivector('y')
    architecture = dict(nkerns=nkerns)
    classifier = LeNet5(rng, x, **architecture)
    logger.info('... building %r', classifier)
    train_fn, validate_fn, test_fn = build_lenet_functions(
        classifier, x, y, datasets, batch_size, learning_rate)

    logger.info('... training')
    return train_and_save(classifier, train_fn, validate_fn, test_fn, n_train_batches, n_epochs,
                          MODEL_FILE, architecture, dataset, patience=patience)


def load_lenet5(model_file, input=None):
    """Build the :class:`LeNet5` saved in ``model_file`` and load its parameters.

    Returns ``(classifier, x)``.  Raises ModelFileError for a file of another
    model (:func:`dltutorials.load_model` loads any).
    """
    classifier = load_network(model_file, 'LeNet5', input)
    return classifier, classifier.input


def main(argv=None):
    return command_line.main(evaluate_lenet5, MODEL_FILE, __doc__, argv)


if __name__ == '__main__':
    sys.exit(main())
