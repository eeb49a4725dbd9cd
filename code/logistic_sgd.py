"""Classifying MNIST digits with logistic regression and minibatch SGD.

Logistic regression is a probabilistic linear classifier, parametrised by a
weight matrix :math:`W` and a bias vector :math:`b`.  It projects an input
onto one hyperplane per class; the distance to each becomes, through the
softmax, the probability that the input belongs to that class:

.. math::

    P(Y=i \\mid x, W, b) = \\mathrm{softmax}_i(W x + b)
                       = \\frac{e^{W_i x + b_i}}{\\sum_j e^{W_j x + b_j}}

The prediction is the most probable class,
:math:`y_{pred} = \\mathrm{argmax}_i P(Y=i \\mid x, W, b)`, and the model is
trained by minimising the mean negative log-likelihood of the correct labels
over minibatches, with early stopping on a validation set.

Run it::

    python code/logistic_sgd.py                      # the tutorial's settings
    python code/logistic_sgd.py --dataset fashion-mnist --learning-rate 0.1
    python code/logistic_sgd.py --predict            # first 10 test digits
    python code/logistic_sgd.py --predict my_digit.png

References:

- textbooks: C. M. Bishop, "Pattern Recognition and Machine Learning", section 4.3.2
"""
import sys

import numpy

# Importing dltutorials first sets the engine's defaults (BLAS, floatX) before it reads them.
from dltutorials.data_loading import load_data
from dltutorials.support import checks, command_line
from dltutorials.support.runs import entry_point, tutorial_logger
from dltutorials.training import build_minibatch_functions, load_training_data, train_and_save
from dltutorials.updates import sgd

# Theano's names, from Theano or, on Python 3.12+, PyTensor (see dltutorials.support.engine).
from dltutorials.support.engine import T, theano

__all__ = ['LogisticRegression', 'load_data', 'sgd_optimization_mnist', 'predict']

logger = tutorial_logger(__name__)

MODEL_FILE = 'logistic_sgd.npz'


class LogisticRegression(object):
    """Multi-class logistic regression: one softmax layer.

    Parameters
    ----------
    input : Theano matrix (n_examples, n_in)
        one example per row, e.g. a minibatch of flattened images.
    n_in : int
        input dimension (784 for 28 x 28 images).
    n_out : int
        number of classes.
    W, b : Theano expressions, optional
        weights (n_in, n_out) and bias (n_out,) to use instead of new zero
        shared variables: :mod:`dltutorials.logistic_cg` passes views of one
        flat parameter vector.
    """

    def __init__(self, input, n_in, n_out, W=None, b=None):
        if W is None:
            W = theano.shared(numpy.zeros((n_in, n_out), dtype=theano.config.floatX),
                              name='W', borrow=True)
        if b is None:
            b = theano.shared(numpy.zeros((n_out,), dtype=theano.config.floatX),
                              name='b', borrow=True)
        self.W = W
        self.b = b
        self.n_in, self.n_out = n_in, n_out

        # Class membership probabilities, (n_examples, n_out): row i is P(Y | x_i).
        self.p_y_given_x = T.nnet.softmax(T.dot(input, self.W) + self.b)
        # The most probable class of each example, (n_examples,).
        self.y_pred = T.argmax(self.p_y_given_x, axis=1)

        self.params = [self.W, self.b]
        self.input = input

    def __repr__(self):
        return 'LogisticRegression(n_in=%d, n_out=%d)' % (self.n_in, self.n_out)

    def negative_log_likelihood(self, y):
        """Mean negative log-likelihood of the labels ``y`` (int vector, one per row).

        .. math:: -\\frac{1}{|\\mathcal{D}|} \\sum_i \\log P(Y=y^{(i)} \\mid x^{(i)}, W, b)

        The mean, not the sum, keeps the learning rate independent of the
        minibatch size.  ``log(p_y_given_x)[arange(n), y]`` picks, in row i,
        the log-probability of the correct class y[i].
        """
        self._check_labels(y)
        return -T.mean(T.log(self.p_y_given_x)[T.arange(y.shape[0]), y])

    def errors(self, y):
        """Fraction of the examples in the minibatch that are misclassified (0-1 loss)."""
        self._check_labels(y)
        return T.mean(T.neq(self.y_pred, y))

    def _check_labels(self, y):
        if y.ndim != self.y_pred.ndim:
            raise TypeError('y should have the same rank as y_pred: got a %d-d %s, expected a '
                            'vector of class indices' % (y.ndim, y.type))
        if not y.dtype.startswith('int'):
            raise TypeError('y should hold integer class indices, got dtype %s '
                            '(cast it: T.cast(y, "int32"))' % y.dtype)


def build_sgd_functions(classifier, x, y, datasets, batch_size, learning_rate):
    """Compile the training step and the two scorers for ``classifier``.

    Returns ``(train_fn, validate_fn, test_fn)``: ``train_fn(i)`` takes one SGD
    step on training minibatch ``i`` and returns its cost; the scorers return
    the error rate over the whole validation / test set.
    """
    cost = classifier.negative_log_likelihood(y)
    updates = sgd(cost, classifier.params, learning_rate)
    return build_minibatch_functions(x, y, cost, classifier.errors(y), updates,
                                     datasets, batch_size)


@entry_point(learning_rate=checks.positive, n_epochs=checks.positive_int,
             batch_size=checks.positive_int, patience=checks.positive_int)
def sgd_optimization_mnist(learning_rate=0.13, n_epochs=1000, dataset='mnist.pkl.gz',
                           batch_size=600, patience=5000, verbose=True):
    """Train logistic regression on ``dataset`` with minibatch SGD and early stopping.

    Parameters
    ----------
    learning_rate : float
        SGD step size.
    n_epochs : int
        the most passes over the training set.
    dataset : str
        a .pkl.gz file, a folder of IDX files, or a known name
        (see :func:`~dltutorials.data_loading.load_data`).
    batch_size : int
        examples per minibatch.
    patience : int
        minibatches to look at before stopping without improvement.
    verbose : bool
        show the progress where no logging is set up (a notebook).

    Returns
    -------
    dict: the :class:`~dltutorials.training.TrainingResult` fields (errors as
    fractions), ``model_file`` (``logistic_sgd.npz`` in the output folder,
    see :mod:`dltutorials.support.runs`), ``plot_file`` and ``model``.
    """
    datasets, n_train_batches = load_training_data(dataset, batch_size)

    logger.info('... building the model')
    x = T.matrix('x')   # rasterised images, one per row
    y = T.ivector('y')  # their labels
    architecture = dict(n_in=28 * 28, n_out=10)
    classifier = LogisticRegression(input=x, **architecture)
    train_fn, validate_fn, test_fn = build_sgd_functions(
        classifier, x, y, datasets, batch_size, learning_rate)

    logger.info('... training the model')
    return train_and_save(classifier, train_fn, validate_fn, test_fn, n_train_batches, n_epochs,
                          MODEL_FILE, architecture, dataset, patience=patience)


def predict(model_file='results/' + MODEL_FILE, dataset='mnist.pkl.gz', images=None, n=10):
    """Load a saved model and print its predictions (the original tutorial's ``predict``).

    Predicts the classes of ``images`` (paths of image files), or else of the
    first ``n`` images of ``dataset``'s test set.  Returns the predictions.
    """
    return command_line.report_predictions(model_file, dataset, images, n)


def main(argv=None):
    return command_line.main(sgd_optimization_mnist, MODEL_FILE, __doc__, argv)


if __name__ == '__main__':
    sys.exit(main())
