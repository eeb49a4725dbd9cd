"""One way to read a model back, predict and evaluate: :func:`dltutorials.load_model` and :class:`Model`.

Every tutorial saves its model the same way (:func:`save_model`): the
parameter arrays, the model's class name and its *architecture*, the keyword
arguments that rebuild it (``n_hidden``, ``nkerns`` ...).  :func:`dltutorials.load_model`
reads those, builds the model with the tutorial's own class, loads the
arrays (checking their shapes) and returns a :class:`Model`: the network,
plus ``predict`` and ``evaluate`` on numpy arrays or image files::

    import dltutorials
    model = dltutorials.load_model('results/mlp.npz')
    model.predict(images)                 # (n, 784) array, or image file paths
    model.evaluate('mnist.pkl.gz')        # error rate and confusion matrix on the test split
"""
import importlib
import inspect
from pathlib import Path

import numpy

from dltutorials.support.errors import DatasetError, ModelFileError
from dltutorials.support.model_files import load_params, read_params, save_params

#: The module of each model class that a file may name.
MODEL_MODULES = {
    'LogisticRegression': 'dltutorials.logistic_sgd',
    'MLP': 'dltutorials.mlp',
    'LeNet5': 'dltutorials.convolutional_mlp',
    'dA': 'dltutorials.dA',
    'cA': 'dltutorials.cA',
    'SdA': 'dltutorials.SdA',
    'RBM': 'dltutorials.rbm',
    'DBN': 'dltutorials.DBN',
    'SequenceClassifier': 'dltutorials.lstm',
    'CharLanguageModel': 'dltutorials.char_rnn',
    'GAN': 'dltutorials.gan',
    'SkipGram': 'dltutorials.word2vec',
    'RnnRbm': 'dltutorials.rnnrbm',
}

#: Examples per call of the compiled prediction function.
PREDICTION_BATCH_SIZE = 1000


def model_variables(network):
    """The shared variables a model file holds: ``network.params``, then its ``statistics``.

    Statistics are fixed or averaged, not trained by gradient (batch
    normalization's running averages, a whitening's mean and rotation).
    """
    return list(network.params) + list(getattr(network, 'statistics', []))


def save_model(path, network, architecture, values=None, **meta):
    """Save ``network``'s parameters, class name and ``architecture`` to ``path`` (.npz).

    ``architecture``: the keyword arguments of ``network``'s class that
    rebuild it (besides random generators and the input).  ``values``:
    ``(name, array)`` pairs to save instead of the values of :func:`model_variables`.
    ``meta``: more JSON-serialisable facts (dataset, scores).
    """
    return save_params(path, values if values is not None else model_variables(network),
                       model=type(network).__name__, architecture=architecture, **meta)


def load_model(path, input=None):
    """The model saved in ``path`` by any tutorial, as a :class:`~dltutorials.support.models.Model`.

    ``input``: the symbolic input to build the network on (a new matrix by
    default), to stack it on another graph.

    Raises
    ------
    ModelFileError
        a missing or unreadable file, a model this package does not know, or
        arrays that do not fit the architecture the file names.
    """
    saved = read_params(path)
    meta = saved[1]
    kind = meta.get('model')
    if kind not in MODEL_MODULES:
        raise ModelFileError('%s: not a model saved by the tutorials (model %r; known: %s)'
                             % (path, kind, ', '.join(MODEL_MODULES)))
    model_class = getattr(importlib.import_module(MODEL_MODULES[kind]), kind)
    parameters = inspect.signature(model_class).parameters
    # Files written before the architecture was stored name it at the top level.
    architecture = meta.get('architecture') or {
        name: value for name, value in meta.items() if name in parameters}

    from dltutorials.support.engine import T

    arguments = dict(architecture)
    for name in ('rng', 'numpy_rng'):
        if name in parameters:
            # Any generator: the loaded values replace the initial weights.
            arguments[name] = numpy.random.RandomState(0)
    if 'input' in parameters:
        arguments['input'] = T.matrix('x') if input is None else input
    try:
        network = model_class(**arguments)
    except (TypeError, ValueError) as err:
        raise ModelFileError('%s: cannot build a %s from the architecture %s (%s)'
                             % (path, kind, architecture, err)) from None
    load_params(path, model_variables(network), saved)
    return Model(network, path=path, meta=meta)


def load_network(path, kind, input=None):
    """The network saved in ``path``, which must be a ``kind`` (class name); else ModelFileError."""
    model = load_model(path, input)
    if type(model.network).__name__ != kind:
        raise ModelFileError('%s holds a %s, not a %s' % (path, type(model.network).__name__,
                                                          kind))
    return model.network


def as_images(images):
    """``images`` as a floatX (n, 784) array: an array of rows, or image file paths."""
    from dltutorials.support.datasets import N_PIXELS, read_images
    from dltutorials.support.engine import theano

    if isinstance(images, (str, Path)):
        images = [images]
    if isinstance(images, (list, tuple)) and images and isinstance(images[0], (str, Path)):
        images = read_images(images)
    images = numpy.asarray(images)
    if images.ndim == 1 and images.size == N_PIXELS:
        images = images.reshape(1, N_PIXELS)
    if images.ndim != 2 or images.shape[1] != N_PIXELS or images.dtype.kind not in 'fiu':
        raise DatasetError('images must be image files or numbers of shape (n, %d), got %s '
                           'of shape %s' % (N_PIXELS, images.dtype, images.shape))
    return images.astype(theano.config.floatX)


class Model(object):
    """A trained network with numpy in and numpy out.

    ``network`` is the tutorial's model object (``LogisticRegression``,
    ``MLP``, ``LeNet5``, ``dA``, ``SdA``, ``RBM``, ``DBN``); ``path`` and
    ``meta`` say where it was loaded from and what the file said (None and
    {} for a model just trained).  Classifiers predict classes; a dA or an
    RBM predicts reconstructions (an RBM's: P(v | P(h | v))).
    """

    def __init__(self, network, path=None, meta=None):
        self.network = network
        self.path = path
        self.meta = meta or {}
        # dA and SdA call their input x; the classifiers, input.
        self.input = network.x if hasattr(network, 'x') else network.input
        self._predict_batch = None

    @property
    def is_classifier(self):
        return hasattr(self.network, 'y_pred')

    def __repr__(self):
        return 'Model(%r%s)' % (self.network, ', path=%r' % str(self.path) if self.path else '')

    def _refuse_generator(self):
        if not self.is_classifier and not hasattr(self.network, 'get_hidden_values'):
            raise ModelFileError('%r draws images and neither classifies nor reconstructs them: '
                                 'use sample(n)' % self.network)

    def _compiled(self):
        self._refuse_generator()
        if self._predict_batch is None:
            from dltutorials.support.engine import theano

            if self.is_classifier:
                output = self.network.y_pred
            else:
                output = self.network.get_reconstructed_input(
                    self.network.get_hidden_values(self.input))
            self._predict_batch = theano.function([self.input], output)
        return self._predict_batch

    def predict(self, images):
        """Classes (int, (n,)) of ``images``, or for a dA their reconstructions ((n, 784)).

        ``images``: an array of shape (n, 784) with pixels in [0, 1] (one row
        per image, as ``load_arrays`` gives them), or image file paths (read
        by :func:`~dltutorials.support.datasets.read_images`).
        """
        return in_batches(self._compiled(), as_images(images))

    def sample(self, n, seed=1234):
        """``n`` images (n, 784), pixels in [0, 1], drawn by a generative model (a GAN).

        The same ``seed`` gives the same images.
        """
        if not hasattr(self.network, 'sample'):
            raise ModelFileError('%r draws no images' % self.network)
        return self.network.sample(n, seed)

    def evaluate(self, dataset='mnist.pkl.gz'):
        """Scores on the test split of ``dataset``; a dict.

        For a classifier: ``error_rate`` (a fraction), ``confusion`` (int
        (10, 10): row = true class, column = predicted) and ``n_examples``.
        For a dA or an RBM: ``reconstruction_cost``, the mean cross-entropy per image
        between the test images and their reconstructions, and ``n_examples``.
        """
        from dltutorials.support.datasets import N_CLASSES, load_arrays

        self._refuse_generator()
        test_x, test_y = load_arrays(dataset)[2]
        if not self.is_classifier:
            from dltutorials.support.engine import theano

            from dltutorials.support.engine import T

            # The cross-entropy of the clean images' reconstructions (no
            # corruption, no sampling), from the decoder's pre-sigmoid input a:
            # sum(softplus(a) - x a), as the dA's cost.
            x = self.input
            a = self.network.get_reconstruction_activation(self.network.get_hidden_values(x))
            reconstruction_cost = theano.function(
                [x], T.sum(T.nnet.softplus(a) - x * a, axis=1))
            cost = in_batches(reconstruction_cost, as_images(test_x))
            return dict(reconstruction_cost=float(cost.astype(numpy.float64).mean()),
                        n_examples=len(test_x))
        predicted = self.predict(test_x)
        confusion = numpy.zeros((N_CLASSES, N_CLASSES), dtype=numpy.int64)
        numpy.add.at(confusion, (test_y, predicted), 1)
        return dict(error_rate=float(numpy.mean(predicted != test_y)), confusion=confusion,
                    n_examples=len(test_x))


def in_batches(function, images):
    """``function(images)``, called on at most PREDICTION_BATCH_SIZE images at a time.

    A function of several outputs gives the list of each output over all the images.
    """
    parts = [function(images[start:start + PREDICTION_BATCH_SIZE])
             for start in range(0, max(len(images), 1), PREDICTION_BATCH_SIZE)]
    if isinstance(parts[0], list):
        return [numpy.concatenate(output) for output in zip(*parts)]
    return numpy.concatenate(parts)
