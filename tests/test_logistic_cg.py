"""Logistic regression trained by conjugate gradient: shared model, whole-set gradient."""
import numpy
import pytest

from dltutorials.support.engine import T, theano

from dltutorials.support.errors import HyperparameterError
from dltutorials.logistic_cg import (build_cg_functions, cg_optimization_mnist,
                                     flat_logistic_regression, main)
from dltutorials.logistic_sgd import LogisticRegression, load_data, predict


def test_flat_views_are_the_models_parameters():
    x = T.matrix('x')
    model, theta = flat_logistic_regression(x, n_in=4, n_out=3)
    assert isinstance(model, LogisticRegression)
    theta.set_value(numpy.arange(15, dtype=theano.config.floatX))
    numpy.testing.assert_array_equal(model.W.eval(), numpy.arange(12).reshape(4, 3))
    numpy.testing.assert_array_equal(model.b.eval(), [12, 13, 14])


def test_gradient_matches_finite_differences(tiny_pkl):
    datasets = load_data(tiny_pkl)
    x, y = T.matrix('x'), T.ivector('y')
    model, theta = flat_logistic_regression(x, 784, 10)
    cost_and_grad, _, _ = build_cg_functions(model, theta, x, y, datasets)
    rng = numpy.random.RandomState(0)
    point = rng.normal(0, 0.01, theta.get_value().shape).astype(theano.config.floatX)
    theta.set_value(point)
    _, grad = cost_and_grad()
    eps = 1e-2 if theano.config.floatX == 'float32' else 1e-5

    def cost_at(value):
        theta.set_value(value)
        return float(cost_and_grad()[0])

    for k in rng.choice(len(point), 8, replace=False).tolist() + [len(point) - 1]:
        step = numpy.zeros_like(point)
        step[k] = eps
        numerical = (cost_at(point + step) - cost_at(point - step)) / (2 * eps)
        assert grad[k] == pytest.approx(numerical, rel=0.05, abs=1e-4)


def test_cg_training_reaches_a_low_error_and_saves_the_best_model(tiny_pkl, tmp_path):
    from dltutorials.support.datasets import load_arrays

    result = cg_optimization_mnist(n_epochs=10, mnist_pkl_gz=str(tiny_pkl))
    assert result['best_validation_error'] < 0.05 and result['test_error'] < 0.05
    # The file holds the model of the best validation error: scored here in
    # numpy, from the raw arrays, it gives the scores the run reported.
    with numpy.load(tmp_path / 'logistic_cg.npz') as saved:
        W, b = saved['p00_W'], saved['p01_b']
    _, (valid_x, valid_y), (test_x, test_y) = load_arrays(tiny_pkl)
    assert numpy.mean((valid_x @ W + b).argmax(axis=1) != valid_y) == \
        pytest.approx(result['best_validation_error'])
    assert numpy.mean((test_x @ W + b).argmax(axis=1) != test_y) == \
        pytest.approx(result['test_error'])
    # ... and load into the ordinary LogisticRegression.
    assert len(predict(tmp_path / 'logistic_cg.npz', dataset=str(tiny_pkl))) == 10


def test_nonsense_epochs_are_refused(tiny_pkl):
    with pytest.raises(HyperparameterError, match='n_epochs'):
        cg_optimization_mnist(n_epochs=0, mnist_pkl_gz=str(tiny_pkl))


def test_command_line(tiny_pkl, tmp_path, capsys):
    assert main(['--dataset', str(tiny_pkl), '--output-dir', str(tmp_path),
                 '--n-epochs', '3']) == 0
    assert 'Optimization complete' in capsys.readouterr().err
    assert main(['--dataset', str(tmp_path / 'missing.pkl.gz')]) == 2
