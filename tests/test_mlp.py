"""The multilayer perceptron: layers, gradients, training, save/load/predict, the CLI."""
import numpy
import pytest

from dltutorials.support.engine import T, change_flags, theano

from conftest import make_digits
from dltutorials.support.errors import HyperparameterError, ModelFileError
from dltutorials import load_model, mlp
from dltutorials.layers import glorot_uniform
from dltutorials.logistic_sgd import load_data
from dltutorials.mlp import MLP, HiddenLayer, build_mlp_functions, load_mlp, main, train_mlp


def numerical_gradient(f, value, eps=1e-6):
    grad = numpy.zeros_like(value)
    for index in numpy.ndindex(*value.shape):
        step = numpy.zeros_like(value)
        step[index] = eps
        grad[index] = (f(value + step) - f(value - step)) / (2 * eps)
    return grad


def test_glorot_ranges():
    rng = numpy.random.RandomState(0)
    W = glorot_uniform(rng, 300, 100)
    bound = numpy.sqrt(6.0 / 400)
    assert W.dtype == theano.config.floatX and W.shape == (300, 100)
    assert -bound <= W.min() < -0.9 * bound and 0.9 * bound < W.max() <= bound
    assert numpy.abs(glorot_uniform(rng, 300, 100, T.nnet.sigmoid)).max() > 3.5 * bound


def test_hidden_layer_shapes_and_linear_option():
    x = T.matrix('x')
    rng = numpy.random.RandomState(0)
    layer = HiddenLayer(rng, x, 6, 4)
    out = theano.function([x], layer.output)(numpy.ones((3, 6), theano.config.floatX))
    assert out.shape == (3, 4) and numpy.all(numpy.abs(out) < 1)
    assert layer.params == [layer.W, layer.b] and layer.input is x
    assert repr(layer) == 'HiddenLayer(n_in=6, n_out=4, activation=tanh)'
    linear = HiddenLayer(rng, x, 6, 4, activation=None)
    value = numpy.random.RandomState(1).normal(size=(3, 6)).astype(theano.config.floatX)
    numpy.testing.assert_allclose(theano.function([x], linear.output)(value),
                                  value @ linear.W.get_value(), rtol=1e-5)


@pytest.mark.parametrize('n_hidden', [5, [5, 4]])
def test_mlp_gradients_match_finite_differences(n_hidden):
    with change_flags(floatX='float64'):
        rng = numpy.random.RandomState(0)
        x, y = T.matrix('x'), T.ivector('y')
        model = MLP(rng, x, n_in=6, n_hidden=n_hidden, n_out=3)
        cost = model.negative_log_likelihood(y) + 0.01 * model.L1 + 0.01 * model.L2_sqr
        x_value = rng.normal(size=(4, 6))
        y_value = numpy.array([0, 2, 1, 2], dtype='int32')
        grads = theano.function([x, y], T.grad(cost, model.params))(x_value, y_value)
        cost_fn = theano.function([x, y], cost)
        for param, grad in zip(model.params, grads):
            original = param.get_value()

            def cost_at(value):
                param.set_value(value)
                return cost_fn(x_value, y_value)

            numpy.testing.assert_allclose(grad, numerical_gradient(cost_at, original),
                                          rtol=1e-4, atol=1e-7)
            param.set_value(original)


def test_mlp_structure_and_regularisers():
    x = T.matrix('x')
    model = MLP(numpy.random.RandomState(0), x, n_in=784, n_hidden=500, n_out=10)
    assert model.hiddenLayer is model.hidden_layers[0]
    assert [p.get_value().shape for p in model.params] == [(784, 500), (500,), (500, 10), (10,)]
    assert repr(model) == 'MLP(n_in=784, n_hidden=500, n_out=10)'
    W1 = model.hiddenLayer.W.get_value()
    assert float(model.L1.eval()) == pytest.approx(numpy.abs(W1).sum(), rel=1e-4)
    assert float(model.L2_sqr.eval()) == pytest.approx((W1 ** 2).sum(), rel=1e-4)
    deep = MLP(numpy.random.RandomState(0), x, n_in=784, n_hidden=[30, 20], n_out=10)
    assert [p.get_value().shape for p in deep.params][::2] == [(784, 30), (30, 20), (20, 10)]
    assert repr(deep) == 'MLP(n_in=784, n_hidden=[30, 20], n_out=10)'


@pytest.mark.parametrize('bad', [0, [], [10, -1], 'many', 5.0, True])
def test_nonsense_layer_sizes_are_refused_before_the_data_is_read(bad):
    with pytest.raises(HyperparameterError, match='n_hidden must be a positive integer or a '
                                                  'non-empty list of positive integers'):
        train_mlp(n_hidden=bad, dataset='no such file')


def test_numpy_numbers_are_accepted(tiny_pkl):
    result = train_mlp(learning_rate=numpy.float32(0.1), n_epochs=numpy.int64(1),
                       batch_size=numpy.int64(20), n_hidden=numpy.array([20, 10]),
                       dataset=str(tiny_pkl))
    assert result['epochs'] == 1 and result['model'].network.n_hidden == [20, 10]


def test_training_lowers_the_cost(tiny_pkl):
    datasets = load_data(tiny_pkl)
    x, y = T.matrix('x'), T.ivector('y')
    model = MLP(numpy.random.RandomState(0), x, 784, 20, 10)
    train_fn, validate_fn, _ = build_mlp_functions(model, x, y, datasets, 20, 0.1, 0.0, 1e-4)
    first = numpy.mean([train_fn(i) for i in range(15)])
    for _ in range(5):
        last = numpy.mean([train_fn(i) for i in range(15)])
    assert last < 0.5 * first
    assert validate_fn() < 0.1


def test_the_loaded_model_predicts_as_the_trained_one(tiny_pkl, tmp_path):
    result = mlp.test_mlp(learning_rate=0.2, n_epochs=5, dataset=str(tiny_pkl), batch_size=20,
                          n_hidden=[20, 10])
    assert result['test_error'] < 0.2
    trained = result['model'].network
    images = make_digits(200, seed=7)[0].astype(theano.config.floatX)
    expected = theano.function([trained.input], trained.y_pred)(images)
    classifier, x = load_mlp(tmp_path / 'mlp.npz')
    assert classifier.n_hidden == [20, 10]
    numpy.testing.assert_array_equal(theano.function([x], classifier.y_pred)(images), expected)
    numpy.testing.assert_array_equal(load_model(tmp_path / 'mlp.npz').predict(images), expected)


def test_a_file_of_another_architecture_is_refused(tmp_path):
    from dltutorials.support.model_files import save_params
    classifier = MLP(numpy.random.RandomState(0), T.matrix(), 784, 30, 10)
    save_params(tmp_path / 'm.npz', classifier.params, model='MLP',
                architecture=dict(n_in=784, n_hidden=[40], n_out=10))
    with pytest.raises(ModelFileError, match=r'parameter 0 \(W\) has shape \(784, 30\) in the '
                                             r'file, \(784, 40\) in the model'):
        load_mlp(tmp_path / 'm.npz')


@pytest.mark.parametrize('kwargs, message', [
    (dict(L2_reg=-1.0), 'L2_reg'), (dict(L1_reg=float('nan')), 'L1_reg'),
    (dict(learning_rate=0), 'learning_rate'), (dict(batch_size=301), 'larger than'),
])
def test_nonsense_hyperparameters_are_refused(tiny_pkl, tmp_path, kwargs, message):
    with pytest.raises(HyperparameterError, match=message):
        train_mlp(dataset=str(tiny_pkl), **kwargs)


def test_quick_mode_end_to_end_from_the_command_line(tiny_pkl, tmp_path, capsys):
    args = ['--dataset', str(tiny_pkl), '--output-dir', str(tmp_path), '--quick']
    assert main(args) == 0
    err = capsys.readouterr().err
    assert 'epoch 1, minibatch 1/1, validation error' in err
    assert (tmp_path / 'mlp.npz').exists() and (tmp_path / 'mlp_curve.png').exists()
    assert main(args + ['--predict']) == 0


def test_command_line_rejects_bad_flags(capsys):
    for flags in (['--L2-reg', '-1'], ['--n-hidden', '0'], ['--learning-rate', 'x']):
        with pytest.raises(SystemExit) as stop:
            main(flags)
        assert stop.value.code == 2
