"""The tricks of the trade: layers, initialisers, whitening, augmentation, gradient checks, --overfit."""
import json
import os
import subprocess
import sys

import numpy
import pytest

from dltutorials import layers, preprocessing
from dltutorials.debugging import check_grad
from dltutorials.mlp import MLP
from dltutorials.support.engine import T, theano

from conftest import REPO, add_worker_compile_folder

CODE_DIR = REPO / 'code'
SAMPLE_DATA = REPO / 'data' / 'mnist_sample.pkl.gz'   # in the repository: always there

floatX = theano.config.floatX


# --- initialisers and activations ---

@pytest.mark.parametrize('name, variance', [
    ('glorot_uniform', 2.0 / (400 + 100)), ('glorot_normal', 2.0 / (400 + 100)),
    ('he_uniform', 2.0 / 400), ('he_normal', 2.0 / 400)])
def test_initialisers_have_their_published_variance(name, variance):
    weights = layers.INITIALISERS[name](numpy.random.RandomState(0), 400, 100, T.tanh)
    assert weights.shape == (400, 100) and weights.dtype == floatX
    assert abs(weights.var() / variance - 1) < 0.03
    assert abs(weights.mean()) < 0.01
    if name.endswith('uniform'):     # bounded by sqrt(3 variance)
        assert numpy.abs(weights).max() <= numpy.sqrt(3 * variance) + 1e-6


def test_activations_against_numpy():
    x = T.vector('x')
    values = numpy.array([-3.0, -0.5, 0.0, 0.5, 3.0], dtype=floatX)
    expected = {'tanh': numpy.tanh(values), 'sigmoid': 1 / (1 + numpy.exp(-values)),
                'relu': numpy.maximum(values, 0),
                'leaky_relu': numpy.where(values > 0, values, 0.01 * values),
                'elu': numpy.where(values > 0, values, numpy.exp(values) - 1)}
    function = theano.function([x], [layers.ACTIVATIONS[name](x) for name in expected])
    for name, got in zip(expected, function(values)):
        numpy.testing.assert_allclose(got, expected[name], rtol=1e-5, atol=1e-7, err_msg=name)


# --- dropout and batch normalization ---

def test_dropout_drops_p_of_the_units_and_keeps_the_mean():
    from dltutorials.support.engine import MRG_RandomStreams

    x = T.matrix('x')
    dropped = theano.function([x], layers.Dropout(MRG_RandomStreams(1), 0.3)(x))
    ones = numpy.ones((200, 500), dtype=floatX)
    first, second = dropped(ones), dropped(ones)
    assert abs((first == 0).mean() - 0.3) < 0.01
    assert set(numpy.unique(first)) == {0, numpy.float32(1 / 0.7).astype(floatX)}
    assert abs(first.mean() - 1) < 0.02
    assert (first != second).any()                     # a new mask every call


def test_batch_norm_standardises_in_training_and_tracks_running_averages():
    x = T.matrix('x')
    batch_norm = layers.BatchNorm(3)
    train = theano.function([x], batch_norm(x, training=True), updates=batch_norm.updates)
    test = theano.function([x], batch_norm(x, training=False))
    rng = numpy.random.RandomState(0)
    data = (rng.normal(size=(50, 3)) * [1, 5, 0.1] + [2, -1, 7]).astype(floatX)
    normalized = train(data)
    numpy.testing.assert_allclose(normalized.mean(axis=0), 0, atol=1e-5)
    batch_var = data.var(axis=0)
    numpy.testing.assert_allclose(normalized.var(axis=0), batch_var / (batch_var + 1e-5),
                                  rtol=1e-4)
    # PyTorch's running averages: momentum 0.1, unbiased variance, from (0, 1).
    numpy.testing.assert_allclose(batch_norm.running_mean.get_value(),
                                  0.1 * data.mean(axis=0), rtol=1e-5)
    numpy.testing.assert_allclose(batch_norm.running_var.get_value(),
                                  0.9 + 0.1 * data.var(axis=0, ddof=1), rtol=1e-5)
    mean, var = batch_norm.running_mean.get_value(), batch_norm.running_var.get_value()
    numpy.testing.assert_allclose(test(data), (data - mean) / numpy.sqrt(var + 1e-5),
                                  rtol=1e-4, atol=1e-5)


def test_batch_norm_of_feature_maps_averages_per_map():
    maps = T.tensor4('maps')
    batch_norm = layers.BatchNorm(4, axes=(0, 2, 3))
    normalized = theano.function([maps], batch_norm(maps, training=True))(
        numpy.random.RandomState(1).normal(3, 2, size=(8, 4, 5, 5)).astype(floatX))
    numpy.testing.assert_allclose(normalized.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    numpy.testing.assert_allclose(normalized.var(axis=(0, 2, 3)), 1, rtol=1e-3)


def test_dropout_and_batch_norm_predict_deterministically_and_train_differently():
    x = T.matrix('x')
    mlp = MLP(numpy.random.RandomState(0), x, 20, [30, 30], 4, activation='relu',
              dropout=0.5, batch_norm=True)
    images = numpy.random.RandomState(1).rand(16, 20).astype(floatX)
    predict = theano.function([x], mlp.logRegressionLayer.p_y_given_x)
    numpy.testing.assert_array_equal(predict(images), predict(images))
    train_units = theano.function([x], mlp.hidden_layers[-1].train_output, updates=mlp.updates)
    assert (train_units(images) != train_units(images)).any()        # new masks
    assert len(mlp.statistics) == 4 and len(mlp.updates) == 4


def test_without_tricks_training_and_test_graphs_are_one():
    x = T.matrix('x')
    mlp = MLP(numpy.random.RandomState(0), x, 20, [30, 30], 4, activation='relu')
    assert mlp.train_negative_log_likelihood == mlp.negative_log_likelihood
    assert all(layer.train_output is layer.output for layer in mlp.hidden_layers)
    assert mlp.statistics == [] and not mlp.updates
    from dltutorials.convolutional_mlp import LeNet5
    lenet = LeNet5(numpy.random.RandomState(0), x, nkerns=(2, 3), n_hidden=5)
    assert lenet.train_negative_log_likelihood == lenet.negative_log_likelihood


# --- gradient checks ---

def test_check_grad_finds_a_wrong_gradient():
    w = theano.shared(numpy.array([0.3, -0.2, 0.5], dtype=floatX), name='w')
    right = T.sum(T.tanh(w) ** 2)
    # grad_scale leaves the value alone and doubles the gradient: a wrong gradient.
    wrong = T.sum(theano.gradient.grad_scale(T.tanh(w), 2.0) ** 2)
    tolerance = 1e-2 if floatX == 'float32' else 1e-6
    assert check_grad(right, [w], epsilon=1e-2 if floatX == 'float32' else 1e-5)[0] < tolerance
    assert check_grad(wrong, [w])[0] > 0.3


GRADIENT_CHECK = r'''
import json, numpy
from dltutorials.support.engine import T, theano
from dltutorials.mlp import MLP
from dltutorials.convolutional_mlp import LeNet5
from dltutorials.debugging import check_grad
assert theano.config.floatX == 'float64'
rng = numpy.random.RandomState(0)
images = rng.rand(8, 784)
labels = (numpy.arange(8) % 10).astype('int32')
x, y = T.matrix('x'), T.ivector('y')
errors = {}
for activation in ('tanh', 'sigmoid', 'relu', 'leaky_relu', 'elu'):
    net = MLP(rng, x, 784, [16, 12], 10, activation=activation, init='he_normal',
              batch_norm=True, dropout=0.5)
    # Weights of the output layer not zero, so that gradients reach the hidden layers.
    net.logRegressionLayer.W.set_value(rng.normal(size=(12, 10)))
    errors['mlp ' + activation] = check_grad(
        net.train_negative_log_likelihood(y), net.params, givens={x: images, y: labels},
        n_entries=5, epsilon=1e-5)
net = LeNet5(rng, x, nkerns=(3, 4), n_hidden=8, activation='relu', batch_norm=True, dropout=0.3)
net.layer3.W.set_value(rng.normal(size=(8, 10)))
errors['lenet relu batch_norm dropout'] = check_grad(
    net.train_negative_log_likelihood(y), net.params, givens={x: images, y: labels},
    n_entries=5, epsilon=1e-5)
print(json.dumps(errors))
'''


def test_every_new_layer_passes_check_grad_in_float64(tmp_path):
    """Every activation, batch norm and dropout (its mask frozen), in the MLP and LeNet."""
    completed = subprocess.run(
        [sys.executable, '-c', GRADIENT_CHECK], capture_output=True, text=True, timeout=900,
        cwd=tmp_path, env=add_worker_compile_folder(dict(
            os.environ, THEANO_FLAGS='floatX=float64', PYTENSOR_FLAGS='floatX=float64')))
    assert completed.returncode == 0, completed.stderr[-3000:]
    errors = json.loads(completed.stdout.strip().splitlines()[-1])
    assert len(errors) == 6
    # (A ReLU kink between the two points of a difference could spoil one
    # entry; with steps of 1e-5 none does here.)
    bad = {name: max(values) for name, values in errors.items() if max(values) > 1e-5}
    assert not bad, bad


# --- whitening and augmentation ---

def test_whitening_gives_identity_covariance_on_the_training_split():
    rng = numpy.random.RandomState(0)
    # Correlated data with two dead directions (like the digits' border pixels).
    mixing = rng.normal(size=(6, 8))
    data = rng.normal(size=(2000, 6)) @ mixing + 3.0
    for kind, n_kept in (('pca', 6), ('zca', 8)):
        mean, transform = preprocessing.fit_whitening(data, kind, epsilon=0.0)
        assert transform.shape == (8, n_kept)
        whitened = (data - mean) @ transform
        covariance = numpy.cov(whitened, rowvar=False, bias=True)
        rank = numpy.linalg.matrix_rank(covariance, tol=1e-3)
        assert rank == 6
        eigenvalues = numpy.linalg.eigvalsh(covariance)
        numpy.testing.assert_allclose(eigenvalues[-6:], 1, rtol=2e-3)
        if kind == 'pca':
            numpy.testing.assert_allclose(covariance, numpy.eye(6), atol=2e-3)
    # epsilon shrinks the faint directions: variance lambda / (lambda + epsilon)
    mean, transform = preprocessing.fit_whitening(data, 'pca', epsilon=1.0)
    assert numpy.var((data - mean) @ transform, axis=0).max() < 1


def test_shift_moves_each_image_by_its_draw_and_fills_with_background():
    image = numpy.zeros((1, 28 * 28), dtype=floatX)
    image[0, 10 * 28 + 12] = 1.0                      # one pixel at (10, 12)

    class Draws:         # window offsets (0, 3) in the padded image: moved by (+2, -1)
        @staticmethod
        def randint(low, high, size):
            return numpy.array([[0], [3]])
    shifted = preprocessing.shift_images(image, Draws(), max_shift=2).reshape(28, 28)
    assert shifted.sum() == 1 and shifted[12, 11] == 1


def test_flip_mirrors_about_half_of_the_images():
    images = numpy.arange(400 * 784, dtype=floatX).reshape(400, 784)
    flipped = preprocessing.flip_images(images, numpy.random.RandomState(0))
    mirrored = (flipped.reshape(-1, 28, 28) == images.reshape(-1, 28, 28)[:, :, ::-1]).all((1, 2))
    unchanged = (flipped == images).all(axis=1)
    assert (mirrored | unchanged).all() and 150 < mirrored.sum() < 250


def test_each_epoch_gets_its_own_shuffled_augmented_set_the_same_on_every_run():
    from dltutorials.data_loading import shared_dataset, shared_storage

    images = numpy.random.RandomState(0).rand(50, 784).astype(floatX)
    labels = numpy.arange(50) % 10
    train_set = shared_dataset((images, labels))
    prepare = preprocessing.data_of_each_epoch(train_set, seed=5, shuffle=True,
                                               augmentations=['shift'])
    seen = []
    for epoch in (1, 2, 1):
        prepare(epoch)
        seen.append((train_set[0].get_value().copy(), shared_storage(train_set[1]).get_value()))
    assert not numpy.array_equal(seen[0][0], seen[1][0])
    numpy.testing.assert_array_equal(seen[0][0], seen[2][0])   # epoch 1 again: the same
    assert sorted(seen[1][1]) == sorted(labels)                # the same examples, reordered
    assert not numpy.array_equal(seen[1][1], labels)
    assert preprocessing.data_of_each_epoch(train_set, 5) is None


# --- the options as a user meets them ---

def run_script(script, *args, cwd):
    return subprocess.run([sys.executable, str(CODE_DIR / script)] + list(args),
                          capture_output=True, text=True, timeout=600, cwd=cwd)


def test_overfit_reaches_zero_training_error_and_writes_no_model(tmp_path):
    completed = run_script('mlp.py', '--overfit', '100', '--dataset', str(SAMPLE_DATA),
                           '--learning-rate', '0.1', '--n-epochs', '60', '--no-plot',
                           '--output-dir', str(tmp_path / 'out'), cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert ('overfit: the training error on 100 examples reached 0 in epoch'
            in completed.stderr.splitlines()[-1])
    assert not (tmp_path / 'out' / 'mlp.npz').exists()


def test_a_model_with_every_trick_saves_and_loads_with_its_statistics(tmp_path):
    import dltutorials
    from dltutorials.mlp import train_mlp
    from dltutorials.support.runs import run_options

    with run_options(output_dir=tmp_path, quick=True, plot=False):
        result = train_mlp(dataset=str(SAMPLE_DATA), batch_size=50, n_hidden=[20, 10],
                           optimizer='adam', learning_rate=0.001, activation='elu',
                           init='he_normal', dropout=0.2, batch_norm=True, max_norm=3.0,
                           whiten='zca', shuffle=True, augment=['shift', 'flip'],
                           verbose=False)
    trained = result['model'].network
    loaded = dltutorials.load_model(result['model_file'])
    for saved, restored in zip(trained.statistics, loaded.network.statistics):
        numpy.testing.assert_array_equal(saved.get_value(), restored.get_value())
    assert trained.statistics[0].get_value().any()           # the whitening's mean, fitted
    images = numpy.random.RandomState(0).rand(30, 784).astype(floatX)
    numpy.testing.assert_array_equal(result['model'].predict(images), loaded.predict(images))


def test_a_bad_trick_name_is_one_line_and_exit_2(tmp_path):
    completed = run_script('mlp.py', '--optimizer', 'adamw', '--quick', cwd=tmp_path)
    assert completed.returncode == 2
    assert "argument --optimizer: must be one of sgd, momentum" in completed.stderr
    from dltutorials.mlp import train_mlp
    from dltutorials.support.errors import HyperparameterError
    with pytest.raises(HyperparameterError, match="batch_norm must be True or False, got 1"):
        train_mlp(batch_norm=1)
    with pytest.raises(HyperparameterError, match="augment must be a list of names"):
        train_mlp(augment=['rotate'])
    assert train_mlp.rules['augment'].check('augment', 'shift') == ['shift']   # one name alone
    with pytest.raises(HyperparameterError, match="overfit 9000 is more than the 6000 training"):
        train_mlp(overfit=9000, dataset=str(SAMPLE_DATA))
