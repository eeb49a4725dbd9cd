"""The denoising autoencoder: corruption, tied weights, cost and gradients, training, the CLI."""
import numpy
import pytest

from dltutorials.support.engine import T, change_flags, theano

from conftest import make_digits
from dltutorials import dA as dA_module
from dltutorials.dA import build_dA_function, dA, load_dA, main, train_dA
from dltutorials.data_loading import load_data
from dltutorials.support.errors import HyperparameterError

floatX = theano.config.floatX


def small_dA(n_visible=12, n_hidden=5, **kwargs):
    return dA(numpy.random.RandomState(0), n_visible=n_visible, n_hidden=n_hidden, **kwargs)


def test_symbolic_input_follows_floatx_and_parameters_have_their_shapes():
    da = small_dA()
    assert da.x.dtype == floatX and da.x.ndim == 2
    assert [p.get_value().shape for p in da.params] == [(12, 5), (5,), (12,)]
    assert da.params == [da.W, da.b, da.b_prime]
    bound = 4 * numpy.sqrt(6.0 / 17)
    assert numpy.abs(da.W.get_value()).max() <= bound
    assert repr(da) == 'dA(n_visible=12, n_hidden=5)'


def test_corruption_zero_leaves_the_input_unchanged_and_c_zeroes_about_c():
    da = small_dA(n_visible=784)
    level = T.scalar('level')
    corrupt = theano.function([da.x, level], da.get_corrupted_input(da.x, level))
    ones = numpy.ones((1000, 784), dtype=floatX)
    values = numpy.random.RandomState(1).uniform(0.1, 1, size=(50, 784)).astype(floatX)
    numpy.testing.assert_array_equal(corrupt(values, 0.0), values)
    assert da.get_corrupted_input(da.x, 0) is da.x           # no random draw at all
    for c in (0.1, 0.3, 0.7):
        zeroed = numpy.mean(corrupt(ones, c) == 0)
        assert abs(zeroed - c) < 0.01                       # 784,000 draws: sd 0.0005
    first, second = corrupt(ones, 0.5), corrupt(ones, 0.5)
    assert not numpy.array_equal(first, second)             # a new mask at every call
    kept = corrupt(values, 0.3)
    assert kept.dtype == floatX
    numpy.testing.assert_array_equal(kept[kept != 0], values[kept != 0])


def test_weights_are_tied():
    da = small_dA()
    assert da.W_prime.owner.inputs[0] is da.W
    new_W = numpy.arange(60, dtype=floatX).reshape(12, 5)
    da.W.set_value(new_W)
    numpy.testing.assert_array_equal(da.W_prime.eval(), new_W.T)
    given = theano.shared(numpy.zeros((12, 5), dtype=floatX))
    assert small_dA(W=given).W is given


def test_cost_is_the_mean_cross_entropy_and_its_gradient_matches_finite_differences():
    with change_flags(floatX='float64'):
        da = small_dA()
        rng = numpy.random.RandomState(2)
        da.b.set_value(rng.normal(size=5))
        da.b_prime.set_value(rng.normal(size=12))
        x = rng.uniform(size=(4, 12))
        cost, updates = da.get_cost_updates(corruption_level=0.0, learning_rate=0.1)
        cost_fn = theano.function([da.x], cost)

        W, b, b_prime = (p.get_value() for p in da.params)
        sigmoid = lambda a: 1 / (1 + numpy.exp(-a))            # noqa: E731
        z = sigmoid(sigmoid(x @ W + b) @ W.T + b_prime)
        expected = -numpy.mean(numpy.sum(x * numpy.log(z) + (1 - x) * numpy.log(1 - z), axis=1))
        assert cost_fn(x) == pytest.approx(expected, rel=1e-10)

        grads = theano.function([da.x], T.grad(cost, da.params))(x)
        for param, grad in zip(da.params, grads):
            original = param.get_value()
            numeric = numpy.zeros_like(original)
            for index in numpy.ndindex(*original.shape):
                step = numpy.zeros_like(original)
                step[index] = 1e-6
                param.set_value(original + step)
                up = cost_fn(x)
                param.set_value(original - step)
                numeric[index] = (up - cost_fn(x)) / 2e-6
            param.set_value(original)
            numpy.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)
        assert list(updates) == da.params


@pytest.mark.parametrize('corruption_level', [0.0, 0.3])
def test_reconstruction_cost_falls_on_a_tiny_set(tiny_pkl, corruption_level):
    train_set_x = load_data(tiny_pkl)[0][0]
    da = dA(numpy.random.RandomState(0), n_visible=784, n_hidden=30)
    train_fn = build_dA_function(da, train_set_x, batch_size=20,
                                 corruption_level=corruption_level, learning_rate=0.1)
    first = numpy.mean([train_fn(i) for i in range(15)])
    for _ in range(10):
        last = numpy.mean([train_fn(i) for i in range(15)])
    assert numpy.isfinite(first) and last < 0.8 * first


def test_test_dA_writes_both_filter_images_into_a_new_folder(tiny_pkl, tmp_path):
    folder = tmp_path / 'plots' / 'dA'
    results = dA_module.test_dA(learning_rate=0.1, training_epochs=2, dataset=str(tiny_pkl),
                                batch_size=20, output_folder=str(folder), n_hidden=25)
    assert sorted(results) == [0.0, 0.3]
    for percent in (0, 30):
        image = folder / ('filters_corruption_%d.png' % percent)
        from PIL import Image
        assert Image.open(image).size == (10 * 29 - 1, 10 * 29 - 1)
    assert len(results[0.3]['costs']) == 2 and results[0.3]['costs'][1] < results[0.3]['costs'][0]
    # The saved model loads back into an identical dA.
    da = load_dA(results[0.3]['model_file'])
    assert (da.n_visible, da.n_hidden) == (784, 25)
    values = make_digits(5)[0].astype(floatX)
    code = theano.function([da.x], da.get_hidden_values(da.x))(values)
    assert code.shape == (5, 25)


@pytest.mark.parametrize('kwargs, message', [
    (dict(corruption_level=1.0), 'corruption_level'), (dict(corruption_level=-0.1), 'corruption'),
    (dict(learning_rate=0), 'learning_rate'), (dict(batch_size=301), 'larger than'),
    (dict(n_hidden=0), 'n_hidden'),
])
def test_nonsense_hyperparameters_are_refused(tiny_pkl, tmp_path, kwargs, message):
    with pytest.raises(HyperparameterError, match=message):
        train_dA(dataset=str(tiny_pkl), **kwargs)


def test_quick_mode_end_to_end_from_the_command_line(tiny_pkl, tmp_path, capsys):
    assert main(['--dataset', str(tiny_pkl), '--output-dir', str(tmp_path), '--quick',
                 '--corruption-levels', '0.5']) == 0
    assert 'Training dA_corruption_50, epoch 1, cost' in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ['dA_corruption_50.npz',
                                                          'filters_corruption_50.png']
    assert main(['--dataset', str(tiny_pkl), '--output-dir', str(tmp_path), '--evaluate',
                 '--corruption-levels', '0.5']) == 0
    assert 'dA_corruption_50.npz on the 100 test images' in capsys.readouterr().out
    for flags in (['--corruption-levels', '1'], ['--training-epochs', '0']):
        with pytest.raises(SystemExit) as stop:
            main(flags)
        assert stop.value.code == 2
    assert main(['--dataset', str(tmp_path / 'missing.pkl.gz'), '--quick']) == 2


def test_the_cost_stays_finite_when_the_reconstruction_saturates():
    # With z = sigmoid(a) rounded to exactly 0 or 1 in float32, -log(z) would
    # be infinite; the cost written from a stays exact.
    da = small_dA()
    da.b_prime.set_value(numpy.array([60.0, -60.0] * 6, dtype=floatX))
    x = numpy.tile(numpy.array([0.0, 1.0] * 6, dtype=floatX), (3, 1))
    cost, _ = da.get_cost_updates(0.0, 0.1)
    value = theano.function([da.x], cost)(x)
    h = 1 / (1 + numpy.exp(-(x @ da.W.get_value() + da.b.get_value())))
    a = h @ da.W.get_value().T + da.b_prime.get_value()
    expected = numpy.mean(numpy.sum(numpy.logaddexp(0, a) - x * a, axis=1))
    assert numpy.isfinite(value) and value == pytest.approx(expected, rel=1e-4)
    assert value > 6 * 55


def test_an_interrupted_training_is_saved_and_drawn_before_stopping(tiny_pkl, tmp_path,
                                                                     monkeypatch):
    from dltutorials.training import PretrainingResult
    monkeypatch.setattr(dA_module, 'pretrain_layers', lambda *args, **kwargs: PretrainingResult(
        costs=[[500.0]], seconds=[0.1], stopped_by='interrupted'))
    assert main(['--dataset', str(tiny_pkl), '--output-dir', str(tmp_path)]) == 130
    # Stopped in the first of the two runs: its model and filters are kept.
    assert sorted(p.name for p in tmp_path.iterdir()) == ['dA_corruption_0.npz',
                                                          'filters_corruption_0.png']
