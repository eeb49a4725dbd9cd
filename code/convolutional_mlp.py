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
import functools
import sys
from collections import OrderedDict

import numpy

# Importing dltutorials first sets the engine's defaults (BLAS, floatX) before it reads them.
from dltutorials.layers import ACTIVATIONS, INITIALISERS, BatchNorm, glorot_uniform
from dltutorials.logistic_sgd import LogisticRegression
from dltutorials.mlp import DEFAULT_OPTIONS, TRICK_RULES, HiddenLayer
from dltutorials.preprocessing import Whitening, build_whitened, data_of_each_epoch
from dltutorials.support import checks, command_line
from dltutorials.support.engine_setup import convolution_openmp
from dltutorials.support.models import load_network
from dltutorials.support.runs import entry_point, tutorial_logger
from dltutorials.training import (build_minibatch_functions, load_training_data, train_and_save,
                                  training_updates)

# Theano's names, from Theano or, on Python 3.12+, PyTensor (see dltutorials.support.engine).
from dltutorials.support.engine import MRG_RandomStreams, T, conv2d, pool_2d, theano

__all__ = ['LeNetConvPoolLayer', 'LeNet5', 'evaluate_lenet5', 'load_lenet5']

logger = tutorial_logger(__name__)

MODEL_FILE = 'convolutional_mlp.npz'


class LeNetConvPoolLayer(object):
    """Convolution, then max-pooling, then bias and tanh.

    With ``batch_norm`` the pooled maps are batch-normalized (one mean and
    variance per map, over the batch and the positions) before the
    activation; ``train_output`` is then the training graph, on
    ``train_input`` (see :class:`~dltutorials.mlp.HiddenLayer`).

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
    activation : Theano function
    init : function
        an initialiser of :mod:`dltutorials.layers`.
    batch_norm : bool
    train_input : Theano 4-D tensor, optional
        the training graph's input; default ``input``.

    ``output`` has shape (batch, filters, (height - filter height + 1) //
    pool rows, (width - filter width + 1) // pool columns).
    """

    def __init__(self, rng, input, filter_shape, image_shape, poolsize=(2, 2),
                 activation=T.tanh, init=glorot_uniform, batch_norm=False, train_input=None):
        if filter_shape[1] != image_shape[1]:
            raise ValueError('filter_shape[1] (%d input feature maps) must equal image_shape[1] '
                             '(%d feature maps in the input)' % (filter_shape[1], image_shape[1]))
        self.input = input
        self.filter_shape, self.image_shape, self.poolsize = \
            tuple(filter_shape), tuple(image_shape), tuple(poolsize)
        self.activation = activation

        # Each hidden unit sees "input maps x filter height x filter width"
        # inputs; each input unit feeds "filters x filter area / pooling area"
        # units after pooling: Glorot's range for those fan-in and fan-out.
        fan_in = numpy.prod(filter_shape[1:])
        fan_out = filter_shape[0] * numpy.prod(filter_shape[2:]) // numpy.prod(poolsize)
        self.W = theano.shared(init(rng, fan_in, fan_out, activation, shape=filter_shape),
                               name='W', borrow=True)
        self.b = theano.shared(numpy.zeros((filter_shape[0],), dtype=theano.config.floatX),
                               name='b', borrow=True)
        self.batch_norm = BatchNorm(filter_shape[0], axes=(0, 2, 3)) if batch_norm else None

        self.output = self.apply(input, training=False)
        if train_input is None:
            train_input = input
        if batch_norm or train_input is not input:
            self.train_output = self.apply(train_input, training=True)
        else:
            self.train_output = self.output
        self.params = [self.W, self.b] + (self.batch_norm.params if batch_norm else [])
        self.statistics = self.batch_norm.statistics if batch_norm else []
        self.updates = self.batch_norm.updates if batch_norm else {}

    def apply(self, input, training):
        """The layer's maps for ``input``: with batch statistics if ``training``."""
        # Passing the shapes lets Theano pick a faster convolution.
        conv_out = conv2d(input=input, filters=self.W, filter_shape=self.filter_shape,
                          input_shape=self.image_shape)
        pooled_out = pool_2d(input=conv_out, ws=self.poolsize, ignore_border=True)
        # The bias is a vector (one per filter): dimshuffle broadcasts it over
        # the batch, rows and columns.
        maps = pooled_out + self.b.dimshuffle('x', 0, 'x', 'x')
        if self.batch_norm is not None:
            maps = self.batch_norm(maps, training)
        return self.activation(maps)

    def __repr__(self):
        return 'LeNetConvPoolLayer(filter_shape=%s, image_shape=%s, poolsize=%s)' % (
            self.filter_shape, self.image_shape, self.poolsize)


class LeNet5(object):
    """Two conv-pool layers, a hidden layer and a logistic output, on 28 x 28 images.

    The defaults are the tutorial's (tanh, Glorot); as for
    :class:`~dltutorials.mlp.MLP`, ``train_negative_log_likelihood`` is the
    cost to train and ``updates`` the running averages' updates.

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
    activation, init : str
        names in :data:`~dltutorials.layers.ACTIVATIONS`,
        :data:`~dltutorials.layers.INITIALISERS`.
    dropout : float
        the probability of dropping a unit of the dense hidden layer in training.
    batch_norm : bool
        batch-normalize the three hidden layers.
    whitening_components : int, optional
        784 to ZCA-whiten the input images first (see
        :mod:`dltutorials.preprocessing`).
    """

    def __init__(self, rng, input, nkerns=(20, 50), batch_size=None, n_hidden=500, n_out=10,
                 activation='tanh', init='glorot_uniform', dropout=0.0, batch_norm=False,
                 whitening_components=None):
        self.input = input
        self.nkerns = tuple(nkerns)
        self.whitening = None
        if whitening_components:
            self.whitening = Whitening(input, 28 * 28, whitening_components)
            input = self.whitening.output
        srng = MRG_RandomStreams(rng.randint(2 ** 30)) if dropout else None
        units, draw_weights = ACTIVATIONS[activation], INITIALISERS[init]
        # (n_examples, 784) -> (n_examples, 1 feature map, 28, 28)
        layer0_input = input.reshape((input.shape[0], 1, 28, 28))
        # 28 x 28 -> convolution 24 x 24 -> pooling 12 x 12
        self.layer0 = LeNetConvPoolLayer(rng, input=layer0_input,
                                         image_shape=(batch_size, 1, 28, 28),
                                         filter_shape=(nkerns[0], 1, 5, 5), poolsize=(2, 2),
                                         activation=units, init=draw_weights,
                                         batch_norm=batch_norm)
        # 12 x 12 -> convolution 8 x 8 -> pooling 4 x 4
        self.layer1 = LeNetConvPoolLayer(rng, input=self.layer0.output,
                                         image_shape=(batch_size, nkerns[0], 12, 12),
                                         filter_shape=(nkerns[1], nkerns[0], 5, 5),
                                         poolsize=(2, 2), activation=units, init=draw_weights,
                                         batch_norm=batch_norm,
                                         train_input=self.layer0.train_output)
        # (n_examples, nkerns[1], 4, 4) -> (n_examples, nkerns[1] * 16) for the dense layers
        flat, train_flat = self.layer1.output.flatten(2), self.layer1.train_output.flatten(2)
        self.layer2 = HiddenLayer(rng, input=flat, n_in=nkerns[1] * 4 * 4, n_out=n_hidden,
                                  activation=units, init=draw_weights, batch_norm=batch_norm,
                                  dropout=dropout, srng=srng,
                                  train_input=flat if self.layer1.train_output is
                                  self.layer1.output else train_flat)
        self.layer3 = LogisticRegression(input=self.layer2.output, n_in=n_hidden, n_out=n_out)
        # The training graph's output layer: the same weights on the training units.
        train_layer3 = self.layer3 if self.layer2.train_output is self.layer2.output else \
            LogisticRegression(self.layer2.train_output, n_hidden, n_out, W=self.layer3.W,
                               b=self.layer3.b)
        self.options = dict(activation=activation, init=init, dropout=dropout,
                            batch_norm=batch_norm)

        self.negative_log_likelihood = self.layer3.negative_log_likelihood
        self.train_negative_log_likelihood = train_layer3.negative_log_likelihood
        self.errors = self.layer3.errors
        self.y_pred = self.layer3.y_pred
        # The original tutorial's order: output layer first.
        self.params = self.layer3.params + self.layer2.params + self.layer1.params + \
            self.layer0.params
        hidden = (self.layer0, self.layer1, self.layer2)
        self.statistics = ([] if self.whitening is None else self.whitening.statistics) + \
            sum((layer.statistics for layer in hidden), [])
        self.updates = OrderedDict()
        for layer in hidden:
            self.updates.update(layer.updates)

    def __repr__(self):
        return 'LeNet5(nkerns=%s, n_hidden=%d, n_out=%d%s)' % (
            self.nkerns, self.layer2.n_out, self.layer3.n_out,
            ''.join(', %s=%r' % item for item in self.options.items()
                    if item[1] != DEFAULT_OPTIONS[item[0]]))


def build_lenet_functions(classifier, x, y, datasets, batch_size, learning_rate,
                          **training_options):
    """Compile the training step and the two scorers for a :class:`LeNet5`.

    ``training_options`` go to :func:`~dltutorials.training.training_updates`.
    Compiled with OpenMP on more than one core (see
    :func:`~dltutorials.support.engine_setup.convolution_openmp`): the convolutions
    and pooling then run 1.5x faster here.
    """
    cost = classifier.train_negative_log_likelihood(y)
    updates = training_updates(classifier, cost, learning_rate,
                               constrained=[classifier.layer2.W], **training_options)
    with convolution_openmp():
        return build_minibatch_functions(x, y, cost, classifier.errors(y), updates,
                                         datasets, batch_size)


@entry_point(learning_rate=checks.positive, n_epochs=checks.positive_int,
             nkerns=checks.two_sizes, batch_size=checks.positive_int,
             patience=checks.positive_int, seed=checks.seed, n_hidden=checks.positive_int,
             whiten=checks.Choice(['zca']), **TRICK_RULES)
def evaluate_lenet5(learning_rate=0.1, n_epochs=200, dataset='mnist.pkl.gz', nkerns=(20, 50),
                    batch_size=500, patience=10000, seed=23455, verbose=True, n_hidden=500,
                    optimizer='sgd', schedule='constant', activation='tanh',
                    init='glorot_uniform', dropout=0.0, batch_norm=False, max_norm=None,
                    whiten=None, shuffle=False, augment=None, overfit=None):
    """Train LeNet on ``dataset`` with minibatch SGD and early stopping.

    The defaults are the tutorial's recipe; the tricks of the trade are
    options, as for :func:`~dltutorials.mlp.train_mlp`.

    Parameters
    ----------
    learning_rate : float
        the step size (the initial one, with a schedule).
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
        seeds the weight initialisation (23455, the tutorial's), the dropout
        masks, the augmentation.
    verbose : bool
        show the progress where no logging is set up (a notebook).
    n_hidden : int
        units of the dense hidden layer.
    optimizer : str
        the update rule: sgd, momentum, nesterov, adagrad, rmsprop, adadelta, adam, adaptive_gains.
    schedule : str
        how the learning rate changes with the epochs: constant, inverse_time, step, exponential.
    activation : str
        the hidden units: tanh, sigmoid, relu, leaky_relu, elu.
    init : str
        the weights' initialisation: glorot_uniform, glorot_normal, he_uniform, he_normal.
    dropout : float
        the probability of dropping a unit of the dense hidden layer in training.
    batch_norm : bool
        batch-normalize the hidden layers.
    max_norm : float
        the largest norm of a dense hidden unit's incoming weights (default: no limit).
    whiten : str
        zca: whiten the input images first (default: no).
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
    ``model_file`` (``convolutional_mlp.npz`` in the output folder),
    ``plot_file`` and ``model``.
    """
    datasets, n_train_batches = load_training_data(dataset, batch_size, overfit)

    rng = numpy.random.RandomState(seed)
    x = T.matrix('x')
    y = T.ivector('y')
    architecture = dict(nkerns=nkerns, n_hidden=n_hidden, activation=activation, init=init,
                        dropout=dropout, batch_norm=batch_norm, whitening_components=None)
    classifier = build_whitened(functools.partial(LeNet5, rng, x), architecture,
                                datasets[0][0].get_value(borrow=True), whiten)
    logger.info('... building %r', classifier)
    train_fn, validate_fn, test_fn = build_lenet_functions(
        classifier, x, y, datasets, batch_size, learning_rate, optimizer=optimizer,
        schedule=schedule, n_train_batches=n_train_batches, max_norm=max_norm)

    logger.info('... training')
    return train_and_save(classifier, train_fn, validate_fn, test_fn, n_train_batches, n_epochs,
                          MODEL_FILE, architecture, dataset, patience=patience, overfit=overfit,
                          on_epoch_start=data_of_each_epoch(datasets[0], seed, shuffle, augment))


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
