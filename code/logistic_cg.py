"""Logistic regression on MNIST trained with the conjugate gradient method.

The same model as :mod:`dltutorials.logistic_sgd`, trained by a different
optimiser: ``scipy.optimize.fmin_cg`` searches along conjugate directions
using the exact cost and gradient over the whole training set, which Theano
computes.  SciPy works on one flat vector of parameters, so ``W`` and ``b``
are views into a single shared vector ``theta``: setting ``theta`` changes
both, and the gradient with respect to ``theta`` is what SciPy wants.

.. math::

    \\theta = [\\mathrm{vec}(W), b], \\qquad
    \\ell(\\theta) = -\\frac{1}{N} \\sum_i \\log P(Y=y^{(i)} \\mid x^{(i)}, \\theta)

Each conjugate-gradient iteration counts as an epoch; after each, the
validation error is measured, and the parameters with the best one are kept
(and saved), as early stopping would.

Run it::

    python code/logistic_cg.py --n-epochs 50

References:

- J. Nocedal and S. J. Wright, "Numerical Optimization", chapter 5
"""
import sys
import time

import numpy
import scipy.optimize

# Importing dltutorials first sets the engine's defaults (BLAS, floatX) before it reads them.
from dltutorials.data_loading import load_data
from dltutorials.logistic_sgd import LogisticRegression
from dltutorials.support import checks, command_line
from dltutorials.support.checkpoints import Checkpoint
from dltutorials.support.models import Model, save_model
from dltutorials.support.runs import (entry_point, epochs, output_path, prepare_output_dir,
                                      stop_requests, tutorial_logger)
from dltutorials.training import (TrainingResult, compile_set_scorer, log_summary, new_result,
                                  record_validation)

# Theano's names, from Theano or, on Python 3.12+, PyTensor (see dltutorials.support.engine).
from dltutorials.support.engine import T, theano

logger = tutorial_logger(__name__)

MODEL_FILE = 'logistic_cg.npz'


def flat_logistic_regression(input, n_in, n_out):
    """A :class:`~dltutorials.logistic_sgd.LogisticRegression` whose W and b view one shared vector.

    Returns ``(classifier, theta)``; ``theta`` has ``n_in * n_out + n_out``
    floatX entries, W first (row-major), then b.
    """
    theta = theano.shared(numpy.zeros(n_in * n_out + n_out, dtype=theano.config.floatX),
                          name='theta', borrow=True)
    W = theta[:n_in * n_out].reshape((n_in, n_out))
    b = theta[n_in * n_out:]
    return LogisticRegression(input, n_in, n_out, W=W, b=b), theta


def build_cg_functions(classifier, theta, x, y, datasets, batch_size=600):
    """Compile what ``fmin_cg`` needs.

    Returns ``(cost_and_grad, validate_fn, test_fn)``: ``cost_and_grad()``
    gives the mean negative log-likelihood over the whole training set and
    its gradient with respect to ``theta``, in one pass; the scorers give the
    error rate over every example of the validation / test set, scored in
    minibatches of ``batch_size``.
    """
    (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = datasets
    cost = classifier.negative_log_likelihood(y)
    cost_and_grad = theano.function([], [cost, T.grad(cost, theta)],
                                    givens={x: train_x, y: train_y})
    errors = classifier.errors(y)
    return (cost_and_grad,
            compile_set_scorer(x, y, errors, valid_x, valid_y, batch_size),
            compile_set_scorer(x, y, errors, test_x, test_y, batch_size))


@entry_point(n_epochs=checks.positive_int)
def train_cg(n_epochs=50, dataset='mnist.pkl.gz', verbose=True):
    """Train logistic regression with ``scipy.optimize.fmin_cg``, at most ``n_epochs`` iterations.

    Parameters
    ----------
    n_epochs : int
        the most conjugate-gradient iterations.
    dataset : str
        a .pkl.gz file, a folder of IDX files, or a known name.
    verbose : bool
        show the progress where no logging is set up (a notebook).

    Returns
    -------
    A dict with the :class:`~dltutorials.training.TrainingResult`
    fields (errors as fractions), ``model_file`` (``logistic_cg.npz`` in the
    output folder, the parameters with the best validation error, loadable
    as a :class:`~dltutorials.logistic_sgd.LogisticRegression`) and
    ``model`` (the same parameters).
    """
    prepare_output_dir()
    datasets = load_data(dataset)
    architecture = dict(n_in=28 * 28, n_out=10)
    n_weights = architecture['n_in'] * architecture['n_out']

    logger.info('... building the model')
    x = T.matrix('x')
    y = T.ivector('y')
    classifier, theta = flat_logistic_regression(x, **architecture)
    cost_and_grad, validate_fn, test_fn = build_cg_functions(classifier, theta, x, y, datasets)

    # fmin_cg asks for the cost and the gradient separately, usually at the
    # same point: compute both in one pass and remember the last point.
    cache = {}

    def evaluate(theta_value):
        if cache.get('theta') is None or not numpy.array_equal(cache['theta'], theta_value):
            theta.set_value(theta_value.astype(theano.config.floatX), borrow=False)
            cost, grad = cost_and_grad()
            cache.update(theta=theta_value.copy(), cost=float(cost),
                         grad=numpy.asarray(grad, dtype='float64'))
        return cache['cost'], cache['grad']

    model_file = output_path(MODEL_FILE)
    best_theta = []
    # The state goes on from a checkpoint exactly, but scipy's conjugate
    # direction cannot be saved: a resumed run starts a new one from the
    # saved point (a restart, as CG does every n iterations anyway).
    checkpoint = Checkpoint('logistic_cg', [theta], kept=best_theta)
    saved = checkpoint.saved or {}
    result = TrainingResult(**saved['result']) if saved else new_result()
    start = time.perf_counter() - result.seconds

    def after_iteration(theta_value):
        # One conjugate-gradient iteration is this loop's epoch.
        result.epochs = result.iterations = result.epochs + 1
        theta.set_value(theta_value.astype(theano.config.floatX), borrow=False)
        validation_error = validate_fn()
        logger.info('epoch %i, validation error %.2f %% (%.1f s elapsed)',
                    result.epochs, validation_error * 100, time.perf_counter() - start)
        if record_validation(result, validation_error, test_fn, result.epochs,
                             result.epochs - 1):
            best_theta[:] = [theta_value.copy()]
            save_model(model_file, classifier, architecture,
                       values=[('W', theta_value[:n_weights].reshape(architecture['n_in'], -1)),
                               ('b', theta_value[n_weights:])],
                       dataset=str(dataset), best_validation_error=result.best_validation_error,
                       test_error=result.test_error)
        result.seconds = time.perf_counter() - start
        checkpoint.save(dict(result=result.as_dict(), finished=False),
                        'epoch %d' % result.epochs)
        if stop.requested:
            raise KeyboardInterrupt

    logger.info('... training the model')
    max_iterations = epochs(n_epochs)
    iterations_left = max_iterations - result.epochs
    try:
        with stop_requests() as stop:
            if not saved.get('finished') and iterations_left > 0:
                scipy.optimize.fmin_cg(f=lambda t: evaluate(t)[0],
                                       fprime=lambda t: evaluate(t)[1],
                                       x0=theta.get_value().astype('float64'),
                                       callback=after_iteration, disp=0,
                                       maxiter=iterations_left)
                if result.epochs < max_iterations:
                    result.stopped_by = 'converged'
            checkpoint.save(dict(result=result.as_dict(), finished=True), 'the end')
    except KeyboardInterrupt:
        result.stopped_by = 'interrupted'
        logger.warning('interrupted in epoch %i; keeping the best model so far', result.epochs)
    result.seconds = time.perf_counter() - start
    log_summary(result)
    if best_theta:
        theta.set_value(best_theta[0].astype(theano.config.floatX))
        logger.info('best model saved to %s', model_file)
    return dict(result.as_dict(), model_file=str(model_file) if best_theta else None,
                model=Model(classifier))


def cg_optimization_mnist(n_epochs=50, mnist_pkl_gz='mnist.pkl.gz', **options):
    """The original tutorial's entry point: :func:`train_cg` under its old name."""
    return train_cg(n_epochs, mnist_pkl_gz, **options)


def main(argv=None):
    return command_line.main(train_cg, MODEL_FILE, __doc__, argv)


if __name__ == '__main__':
    sys.exit(main())
