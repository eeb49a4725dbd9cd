r"""Sequence classification with an LSTM: the original tutorial's lstm.py, on our layers.

A review is a sequence of words, an image a sequence of rows.  A recurrent
layer (an LSTM by default; see :mod:`dltutorials.recurrent`) reads the
sequence one step at a time; the mean of its hidden states over the real
steps of each sequence is the sequence's representation, and a logistic
regression on top classifies it:

.. math::

    h_1, \dots, h_T = \mathrm{LSTM}(x_1, \dots, x_T), \qquad
    P(Y \mid x) = \mathrm{softmax}\left(\tfrac{1}{T} \textstyle\sum_t h_t \, U + b\right)

For words, each step's input is the word's *embedding*, a row of a matrix
``Wemb`` learnt with the rest; for images, the 28 pixels of a row.  With
``use_dropout`` the mean state is dropped out (the original's
``dropout_layer``: half the units in training, all of them scaled by 0.5 at
test time).  The cost is the negative log-likelihood, trained by
backpropagation through time with one of the original's update rules
(``adadelta`` by default, which needs no learning rate), or any of the
tricks' rules by name.

The original tutorial trains on IMDB movie reviews (``dataset='imdb'``,
the ``imdb.pkl`` of the original; see :mod:`dltutorials.imdb`).  Offline,
the same network reads images row by row: ``--dataset fashion-mnist``
classifies Fashion-MNIST from 28 steps of 28 pixels.

Run it::

    python code/lstm.py                     # the original: IMDB (needs imdb.pkl)
    python code/lstm.py --dataset fashion-mnist --optimizer adam --lrate 0.001 \
        --batch-size 128 --valid-batch-size 1000 --validFreq -1 --max-grad-norm 1 \
        --max-epochs 20 --no-use-dropout
    python code/lstm.py --dataset fashion-mnist --encoder gru     # or rnn
    python code/lstm.py --quick --dataset mnist.pkl.gz            # seconds
    python code/lstm.py --dataset fashion-mnist --loop scan       # the page's scan, slower

References:

- S. Hochreiter, J. Schmidhuber, "Long short-term memory", Neural Computation 1997
- A. Graves, "Supervised Sequence Labelling with Recurrent Neural Networks", 2012
- A. Maas et al., "Learning Word Vectors for Sentiment Analysis", ACL 2011 (the IMDB data)
- M. Zeiler, "ADADELTA: An Adaptive Learning Rate Method", 2012
"""
import math
import sys
from collections import OrderedDict

import numpy

# Importing dltutorials first sets the engine's defaults (BLAS, floatX) before it reads them.
from dltutorials import imdb
from dltutorials.layers import glorot_uniform, orthogonal
from dltutorials.logistic_sgd import LogisticRegression
from dltutorials.preprocessing import AUGMENTATIONS, augmented
from dltutorials.recurrent import ENCODERS, LOOPS
from dltutorials.support import checks, command_line
from dltutorials.support.datasets import N_CLASSES, N_PIXELS, load_arrays
from dltutorials.support.errors import DatasetError, HyperparameterError
from dltutorials.support.model_files import read_params
from dltutorials.support.runs import (current_run, entry_point, epochs, prepare_output_dir,
                                      tutorial_logger)
from dltutorials.training import train_and_save
from dltutorials.updates import (OPTIMIZERS, SCHEDULES, adadelta as adadelta_rule,
                                 clip_grad_norm, state_like)
from dltutorials.updates import sgd as sgd_rule
# Theano's names, from Theano or, on Python 3.12+, PyTensor (see dltutorials.support.engine).
from dltutorials.support.engine import MRG_RandomStreams, T, theano

__all__ = ['SequenceClassifier', 'train_lstm', 'train_sequence_classifier', 'prepare_data',
           'prepare_images', 'get_minibatches_idx', 'init_params', 'init_tparams',
           'load_params', 'build_classifier', 'build_model', 'pred_probs', 'pred_error', 'sgd', 'adadelta',
           'rmsprop', 'get_dataset']

logger = tutorial_logger(__name__)

prepare_data = imdb.prepare_data

#: Images are read row by row: 28 steps of 28 pixels.
IMAGE_ROWS = 28


def numpy_floatX(data):
    """``data`` as a floatX array."""
    return numpy.asarray(data, dtype=theano.config.floatX)


# --------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------

def dropout_layer(state_before, use_noise, trng):
    """The original's dropout: half the units in training (``use_noise`` 1), all x 0.5 at test."""
    return T.switch(use_noise,
                    state_before * trng.binomial(state_before.shape, p=0.5, n=1,
                                                 dtype=state_before.dtype),
                    state_before * 0.5)


def init_params(options, rng=None):
    """The initial parameters, an OrderedDict name: floatX array (the original's names).

    ``Wemb`` (n_words, dim_proj) for word inputs: the embeddings, small
    random numbers; ``<encoder>_W``, ``_U``, ``_b``: the recurrent layer's
    (orthogonal, blocks side by side; the LSTM's forget-gate bias 1); ``U``
    (dim_proj, ydim) and ``b``: the logistic regression's.
    ``options``: ``dim_proj``, ``ydim``, ``encoder``, ``n_words`` (None for
    images), ``n_in`` (the features per step, for images).
    """
    rng = rng or numpy.random
    dim, encoder = options['dim_proj'], ENCODERS[options['encoder']]
    params = OrderedDict()
    if options.get('n_words'):
        params['Wemb'] = numpy_floatX(0.01 * rng.normal(size=(options['n_words'], dim)))
        n_in = dim
    else:
        n_in = options['n_in']
    prefix = options['encoder']
    # The input weights orthogonal too, as the original's (rows of an orthogonal
    # matrix where the inputs are fewer than the units).
    params[prefix + '_W'] = numpy.concatenate(
        [orthogonal(rng, dim)[:n_in] if n_in <= dim else glorot_uniform(rng, n_in, dim)
         for _ in range(encoder.n_gates)], axis=1)
    params[prefix + '_U'] = encoder.initial_recurrent_weights(rng, dim)
    params[prefix + '_b'] = numpy_floatX(encoder.initial_bias(dim))
    params['U'] = numpy_floatX(0.01 * rng.normal(size=(dim, options['ydim'])))
    params['b'] = numpy_floatX(numpy.zeros(options['ydim']))
    return params


def init_tparams(params):
    """The parameters as shared variables, an OrderedDict with the same names."""
    return OrderedDict((name, theano.shared(value, name=name)) for name, value in params.items())


class SequenceClassifier(object):
    """A recurrent layer read in full, its states averaged, then a logistic regression.

    ``p_y_given_x``, ``y_pred``, ``negative_log_likelihood`` and ``errors``
    are the :class:`~dltutorials.logistic_sgd.LogisticRegression`'s;
    ``use_noise`` (a shared 0 or 1) turns dropout on for training.

    Parameters
    ----------
    input : Theano variable
        word indices (time, batch) with ``n_words``; images (batch, 784)
        with ``image_rows`` (read as ``image_rows`` steps); else features
        (time, batch, n_in).
    n_in : int
        the features per step (ignored for words: their embeddings have
        ``n_hidden``).
    n_hidden : int
        the recurrent layer's units (the original's ``dim_proj``).
    n_out : int
        classes.
    encoder : str
        ``lstm``, ``gru`` or ``rnn``.
    n_words : int, optional
        the vocabulary, for word inputs.
    image_rows : int, optional
        the rows of an image, for image inputs.
    use_dropout : bool
    mask : Theano matrix (time, batch), optional
        1 on real steps, 0 on padding; default all ones.
    rng : numpy.random.RandomState, optional
        draws the initial parameters and seeds dropout.
    tparams : OrderedDict of shared variables, optional
        the parameters to build on (the original's ``tparams``); default new
        ones from :func:`init_params`.
    loop : str
        the recurrent layer's loop over time: ``fused`` (one C op) or ``scan``
        (see :class:`~dltutorials.recurrent.RecurrentLayer`).
    """

    def __init__(self, input, n_in=IMAGE_ROWS, n_hidden=128, n_out=10, encoder='lstm',
                 n_words=None, image_rows=None, use_dropout=True, mask=None, rng=None,
                 tparams=None, loop='fused'):
        rng = rng or numpy.random.RandomState(123)
        self.input, self.mask = input, mask
        self.n_in, self.n_hidden, self.n_out, self.encoder = n_in, n_hidden, n_out, encoder
        self.n_words, self.image_rows, self.use_dropout = n_words, image_rows, use_dropout
        if tparams is None:
            tparams = init_tparams(init_params(dict(
                dim_proj=n_hidden, ydim=n_out, encoder=encoder, n_words=n_words, n_in=n_in),
                rng))
        self.tparams = tparams

        if n_words:
            words = input if input.dtype.startswith('int') else T.cast(input, 'int64')
            n_steps, n_samples = words.shape[0], words.shape[1]
            # Each word's embedding: (time, batch, n_hidden).
            steps = tparams['Wemb'][words.flatten()].reshape([n_steps, n_samples, n_hidden])
            n_in = n_hidden
        elif image_rows:
            # (batch, rows * columns) -> (rows, batch, columns): one row per step.
            steps = input.reshape((input.shape[0], image_rows, -1)).dimshuffle(1, 0, 2)
        else:
            steps = input
        self.recurrent = ENCODERS[encoder](rng, steps, n_in, n_hidden, mask=mask,
                                           W=tparams[encoder + '_W'],
                                           U=tparams[encoder + '_U'],
                                           b=tparams[encoder + '_b'], prefix=encoder,
                                           loop=loop)
        states = self.recurrent.output
        # The mean state over each sequence's real steps: (batch, n_hidden).
        if mask is None:
            mean_state = states.mean(axis=0)
        else:
            mean_state = (states * mask[:, :, None]).sum(axis=0) / mask.sum(axis=0)[:, None]
        self.use_noise = theano.shared(numpy_floatX(0.0), name='use_noise')
        if use_dropout:
            mean_state = dropout_layer(mean_state, self.use_noise,
                                       MRG_RandomStreams(rng.randint(2 ** 30)))
        self.logRegressionLayer = LogisticRegression(mean_state, n_hidden, n_out,
                                                     W=tparams['U'], b=tparams['b'])
        self.p_y_given_x = self.logRegressionLayer.p_y_given_x
        self.y_pred = self.logRegressionLayer.y_pred
        self.negative_log_likelihood = self.logRegressionLayer.negative_log_likelihood
        self.errors = self.logRegressionLayer.errors
        self.params = list(tparams.values())

    def __repr__(self):
        reads = ('%d words' % self.n_words if self.n_words else
                 'images by %d rows' % self.image_rows if self.image_rows else
                 '%d features per step' % self.n_in)
        return 'SequenceClassifier(%s, encoder=%s, n_hidden=%d, n_out=%d%s)' % (
            reads, self.encoder, self.n_hidden, self.n_out,
            ', use_dropout=True' if self.use_dropout else '')


def build_classifier(tparams, options):
    """A :class:`SequenceClassifier` on ``tparams`` and its symbolic ``(model, x, mask, y)``.

    ``options``: ``dim_proj``, ``ydim``, ``encoder``, ``use_dropout``, and
    ``n_words`` for words (x int64 (time, batch) with a mask) or
    ``image_rows`` for images (x floatX (batch, 784), mask None); ``loop``
    (default ``fused``).
    """
    if options.get('n_words'):
        x, mask = T.matrix('x', dtype='int64'), T.matrix('mask', dtype=theano.config.floatX)
    else:
        x, mask = T.matrix('x', dtype=theano.config.floatX), None
    y = T.vector('y', dtype='int64')
    model = SequenceClassifier(x, n_in=options.get('n_in', IMAGE_ROWS),
                               n_hidden=options['dim_proj'], n_out=options['ydim'],
                               encoder=options['encoder'], n_words=options.get('n_words'),
                               image_rows=options.get('image_rows'),
                               use_dropout=options['use_dropout'], mask=mask, tparams=tparams,
                               rng=options.get('rng'), loop=options.get('loop', 'fused'))
    return model, x, mask, y


def build_model(tparams, options):
    """The original's graph builder: ``(use_noise, x, mask, y, f_pred_prob, f_pred, cost)``.

    ``options`` as :func:`build_classifier`'s.
    """
    model, x, mask, y = build_classifier(tparams, options)
    inputs = model_inputs(x, mask)
    f_pred_prob = theano.function(inputs, model.p_y_given_x, name='f_pred_prob')
    f_pred = theano.function(inputs, model.y_pred, name='f_pred')
    cost = model.negative_log_likelihood(y)
    return model.use_noise, x, mask, y, f_pred_prob, f_pred, cost


def model_inputs(x, mask):
    """The inputs of the compiled functions: ``[x, mask]``, or ``[x]`` for images (no mask)."""
    return [x] if mask is None else [x, mask]


# --------------------------------------------------------------------------
# The original's update rules: (lr, tparams, grads, x, mask, y, cost) -> (f_grad_shared, f_update)
# --------------------------------------------------------------------------

def two_step(rule, lr, tparams, grads, x, mask, y, cost):
    """Compile an update ``rule`` the original's way, as two functions.

    ``f_grad_shared(x, mask, y)`` computes the cost and stores the
    gradients in shared variables; ``f_update(lr)`` then applies ``rule``
    (one of :mod:`dltutorials.updates`, ``(grads, params, learning_rate)``)
    to them.  Returns ``(f_grad_shared, f_update)``.
    """
    params = list(tparams.values())
    stored = [state_like(param, 'grad') for param in params]
    f_grad_shared = theano.function(model_inputs(x, mask) + [y], cost,
                                    updates=list(zip(stored, grads)), name='f_grad_shared')
    f_update = theano.function([lr], [], updates=rule(stored, params, lr),
                               on_unused_input='ignore', name='f_update')
    return f_grad_shared, f_update


def sgd(lr, tparams, grads, x, mask, y, cost):
    """Stochastic gradient descent at learning rate ``lr``."""
    return two_step(sgd_rule, lr, tparams, grads, x, mask, y, cost)


def adadelta(lr, tparams, grads, x, mask, y, cost):
    """ADADELTA (Zeiler 2012) with the original's rho 0.95 and epsilon 1e-6; ``lr`` is not used.

    Each step is ``sqrt(u + eps) / sqrt(r + eps)`` times the gradient, with
    r and u moving averages of the squared gradients and steps: the step
    size comes from the ratio, so no learning rate is needed.
    """
    def rule(grads, params, learning_rate):
        return adadelta_rule(grads, params, learning_rate=1.0, rho=0.95, epsilon=1e-6)
    return two_step(rule, lr, tparams, grads, x, mask, y, cost)


def graves_rmsprop(grads, params, learning_rate=1e-4, rho=0.95, momentum=0.9, epsilon=1e-4):
    r"""The original's rmsprop (Graves 2013): centred, with momentum, a fixed step of 1e-4.

    .. math::

        m_t = \rho m_{t-1} + (1 - \rho) g_t, \quad
        r_t = \rho r_{t-1} + (1 - \rho) g_t^2, \quad
        v_t = \mu v_{t-1} - \eta \frac{g_t}{\sqrt{r_t - m_t^2 + \epsilon}}, \quad
        \theta_t = \theta_{t-1} + v_t
    """
    updates = OrderedDict()
    for param, grad in zip(params, grads):
        mean, mean_square, velocity = (state_like(param, name) for name in
                                       ('mean_gradient', 'mean_square', 'velocity'))
        new_mean = rho * mean + (1 - rho) * grad
        new_mean_square = rho * mean_square + (1 - rho) * grad ** 2
        new_velocity = momentum * velocity - learning_rate * grad / T.sqrt(
            new_mean_square - new_mean ** 2 + epsilon)
        updates.update([(mean, new_mean), (mean_square, new_mean_square),
                        (velocity, new_velocity), (param, param + new_velocity)])
    return updates


def rmsprop(lr, tparams, grads, x, mask, y, cost):
    """The original's rmsprop (:func:`graves_rmsprop`); ``lr`` is not used."""
    def rule(grads, params, learning_rate):
        return graves_rmsprop(grads, params)
    return two_step(rule, lr, tparams, grads, x, mask, y, cost)


def by_name(rule):
    """One of the tricks' rules (``adam`` ...) as an original-style optimizer, at ``lr``."""
    def optimizer(lr, tparams, grads, x, mask, y, cost):
        return two_step(rule, lr, tparams, grads, x, mask, y, cost)
    return optimizer


#: The optimizers by name: the original's three, then the tricks' rules.
OPTIMIZER_FUNCTIONS = OrderedDict([('adadelta', adadelta), ('rmsprop', rmsprop), ('sgd', sgd)])
OPTIMIZER_FUNCTIONS.update((name, by_name(rule)) for name, rule in OPTIMIZERS.items()
                           if name not in OPTIMIZER_FUNCTIONS)


# --------------------------------------------------------------------------
# Data: minibatches of sequences
# --------------------------------------------------------------------------

def get_minibatches_idx(n, minibatch_size, shuffle=False, rng=None):
    """Split ``range(n)`` into minibatches of indices, the last maybe shorter.

    Returns a list of ``(minibatch number, index array)`` pairs; with
    ``shuffle``, of a random order (from ``rng``, default numpy's global
    generator, as the original).
    """
    idx_list = numpy.arange(n, dtype='int32')
    if shuffle:
        (rng or numpy.random).shuffle(idx_list)
    minibatches = [idx_list[start:start + minibatch_size] for start in
                   range(0, n, minibatch_size)]
    return list(enumerate(minibatches))


def prepare_images(images, labels, maxlen=None):
    """A minibatch of images, for a model that reads their rows: ``(x floatX (n, 784), None, labels)``.

    The images' counterpart of :func:`~dltutorials.imdb.prepare_data`: the
    rows need no padding, so there is no mask.
    """
    return numpy_floatX(numpy.asarray(images)), None, labels


def load_images(dataset):
    """``train, valid, test`` of an image dataset: ``(x (n, 784) floatX, y int64)`` each."""
    return tuple((numpy_floatX(x), numpy.asarray(y, dtype='int64'))
                 for x, y in load_arrays(dataset))


def is_imdb(dataset):
    """True for the original's sequences: the name ``imdb``, or a ``.pkl`` file (not ``.pkl.gz``)."""
    return str(dataset) == 'imdb' or str(dataset).endswith('.pkl')


def get_dataset(name):
    """``(load_data, prepare_data)`` for ``name``: the original's for ``imdb``, else images."""
    if is_imdb(name):
        return imdb.load_data, imdb.prepare_data
    return (lambda **ignored: load_images(name)), prepare_images


def pred_probs(f_pred_prob, prepare_data, data, iterator, verbose=False):
    """The class probabilities of every example of ``data``, (n, ydim), in minibatches."""
    probs = None
    for _, index in iterator:
        x, mask, _ = prepare_data([data[0][t] for t in index], numpy.array(data[1])[index],
                                  maxlen=None)
        values = f_pred_prob(*model_inputs(x, mask))
        if probs is None:
            probs = numpy.zeros((len(data[0]), values.shape[1]), dtype=values.dtype)
        probs[index, :] = values
    return probs


def pred_error(f_pred, prepare_data, data, iterator, verbose=False):
    """The error rate of ``f_pred`` over ``data`` (sequences, labels), a fraction in [0, 1].

    ``iterator``: minibatches of indices, as :func:`get_minibatches_idx` gives.
    """
    wrong = 0
    for _, index in iterator:
        x, mask, y = prepare_data([data[0][t] for t in index], numpy.array(data[1])[index],
                                  maxlen=None)
        predicted = f_pred(*model_inputs(x, mask))
        wrong += int((predicted != numpy.asarray(y)).sum())
    return wrong / float(len(data[0]))


def load_params(path, params):
    """Put the arrays saved in ``path`` into ``params`` (an OrderedDict of arrays), by name."""
    arrays, meta = read_params(path)
    names = meta.get('names') or list(params)
    saved = dict(zip(names, arrays))
    for name in params:
        if name not in saved:
            raise DatasetError('%s holds no parameter %s' % (path, name))
        if saved[name].shape != params[name].shape:
            raise DatasetError('%s: %s has shape %s there, %s here' % (
                path, name, saved[name].shape, params[name].shape))
        params[name] = saved[name].astype(params[name].dtype)
    return params


# --------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------

def load_sequences(dataset, n_words, maxlen, test_size, seed):
    """``(train, valid, test, prepare, image_rows)``: the sets as ``(examples, labels)`` lists.

    IMDB as the original loads it (5 % of the training reviews held out,
    sequences of ``maxlen`` words or more dropped); images (``maxlen``
    unused: 28 rows each) as the tutorials load them.  ``test_size`` keeps a
    random part of the test set.  In a quick run each set keeps one
    minibatch's worth (see the caller).
    """
    rng = numpy.random.RandomState(seed)
    if is_imdb(dataset):
        path = 'imdb.pkl' if str(dataset) == 'imdb' else dataset
        train, valid, test = imdb.load_data(path=path, n_words=n_words, valid_portion=0.05,
                                            maxlen=maxlen, rng=rng)
        prepare, image_rows = imdb.prepare_data, None
        if not train[0]:
            raise DatasetError('%s: no training sequence is shorter than maxlen %d'
                               % (dataset, maxlen))
    else:
        train, valid, test = load_images(dataset)
        prepare, image_rows = prepare_images, IMAGE_ROWS
    if test_size > 0:
        kept = rng.permutation(len(test[0]))[:test_size]
        test = ([test[0][i] for i in kept], [test[1][i] for i in kept])
    n_classes = int(max(train[1])) + 1
    for name, split in (('validation', valid), ('test', test)):
        if len(split[1]) and int(max(split[1])) >= n_classes:
            raise DatasetError('%s: a %s label is %d, but the training labels are 0..%d'
                               % (dataset, name, int(max(split[1])), n_classes - 1))
    return train, valid, test, prepare, image_rows


@entry_point(dim_proj=checks.positive_int, patience=checks.positive_int,
             max_epochs=checks.positive_int, dispFreq=checks.positive_int,
             decay_c=checks.non_negative, lrate=checks.positive, n_words=checks.positive_int,
             optimizer=checks.NamedFunction(OPTIMIZER_FUNCTIONS),
             encoder=checks.Choice(ENCODERS), validFreq=checks.steps_or_epoch,
             saveFreq=checks.steps_or_epoch, maxlen=checks.positive_int,
             batch_size=checks.positive_int, valid_batch_size=checks.positive_int,
             noise_std=checks.non_negative, use_dropout=checks.switch,
             test_size=checks.count_or_all, max_grad_norm=checks.positive, seed=checks.seed,
             loop=checks.Choice(LOOPS), schedule=checks.Choice(SCHEDULES),
             augment=checks.Choice(AUGMENTATIONS, each=True))
def train_sequence_classifier(dim_proj=128, patience=10, max_epochs=5000, dispFreq=10,
                              decay_c=0., lrate=0.0001, n_words=10000, optimizer=adadelta,
                              encoder='lstm', saveto='lstm_model.npz', validFreq=370,
                              saveFreq=1110, maxlen=100, batch_size=16, valid_batch_size=64,
                              dataset='imdb', noise_std=0., use_dropout=True,
                              reload_model=None, test_size=-1, *, max_grad_norm=None,
                              seed=123, loop='fused', schedule='constant', augment=None,
                              verbose=True):
    """Train a :class:`SequenceClassifier`; return a result dict (``train_lstm`` returns the original's tuple).

    Parameters
    ----------
    dim_proj : int
        word embedding and recurrent layer size.
    patience : int
        stop after this many validations without a new best.
    max_epochs : int
        the most epochs to run.
    dispFreq : int
        log the cost every this many updates.
    decay_c : float
        weight decay on the classifier's weights U.
    lrate : float
        the learning rate, for sgd and the tricks' rules (adadelta and the original
        rmsprop have none).
    n_words : int
        vocabulary size (IMDB).
    optimizer : str
        adadelta, rmsprop (the original's, Graves's), sgd, or a tricks' rule: adam,
        momentum, nesterov, adagrad, adaptive_gains.
    encoder : str
        the recurrent layer: lstm, gru or rnn.
    saveto : str
        the model file's name, in the output folder.
    validFreq : int
        validate (and save the checkpoint) every this many updates; -1: once per epoch
        (a run of fewer updates validates at its end).
    saveFreq : int
        accepted for the original's calls: each new best model is saved when it is found.
    maxlen : int
        IMDB: drop training sequences of this many words or more.
    batch_size : int
        the training minibatch size.
    valid_batch_size : int
        the minibatch size for the validation and test sets.
    dataset : str
        imdb (the original's imdb.pkl), a .pkl file in its format, or images read row by
        row: fashion-mnist, mnist.pkl.gz, a .pkl.gz file or a folder of IDX files.
    noise_std : float
        accepted for the original's calls (unused there too).
    use_dropout : bool
        drop out half the mean state's units in training.
    reload_model : str
        start from the parameters of this model file.
    test_size : int
        keep this many random test examples; -1: all.
    max_grad_norm : float
        rescale the gradient to at most this norm (default: no clipping).
    seed : int
        seeds the parameters, the validation split, the minibatch order and dropout.
    loop : str
        the recurrent layer's loop over time: fused (one C op, fast) or scan (the page's).
    schedule : str
        how ``lrate`` changes with the epoch: constant (the original's), inverse_time,
        step, exponential or exponential_after (see :mod:`dltutorials.updates`).
    augment : list of str
        images: train each epoch on new random copies, ``shift`` (by up to two
        pixels) and/or ``flip`` (mirrored, for clothes; see
        :mod:`dltutorials.preprocessing`).
    verbose : bool
        show the progress where no logging is set up (a notebook).

    Returns
    -------
    dict: the :class:`~dltutorials.training.TrainingResult` fields,
    ``train_error`` (of the best model, on the whole training set),
    ``model_file``, ``plot_file`` and ``model``.
    """
    prepare_output_dir()
    quick = current_run().quick
    train, valid, test, prepare, image_rows = load_sequences(dataset, n_words, maxlen,
                                                             test_size, seed)
    if augment and not image_rows:
        raise HyperparameterError('augment: shifts and flips apply to images, and %s holds '
                                  'word sequences' % dataset)
    if quick:
        train, valid, test = ((split[0][:batch_size], split[1][:batch_size])
                              for split in (train, valid, test))
    # Images have ten classes; the original's sequences, as many as their training labels.
    ydim = N_CLASSES if image_rows else int(max(train[1])) + 1
    n_train_batches = int(math.ceil(len(train[0]) / batch_size))
    if validFreq == -1:
        validFreq = n_train_batches
    # A run shorter than validFreq updates validates once, at its end.
    validFreq = min(validFreq, n_train_batches * epochs(max_epochs))

    logger.info('... building the model')
    rng = numpy.random.RandomState(seed)
    options = dict(dim_proj=dim_proj, ydim=ydim, encoder=encoder, use_dropout=use_dropout,
                   n_words=None if image_rows else n_words, image_rows=image_rows,
                   n_in=N_PIXELS // IMAGE_ROWS if image_rows else dim_proj, rng=rng, loop=loop)
    params = init_params(options, rng)
    if reload_model:
        load_params(reload_model, params)
    tparams = init_tparams(params)
    network, x, mask, y = build_classifier(tparams, options)
    use_noise, cost = network.use_noise, network.negative_log_likelihood(y)
    f_pred = theano.function(model_inputs(x, mask), network.y_pred, name='f_pred')
    if decay_c > 0.:
        cost += decay_c * (tparams['U'] ** 2).sum()
    grads = T.grad(cost, wrt=list(tparams.values()))
    if max_grad_norm is not None:
        grads = clip_grad_norm(grads, list(tparams.values()), max_grad_norm)
    lr = T.scalar(name='lr')
    f_grad_shared, f_update = OPTIMIZER_FUNCTIONS[optimizer](lr, tparams, grads, x, mask, y,
                                                            cost)
    # The rate of the epoch trained so far (a float: 2.5 is half-way through the
    # third), given to f_update at each step as the original passes lrate.
    epochs_trained = T.scalar('epochs_trained')
    f_rate = theano.function([epochs_trained],
                             SCHEDULES[schedule](numpy_floatX(lrate), epochs_trained),
                             name='f_rate')

    # The epoch in progress and its minibatches, in an order drawn from (seed,
    # epoch): a resumed run sees the same order as an uninterrupted one.
    # With augment, the epoch's images are new random copies of the originals, drawn
    # from the same generator after the order.
    current = dict(epoch=1, minibatches=[], inputs=train[0])

    def start_epoch(epoch):
        order = numpy.random.RandomState([seed, epoch])
        current.update(epoch=epoch, minibatches=get_minibatches_idx(
            len(train[0]), batch_size, shuffle=True, rng=order))
        if augment:
            current['inputs'] = augmented(train[0], augment, order)

    def train_fn(minibatch_index):
        use_noise.set_value(1.)
        _, index = current['minibatches'][minibatch_index]
        x_batch, mask_batch, y_batch = prepare([current['inputs'][t] for t in index],
                                               numpy.array(train[1])[index])
        batch_cost = f_grad_shared(*model_inputs(x_batch, mask_batch) + [y_batch])
        rate = f_rate(current['epoch'] - 1 + minibatch_index / n_train_batches)
        if minibatch_index == 0 and schedule != 'constant':
            logger.info('Epoch %d learning rate %.6g', current['epoch'], rate)
        f_update(rate)
        update = n_train_batches * (current['epoch'] - 1) + minibatch_index + 1
        if update % dispFreq == 0:
            logger.info('Epoch %d Update %d Cost %.6f', current['epoch'], update, batch_cost)
        return batch_cost
    train_fn.compiled_functions = [f_grad_shared, f_update]

    def scorer(split):
        batches = get_minibatches_idx(len(split[0]), valid_batch_size)

        def score():
            use_noise.set_value(0.)
            return pred_error(f_pred, prepare, split, batches)
        return score

    architecture = dict(n_in=options['n_in'], n_hidden=dim_proj, n_out=ydim, encoder=encoder,
                        n_words=options['n_words'], image_rows=image_rows,
                        use_dropout=use_dropout)
    logger.info('%d train examples, %d valid, %d test; %d updates per epoch',
                len(train[0]), len(valid[0]), len(test[0]), n_train_batches)
    logger.info('... training %r with %s', network, optimizer)
    result = train_and_save(network, train_fn, scorer(valid), scorer(test), n_train_batches,
                            max_epochs, saveto, architecture, dataset,
                            patience=patience * validFreq, patience_window=patience * validFreq,
                            validation_frequency=validFreq, checkpoint_each_validation=True,
                            on_epoch_start=start_epoch)
    if result['stopped_by'] != 'interrupted':
        result['train_error'] = scorer(train)()
        logger.info('Train %.4f Valid %.4f Test %.4f', result['train_error'],
                    result['best_validation_error'], result['test_error'])
    return result


def train_lstm(dim_proj=128, patience=10, max_epochs=5000, dispFreq=10, decay_c=0.,
               lrate=0.0001, n_words=10000, optimizer=adadelta, encoder='lstm',
               saveto='lstm_model.npz', validFreq=370, saveFreq=1110, maxlen=100,
               batch_size=16, valid_batch_size=64, dataset='imdb', noise_std=0.,
               use_dropout=True, reload_model=None, test_size=-1, **extras):
    """The original tutorial's entry point: returns ``(train_err, valid_err, test_err)``.

    Its arguments are the original's, in its order and with its defaults;
    ``extras`` are :func:`train_sequence_classifier`'s keyword-only ones
    (``max_grad_norm``, ``seed``, ``loop``, ``verbose``, ``resume``).
    """
    result = train_sequence_classifier(
        dim_proj, patience, max_epochs, dispFreq, decay_c, lrate, n_words, optimizer, encoder,
        saveto, validFreq, saveFreq, maxlen, batch_size, valid_batch_size, dataset, noise_std,
        use_dropout, reload_model, test_size, **extras)
    return result.get('train_error'), result['best_validation_error'], result['test_error']


def load_lstm(model_file, input=None):
    """The :class:`SequenceClassifier` saved in ``model_file`` (images read by rows)."""
    from dltutorials.support.models import load_network
    return load_network(model_file, 'SequenceClassifier', input)


def main(argv=None):
    return command_line.main(train_sequence_classifier, lambda arguments: arguments['saveto'],
                             __doc__, argv)


if __name__ == '__main__':
    sys.exit(main())
