"""One loader for every model: load_model, predict, evaluate, and --evaluate on every script."""
import subprocess
import sys

import numpy
import pytest

from conftest import REPO, make_digits
from dltutorials import load_model
from dltutorials.support.engine import theano
from dltutorials.support.errors import DatasetError, ModelFileError
from dltutorials.support.model_files import read_params, save_params

floatX = theano.config.floatX
IMAGES = make_digits(150, seed=11)[0]

# Each script on the tiny data in a few seconds, and the file it saves.
SCRIPTS = {
    'logistic_sgd': (['--n-epochs', '3', '--batch-size', '50'], 'logistic_sgd.npz'),
    'logistic_cg': (['--n-epochs', '3'], 'logistic_cg.npz'),
    'mlp': (['--n-epochs', '2', '--n-hidden', '20'], 'mlp.npz'),
    'convolutional_mlp': (['--n-epochs', '1', '--nkerns', '4', '6', '--batch-size', '50'],
                          'convolutional_mlp.npz'),
    'dA': (['--training-epochs', '1', '--n-hidden', '20'], 'dA_corruption_30.npz'),
    'SdA': (['--pretraining-epochs', '1', '--training-epochs', '2',
             '--hidden-layers-sizes', '20', '--corruption-levels', '0.1'], 'SdA.npz'),
    # 12 hidden units: an exact log-likelihood of 4,096 terms (20 would take a million).
    'rbm': (['--training-epochs', '1', '--n-hidden', '12', '--n-samples', '1', '--n-chains', '2',
             '--plot-every', '5'], 'rbm.npz'),
    'DBN': (['--pretraining-epochs', '1', '--training-epochs', '2',
             '--hidden-layers-sizes', '20'], 'DBN.npz'),
    'lstm': (['--max-epochs', '2', '--dim-proj', '8', '--batch-size', '50', '--validFreq', '-1',
              '--optimizer', 'adam', '--lrate', '0.01'], 'lstm_model.npz'),
}


def test_logistic_regression_trained_by_sgd_and_by_cg_loads_back_as_trained(tiny_pkl,
                                                                             tmp_path):
    from dltutorials.logistic_cg import train_cg
    from dltutorials.logistic_sgd import sgd_optimization_mnist

    for result in (sgd_optimization_mnist(n_epochs=3, dataset=str(tiny_pkl), batch_size=50),
                   train_cg(n_epochs=3, dataset=str(tiny_pkl))):
        trained = result['model'].network
        expected = theano.function([trained.input], trained.y_pred)(IMAGES.astype(floatX))
        loaded = load_model(result['model_file'])
        assert type(loaded.network).__name__ == 'LogisticRegression'
        assert len(set(expected)) > 5          # a real classifier, not a constant
        numpy.testing.assert_array_equal(loaded.predict(IMAGES), expected)


def test_a_dA_loads_back_and_predicts_its_reconstructions(tiny_pkl, tmp_path):
    from dltutorials.dA import train_dA

    result = train_dA(training_epochs=2, dataset=str(tiny_pkl), n_hidden=20)
    da = result['model'].network
    expected = theano.function([da.x], da.get_reconstructed_input(da.get_hidden_values(da.x)))(
        IMAGES.astype(floatX))
    loaded = load_model(result['model_file'])
    assert not loaded.is_classifier and loaded.network.n_hidden == 20
    numpy.testing.assert_allclose(loaded.predict(IMAGES), expected, rtol=1e-6)
    scores = loaded.evaluate(str(tiny_pkl))
    # The cross-entropy of the test images and their reconstructions, in numpy.
    from dltutorials.support.datasets import load_arrays
    test_x = load_arrays(tiny_pkl)[2][0].astype(numpy.float64)
    z = loaded.predict(test_x).astype(numpy.float64)
    cross_entropy = -numpy.sum(test_x * numpy.log(z) + (1 - test_x) * numpy.log(1 - z), axis=1)
    assert scores['n_examples'] == 100
    assert scores['reconstruction_cost'] == pytest.approx(cross_entropy.mean(), rel=1e-4)


def test_an_rbm_loads_back_and_scores_its_mean_field_reconstructions(tiny_pkl, tmp_path):
    from dltutorials.rbm import test_rbm

    result = test_rbm(training_epochs=2, dataset=str(tiny_pkl), n_hidden=15, n_samples=0,
                      output_folder=str(tmp_path))
    loaded = load_model(result['model_file'])
    assert not loaded.is_classifier and loaded.network.n_hidden == 15
    W, hbias, vbias = (p.get_value().astype(numpy.float64) for p in loaded.network.params)
    test_x = make_digits(100, seed=3)[0].astype(numpy.float64)
    # P(v = 1 | P(h = 1 | v)), and its cross-entropy with v, in numpy.
    z = 1 / (1 + numpy.exp(-(1 / (1 + numpy.exp(-(test_x @ W + hbias))) @ W.T + vbias)))
    numpy.testing.assert_allclose(loaded.predict(test_x), z, rtol=1e-4, atol=1e-6)
    cross_entropy = -numpy.sum(test_x * numpy.log(z) + (1 - test_x) * numpy.log(1 - z), axis=1)
    assert loaded.evaluate(str(tiny_pkl))['reconstruction_cost'] == \
        pytest.approx(cross_entropy.mean(), rel=1e-4)


def test_evaluate_gives_the_error_rate_and_a_confusion_matrix(tiny_pkl):
    from dltutorials.logistic_sgd import sgd_optimization_mnist

    result = sgd_optimization_mnist(n_epochs=2, dataset=str(tiny_pkl), batch_size=50)
    scores = load_model(result['model_file']).evaluate(str(tiny_pkl))
    test_x, test_y = make_digits(100, seed=3)
    predicted = result['model'].predict(test_x)
    assert scores['error_rate'] == pytest.approx(numpy.mean(predicted != test_y))
    assert scores['error_rate'] == pytest.approx(result['test_error'])
    confusion = scores['confusion']
    assert confusion.shape == (10, 10) and confusion.sum() == 100
    numpy.testing.assert_array_equal(confusion.sum(axis=1), numpy.bincount(test_y, minlength=10))
    assert numpy.trace(confusion) == numpy.sum(predicted == test_y)


def test_predict_reads_image_files(tiny_pkl, tmp_path):
    from PIL import Image
    from dltutorials.logistic_sgd import sgd_optimization_mnist

    result = sgd_optimization_mnist(n_epochs=3, dataset=str(tiny_pkl), batch_size=50)
    paths = []
    for i, image in enumerate(IMAGES[:4]):
        paths.append(tmp_path / ('%d.png' % i))
        Image.fromarray((image.reshape(28, 28) * 255).round().astype('uint8')).save(paths[-1])
    model = load_model(result['model_file'])
    numpy.testing.assert_array_equal(model.predict(paths), model.predict(IMAGES[:4]))
    with pytest.raises(DatasetError, match=r'shape \(n, 784\), got float64 of shape \(3, 5\)'):
        model.predict(numpy.zeros((3, 5)))


def test_files_that_are_not_tutorial_models_are_refused(tmp_path):
    save_params(tmp_path / 'other.npz', [('W', numpy.zeros(3))], model='ResNet')
    with pytest.raises(ModelFileError, match="not a model saved by the tutorials .model 'ResNet'"):
        load_model(tmp_path / 'other.npz')
    save_params(tmp_path / 'odd.npz', [('W', numpy.zeros(3))], model='MLP',
                architecture=dict(n_in=784, n_layers=2))
    with pytest.raises(ModelFileError, match='cannot build a MLP from the architecture'):
        load_model(tmp_path / 'odd.npz')
    with pytest.raises(ModelFileError, match='no such model file'):
        load_model(tmp_path / 'absent.npz')
    from dltutorials.mlp import load_mlp
    save_params(tmp_path / 'lr.npz', [('W', numpy.zeros((784, 10))), ('b', numpy.zeros(10))],
                model='LogisticRegression', architecture=dict(n_in=784, n_out=10))
    with pytest.raises(ModelFileError, match='holds a LogisticRegression, not a MLP'):
        load_mlp(tmp_path / 'lr.npz')


def test_more_than_a_hundred_arrays_load_in_the_order_they_were_saved(tmp_path):
    arrays = [('a%d' % i, numpy.full(2, i, dtype='float32')) for i in range(120)]
    save_params(tmp_path / 'many.npz', arrays)
    values, _ = read_params(tmp_path / 'many.npz')
    assert [int(v[0]) for v in values] == list(range(120))


@pytest.mark.parametrize('script', sorted(SCRIPTS))
def test_every_script_saves_the_same_files_twice_then_evaluates_and_predicts(script, tiny_pkl,
                                                                             tmp_path):
    flags, model_file = SCRIPTS[script]
    command = [sys.executable, str(REPO / 'code' / (script + '.py')), '--dataset', str(tiny_pkl),
               '--output-dir', str(tmp_path)]
    done = subprocess.run(command + flags, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / model_file).exists()
    # The same command with the same seed writes the same files, byte for byte.
    again = command[:-1] + [str(tmp_path / 'again')] + flags
    assert subprocess.run(again, capture_output=True, timeout=600).returncode == 0
    saved = sorted(path.name for path in tmp_path.glob('*.npz'))
    assert saved == sorted(path.name for path in (tmp_path / 'again').glob('*.npz'))
    for name in saved:
        assert (tmp_path / name).read_bytes() == (tmp_path / 'again' / name).read_bytes(), name
    done = subprocess.run(command + ['--evaluate'], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    if script in ('dA', 'rbm'):
        assert 'mean reconstruction cross-entropy' in done.stdout
    else:
        assert 'on the 100 test images of %s: error rate' % tiny_pkl in done.stdout
        assert 'confusion matrix (rows: true class, columns: predicted class)' in done.stdout
        confusion_png = tmp_path / model_file.replace('.npz', '_confusion.png')
        assert confusion_png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    done = subprocess.run(command + ['--predict'], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert ('reconstruction error' if script in ('dA', 'rbm') else 'Predicted values') \
        in done.stdout
    done = subprocess.run(command[:2] + ['--evaluate', '--output-dir', str(tmp_path / 'none')],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 2 and 'no such model file' in done.stderr
    assert 'Traceback' not in done.stderr


@pytest.mark.parametrize('script', sorted(SCRIPTS))
def test_every_script_refuses_an_output_folder_it_cannot_create_before_training(script,
                                                                                 tiny_pkl,
                                                                                 tmp_path):
    blocker = tmp_path / 'a_file'
    blocker.write_text('not a folder')
    done = subprocess.run([sys.executable, str(REPO / 'code' / (script + '.py')),
                           '--dataset', str(tiny_pkl), '--output-dir', str(blocker / 'out')],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        'error: cannot write to the output folder %s: Not a directory' % (blocker / 'out'))
    assert 'Traceback' not in done.stderr and 'training' not in done.stderr
