"""Logistic regression: the model against a numpy reference, training, saving, the CLI."""
import numpy
import pytest

from dltutorials.support.engine import T, theano

from dltutorials.support.errors import HyperparameterError, ModelFileError
from dltutorials.support.runs import run_options
from dltutorials.logistic_sgd import (LogisticRegression, build_sgd_functions, load_data,
                                      main, predict, sgd_optimization_mnist)

floatX = theano.config.floatX


def numpy_reference(x, y, W, b):
    """Softmax regression in plain numpy (float64): cost, dcost/dW, dcost/db, predictions."""
    scores = x @ W + b
    scores -= scores.max(axis=1, keepdims=True)
    p = numpy.exp(scores)
    p /= p.sum(axis=1, keepdims=True)
    n = len(y)
    cost = -numpy.log(p[numpy.arange(n), y]).mean()
    delta = p.copy()
    delta[numpy.arange(n), y] -= 1
    return cost, x.T @ delta / n, delta.mean(axis=0), p.argmax(axis=1)


@pytest.fixture
def random_problem():
    rng = numpy.random.RandomState(42)
    x = rng.uniform(0, 1, (7, 5))
    y = rng.randint(0, 3, 7)
    W = rng.normal(0, 1, (5, 3))
    b = rng.normal(0, 1, 3)
    return x, y, W, b


def test_cost_gradients_and_predictions_match_numpy(random_problem):
    x_value, y_value, W_value, b_value = random_problem
    x, y = T.matrix('x'), T.ivector('y')
    model = LogisticRegression(x, n_in=5, n_out=3)
    model.W.set_value(W_value.astype(floatX))
    model.b.set_value(b_value.astype(floatX))
    cost = model.negative_log_likelihood(y)
    f = theano.function([x, y], [cost] + T.grad(cost, model.params) + [model.y_pred,
                                                                         model.errors(y)])
    got_cost, got_gW, got_gb, got_pred, got_err = f(x_value.astype(floatX),
                                                   y_value.astype('int32'))
    cost_ref, gW_ref, gb_ref, pred_ref = numpy_reference(x_value, y_value, W_value, b_value)
    tol = 1e-5 if floatX == 'float32' else 1e-10
    numpy.testing.assert_allclose(got_cost, cost_ref, rtol=tol)
    numpy.testing.assert_allclose(got_gW, gW_ref, rtol=tol * 10, atol=tol)
    numpy.testing.assert_allclose(got_gb, gb_ref, rtol=tol * 10, atol=tol)
    numpy.testing.assert_array_equal(got_pred, pred_ref)
    assert got_err == pytest.approx(numpy.mean(pred_ref != y_value))


def test_shapes_params_and_repr():
    x = T.matrix('x')
    model = LogisticRegression(x, n_in=784, n_out=10)
    assert model.W.get_value().shape == (784, 10) and model.b.get_value().shape == (10,)
    assert model.params == [model.W, model.b] and model.input is x
    assert model.W.dtype == floatX
    assert repr(model) == 'LogisticRegression(n_in=784, n_out=10)'
    probabilities = theano.function([x], model.p_y_given_x)(numpy.ones((4, 784), floatX))
    numpy.testing.assert_allclose(probabilities, 0.1, rtol=1e-6)   # zero weights: uniform


@pytest.mark.parametrize('bad_y, message', [
    (lambda: T.imatrix('y'), 'same rank'),
    (lambda: T.vector('y'), 'integer class indices'),
])
def test_errors_refuses_labels_of_the_wrong_rank_or_dtype(bad_y, message):
    model = LogisticRegression(T.matrix('x'), 784, 10)
    with pytest.raises(TypeError, match=message):
        model.errors(bad_y())
    with pytest.raises(TypeError, match=message):
        model.negative_log_likelihood(bad_y())


def test_training_lowers_the_cost_and_the_error(tiny_pkl):
    datasets = load_data(tiny_pkl)
    x, y = T.matrix('x'), T.ivector('y')
    model = LogisticRegression(x, 784, 10)
    train_fn, validate_fn, _ = build_sgd_functions(model, x, y, datasets, 50, 0.13)
    first_epoch = [float(train_fn(i)) for i in range(6)]
    assert validate_fn() < 0.5
    for _ in range(5):
        last_epoch = [float(train_fn(i)) for i in range(6)]
    assert numpy.mean(last_epoch) < 0.5 * numpy.mean(first_epoch)
    assert validate_fn() < 0.05     # the tiny problem is linearly separable


def test_sgd_optimization_trains_saves_and_predicts(tiny_pkl, tmp_path, capsys):
    result = sgd_optimization_mnist(learning_rate=0.13, n_epochs=5, dataset=str(tiny_pkl),
                                    batch_size=50)
    assert result['stopped_by'] == 'n_epochs' and result['epochs'] == 5
    assert result['best_validation_error'] < 0.05 and result['test_error'] < 0.05
    assert (tmp_path / 'logistic_sgd.npz').exists()
    predicted = predict(tmp_path / 'logistic_sgd.npz', dataset=str(tiny_pkl))
    assert 'Predicted values for the first 10 examples in test set:' in capsys.readouterr().out
    from conftest import make_digits
    numpy.testing.assert_array_equal(predicted, make_digits(100, seed=3)[1][:10])


def test_predict_on_image_files(tiny_pkl, tmp_path, capsys):
    from PIL import Image
    from conftest import make_digits
    sgd_optimization_mnist(n_epochs=5, dataset=str(tiny_pkl), batch_size=50)
    images, labels = make_digits(3, seed=9)
    paths = []
    for i, image in enumerate(images):
        paths.append(tmp_path / ('digit%d.png' % i))
        Image.fromarray((image.reshape(28, 28) * 255).astype(numpy.uint8)).save(paths[-1])
    predicted = predict(tmp_path / 'logistic_sgd.npz', images=paths)
    numpy.testing.assert_array_equal(predicted, labels)
    assert 'digit0.png: %d' % labels[0] in capsys.readouterr().out


def test_a_model_file_for_another_architecture_is_refused(tmp_path):
    from dltutorials.support.model_files import save_params
    wrong = [theano.shared(numpy.zeros((784, 500), floatX), name='W'),
             theano.shared(numpy.zeros(500, floatX), name='b')]
    save_params(tmp_path / 'm.npz', wrong, model='LogisticRegression',
                architecture=dict(n_in=784, n_out=10))
    with pytest.raises(ModelFileError, match=r'parameter 0 \(W\) has shape \(784, 500\)'):
        predict(tmp_path / 'm.npz')


@pytest.mark.parametrize('kwargs, message', [
    (dict(learning_rate=-0.1), 'learning_rate'),
    (dict(batch_size=1000), 'larger than the 300 training examples'),
    (dict(n_epochs=0), 'n_epochs'),
])
def test_nonsense_hyperparameters_are_refused(tiny_pkl, tmp_path, kwargs, message):
    with pytest.raises(HyperparameterError, match=message):
        sgd_optimization_mnist(dataset=str(tiny_pkl), **kwargs)


def test_command_line_trains_then_predicts(tiny_pkl, tmp_path, capsys):
    args = ['--dataset', str(tiny_pkl), '--output-dir', str(tmp_path), '--n-epochs', '2',
            '--batch-size', '50']
    assert main(args) == 0
    err = capsys.readouterr().err
    assert 'Optimization complete with best validation score of' in err
    assert main(args + ['--predict']) == 0
    assert 'Predicted values' in capsys.readouterr().out


def test_command_line_reports_bad_input_in_one_line(tmp_path, capsys):
    bad = tmp_path / 'bad.pkl.gz'
    bad.write_text('not gzip')
    assert main(['--dataset', str(bad), '--output-dir', str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith('error: ') and 'bad.pkl.gz: not a readable gzip file' in err[-1]
    assert main(['--predict', '--output-dir', str(tmp_path / 'none')]) == 2
    assert 'no such model file' in capsys.readouterr().err


def test_command_line_rejects_nonsense_flags(capsys):
    for flags in (['--learning-rate', '0'], ['--batch-size', '-5'], ['--n-epochs', 'many']):
        with pytest.raises(SystemExit) as stop:
            main(flags)
        assert stop.value.code == 2
    assert 'must be a positive number' in capsys.readouterr().err


def test_the_script_runs_as_users_run_it(tiny_pkl, tmp_path):
    import subprocess
    import sys
    from conftest import REPO
    done = subprocess.run([sys.executable, str(REPO / 'code' / 'logistic_sgd.py'),
                           '--dataset', str(tiny_pkl), '--n-epochs', '1', '--batch-size', '50',
                           '--output-dir', str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert '... training the model' in done.stderr            # the script's own lines show
    assert 'Optimization complete' in done.stderr
    assert (tmp_path / 'logistic_sgd.npz').exists()


def test_quick_mode_runs_one_minibatch_per_phase_and_plots(tiny_pkl, tmp_path):
    with run_options(quick=True):
        result = sgd_optimization_mnist(dataset=str(tiny_pkl), batch_size=50)
    assert result['iterations'] == 1 and result['epochs'] == 1 and len(result['history']) == 1
    assert result['plot_file'] == str(tmp_path / 'logistic_sgd_curve.png')
    assert (tmp_path / 'logistic_sgd_curve.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    with run_options(quick=True, plot=False, output_dir=tmp_path / 'b'):
        result = sgd_optimization_mnist(dataset=str(tiny_pkl), batch_size=50)
    assert result['plot_file'] is None and not (tmp_path / 'b' / 'logistic_sgd_curve.png').exists()


def test_scorers_count_every_example(tiny_splits, tmp_path):
    from conftest import write_pkl_gz
    # 130 validation examples: not a multiple of any batch size used.
    (train, (vx, vy), test) = tiny_splits
    vx, vy = numpy.concatenate([vx, vx[:30]]), numpy.concatenate([vy, (vy[:30] + 1) % 10])
    path = write_pkl_gz(tmp_path / 'd.pkl.gz', (train, (vx, vy), test))
    datasets = load_data(path)
    x, y = T.matrix('x'), T.ivector('y')
    model = LogisticRegression(x, 784, 10)
    train_fn, validate_fn, _ = build_sgd_functions(model, x, y, datasets, 50, 0.13)
    for i in range(6):
        train_fn(i)
    predictions = theano.function([x], model.y_pred)(vx.astype(floatX))
    assert validate_fn() == pytest.approx(numpy.mean(predictions != vy))
    assert validate_fn() >= 30 / 130.0 - 1e-9   # the 30 relabelled copies can't all be right
