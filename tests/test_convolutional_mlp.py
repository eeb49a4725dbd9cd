"""LeNet: the conv-pool layer against a numpy reference, gradients, training, save/load, CLI."""
import numpy
import pytest
from scipy.signal import correlate2d

from dltutorials.support.engine import T, change_flags, theano

from conftest import make_digits
from dltutorials import load_model
from dltutorials.convolutional_mlp import (LeNet5, LeNetConvPoolLayer, build_lenet_functions,
                                           evaluate_lenet5, load_lenet5, main)
from dltutorials.support.errors import HyperparameterError, ModelFileError
from dltutorials.logistic_sgd import load_data


def reference_conv_pool(images, W, b, pool=(2, 2)):
    """Numpy/scipy: true convolution (flipped filters, as Theano's conv2d), max-pool, tanh."""
    n, maps = images.shape[:2]
    k, _, fh, fw = W.shape
    out_h, out_w = images.shape[2] - fh + 1, images.shape[3] - fw + 1
    conv = numpy.zeros((n, k, out_h, out_w))
    for i in range(n):
        for j in range(k):
            for m in range(maps):
                conv[i, j] += correlate2d(images[i, m], W[j, m, ::-1, ::-1], mode='valid')
    ph, pw = pool
    trimmed = conv[:, :, :out_h // ph * ph, :out_w // pw * pw]
    pooled = trimmed.reshape(n, k, out_h // ph, ph, out_w // pw, pw).max(axis=(3, 5))
    return numpy.tanh(pooled + b[None, :, None, None])


def test_conv_pool_layer_matches_a_numpy_reference():
    rng = numpy.random.RandomState(0)
    images = rng.normal(size=(2, 3, 9, 9)).astype(theano.config.floatX)
    x = T.tensor4('x')
    layer = LeNetConvPoolLayer(rng, x, filter_shape=(4, 3, 3, 3), image_shape=(None, 3, 9, 9))
    layer.b.set_value(rng.normal(size=4).astype(theano.config.floatX))
    got = theano.function([x], layer.output)(images)
    assert got.shape == (2, 4, 3, 3)
    expected = reference_conv_pool(images.astype('float64'), layer.W.get_value(),
                                   layer.b.get_value())
    numpy.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_conv_pool_layer_initialisation_and_checks():
    rng = numpy.random.RandomState(0)
    layer = LeNetConvPoolLayer(rng, T.tensor4(), (20, 1, 5, 5), (500, 1, 28, 28))
    bound = numpy.sqrt(6.0 / (25 + 20 * 25 / 4))
    W = layer.W.get_value()
    assert W.shape == (20, 1, 5, 5) and W.dtype == theano.config.floatX
    assert -bound <= W.min() < -0.9 * bound and 0.9 * bound < W.max() <= bound
    assert 'filter_shape=(20, 1, 5, 5)' in repr(layer)
    with pytest.raises(ValueError, match=r'filter_shape\[1\] \(3 input feature maps\) must equal '
                                         r'image_shape\[1\] \(1 feature maps'):
        LeNetConvPoolLayer(rng, T.tensor4(), (20, 3, 5, 5), (500, 1, 28, 28))


def test_conv_pool_gradients_match_finite_differences():
    with change_flags(floatX='float64'):
        rng = numpy.random.RandomState(1)
        x = T.tensor4('x')
        layer = LeNetConvPoolLayer(rng, x, (2, 1, 3, 3), (None, 1, 6, 6))
        cost = (layer.output ** 2).sum()
        images = rng.normal(size=(2, 1, 6, 6))
        grad_W = theano.function([x], T.grad(cost, layer.W))(images)
        cost_fn = theano.function([x], cost)
        W0 = layer.W.get_value()
        eps = 1e-6
        for index in [(0, 0, 0, 0), (1, 0, 2, 1), (0, 0, 1, 2)]:
            step = numpy.zeros_like(W0)
            step[index] = eps
            layer.W.set_value(W0 + step)
            plus = cost_fn(images)
            layer.W.set_value(W0 - step)
            minus = cost_fn(images)
            assert grad_W[index] == pytest.approx((plus - minus) / (2 * eps), rel=1e-4)
        layer.W.set_value(W0)


def test_lenet_shapes_params_and_partial_batches():
    x = T.matrix('x')
    model = LeNet5(numpy.random.RandomState(0), x, nkerns=[4, 6])   # a list, as the original
    shapes = [p.get_value().shape for p in model.params]
    assert shapes == [(500, 10), (10,), (96, 500), (500,), (6, 4, 5, 5), (6,), (4, 1, 5, 5), (4,)]
    probabilities = theano.function([x], model.layer3.p_y_given_x)
    for n in (3, 7):   # no fixed batch size: a partial last minibatch works
        assert probabilities(numpy.zeros((n, 784), theano.config.floatX)).shape == (n, 10)
    assert repr(model) == 'LeNet5(nkerns=(4, 6), n_hidden=500, n_out=10)'



@pytest.mark.parametrize('bad', [(20,), (20, 0), (20, 50, 10), 20, (20, 5.5)])
def test_nonsense_numbers_of_filters_are_refused_before_the_data_is_read(bad):
    with pytest.raises(HyperparameterError, match='nkerns must be two positive integers'):
        evaluate_lenet5(nkerns=bad, dataset='no such file')


def test_training_lowers_the_cost(tiny_pkl):
    datasets = load_data(tiny_pkl)
    x, y = T.matrix('x'), T.ivector('y')
    model = LeNet5(numpy.random.RandomState(0), x, nkerns=(4, 6))
    train_fn, validate_fn, _ = build_lenet_functions(model, x, y, datasets, 50, 0.1)
    first = numpy.mean([train_fn(i) for i in range(6)])
    for _ in range(4):
        last = numpy.mean([train_fn(i) for i in range(6)])
    assert last < 0.5 * first
    assert validate_fn() < 0.2


def test_the_loaded_model_predicts_as_the_trained_one_and_mismatches_are_named(tiny_pkl,
                                                                              tmp_path):
    result = evaluate_lenet5(n_epochs=2, dataset=str(tiny_pkl), nkerns=(4, 6), batch_size=50)
    assert result['epochs'] == 2
    trained = result['model'].network
    images = make_digits(200, seed=7)[0].astype(theano.config.floatX)
    expected = theano.function([trained.input], trained.y_pred)(images)
    classifier, x = load_lenet5(tmp_path / 'convolutional_mlp.npz')
    assert classifier.nkerns == (4, 6)
    numpy.testing.assert_array_equal(theano.function([x], classifier.y_pred)(images), expected)
    numpy.testing.assert_array_equal(
        load_model(tmp_path / 'convolutional_mlp.npz').predict(images), expected)
    from dltutorials.support.model_files import save_params
    save_params(tmp_path / 'wrong.npz', classifier.params, model='LeNet5',
                architecture=dict(nkerns=[5, 6]))
    with pytest.raises(ModelFileError, match=r'has shape \(6, 4, 5, 5\) in the file, '
                                             r'\(6, 5, 5, 5\) in the model'):
        load_lenet5(tmp_path / 'wrong.npz')


def test_quick_mode_end_to_end_from_the_command_line(tiny_pkl, tmp_path, capsys):
    args = ['--dataset', str(tiny_pkl), '--output-dir', str(tmp_path), '--quick',
            '--nkerns', '4', '6', '--batch-size', '50']
    assert main(args) == 0
    assert 'epoch 1, minibatch 1/1, validation error' in capsys.readouterr().err
    assert (tmp_path / 'convolutional_mlp_curve.png').exists()
    assert main(args + ['--predict']) == 0
    assert 'Predicted values' in capsys.readouterr().out
    with pytest.raises(SystemExit) as stop:
        main(['--nkerns', '20'])          # two numbers needed
    assert stop.value.code == 2
    assert 'argument --nkerns: expected 2 arguments' in capsys.readouterr().err
