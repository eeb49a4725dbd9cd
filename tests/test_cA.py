"""The contractive autoencoder: the Jacobian and its norm, the cost, training, the CLI."""
import subprocess
import sys

import numpy
import pytest

from dltutorials.support.engine import T, theano

from conftest import REPO, make_digits
from dltutorials import cA as cA_module
from dltutorials.cA import build_cA_function, cA, main, squared_jacobian_norms
from dltutorials.dA import dA
from dltutorials.data_loading import shared_dataset
from dltutorials.support.models import load_model

floatX = theano.config.floatX


def small_cA(n_visible=7, n_hidden=4, seed=0):
    ca = cA(numpy.random.RandomState(seed), n_visible=n_visible, n_hidden=n_hidden)
    # Non-zero biases, so that nothing below holds by symmetry alone.
    ca.b.set_value(numpy.random.RandomState(seed + 1).normal(0, 1, n_hidden).astype(floatX))
    ca.b_prime.set_value(numpy.random.RandomState(seed + 2).normal(0, 1, n_visible)
                         .astype(floatX))
    return ca


def sigmoid(a):
    return 1 / (1 + numpy.exp(-a))


def test_the_original_signature_and_parameters():
    ca = cA(numpy.random.RandomState(0))      # the original's defaults: 784 -> 100
    assert (ca.n_visible, ca.n_hidden, ca.n_batchsize) == (784, 100, 1)
    assert [p.get_value().shape for p in ca.params] == [(784, 100), (100,), (784,)]
    assert isinstance(ca, dA) and repr(ca) == 'cA(n_visible=784, n_hidden=100)'
    shared_W = theano.shared(numpy.ones((5, 3), dtype=floatX))
    tied = cA(numpy.random.RandomState(0), input=T.matrix('x'), n_visible=5, n_hidden=3,
              n_batchsize=10, W=shared_W)
    assert tied.W is shared_W and tied.n_batchsize == 10


def test_the_jacobian_and_its_closed_form_norm_equal_what_theano_differentiates():
    ca = small_cA()
    x = T.vector('x')
    hidden = ca.get_hidden_values(x.dimshuffle('x', 0))          # one example, (1, n_hidden)
    true_jacobian = theano.function([x], theano.gradient.jacobian(hidden[0], x))   # (h, v)
    ours = theano.function([x], [ca.get_jacobian(hidden, ca.W)[0],
                                 squared_jacobian_norms(hidden, ca.W)[0]])
    for example in numpy.random.RandomState(3).uniform(0, 1, size=(5, 7)).astype(floatX):
        expected = true_jacobian(example)
        jacobian, squared_norm = ours(example)
        numpy.testing.assert_allclose(jacobian, expected.T, rtol=1e-5, atol=1e-7)
        numpy.testing.assert_allclose(squared_norm, numpy.sum(expected ** 2), rtol=1e-5)


def test_the_cost_is_the_cross_entropy_plus_lambda_times_the_mean_squared_norm():
    ca = small_cA()
    images = numpy.random.RandomState(4).uniform(0, 1, size=(6, 7)).astype(floatX)
    cost, _ = ca.get_cost_updates(contraction_level=0.37, learning_rate=0.1)
    got_cost, got_rec, got_jacob = theano.function([ca.x], [cost, ca.L_rec, ca.L_jacob])(images)

    W, b, c = (p.get_value().astype(numpy.float64) for p in ca.params)
    h = sigmoid(images @ W + b)
    z = sigmoid(h @ W.T + c)
    cross_entropy = -numpy.sum(images * numpy.log(z) + (1 - images) * numpy.log(1 - z), axis=1)
    jacobians = (h * (1 - h))[:, None, :] * W[None, :, :]          # loops written out
    squared_norms = numpy.array([numpy.sum(j ** 2) for j in jacobians])
    numpy.testing.assert_allclose(got_rec, cross_entropy, rtol=1e-5)
    numpy.testing.assert_allclose(got_jacob, squared_norms.mean(), rtol=1e-5)
    numpy.testing.assert_allclose(got_cost, cross_entropy.mean() + 0.37 * squared_norms.mean(),
                                  rtol=1e-5)
    # A true division: the original's // would have made the penalty whole.
    assert got_jacob != numpy.floor(got_jacob)


def test_the_gradient_of_the_cost_matches_finite_differences():
    ca = small_cA(n_visible=5, n_hidden=3)
    images = numpy.random.RandomState(5).uniform(0, 1, size=(4, 5))
    W0, b0, c0 = (p.get_value().astype(numpy.float64) for p in ca.params)

    def cost_of(W, b, c):
        x = T.constant(images)
        model = cA(numpy.random.RandomState(0), input=x, n_visible=5, n_hidden=3, W=W, bhid=b,
                   bvis=c)
        return model.get_cost_updates(contraction_level=0.5, learning_rate=0.1)[0]

    theano.gradient.verify_grad(cost_of, [W0, b0, c0], rng=numpy.random.RandomState(6),
                                eps=1e-6, abs_tol=1e-5, rel_tol=1e-5)


def train_on_fake_digits(contraction_level, epochs=5, n_hidden=30):
    images, _ = make_digits(400, seed=1)
    train_x = shared_dataset((images, numpy.zeros(400, dtype='int64')))[0]
    ca = cA(numpy.random.RandomState(2), n_hidden=n_hidden)
    train_fn = build_cA_function(ca, train_x, batch_size=20, contraction_level=contraction_level,
                                 learning_rate=0.05)
    history = [numpy.mean([train_fn(i) for i in range(20)], axis=0) for _ in range(epochs)]
    return numpy.array(history)        # (epochs, [cost, reconstruction, Jacobian norm])


def test_training_lowers_the_cost_and_the_penalty_lowers_the_jacobian_norm():
    contractive = train_on_fake_digits(contraction_level=1.0)
    plain = train_on_fake_digits(contraction_level=0.0)
    assert contractive[-1, 0] < 0.9 * contractive[0, 0]
    assert plain[-1, 1] < plain[0, 1]
    # Same start, same data: the penalty's only effect is a flatter code.
    assert contractive[-1, 2] < 0.7 * plain[-1, 2]
    assert contractive[-1, 1] > plain[-1, 1]         # paid for in reconstruction


def test_the_tutorial_reports_each_epoch_averaged_over_all_its_minibatches(tmp_path):
    result = cA_module.test_cA(training_epochs=2,
                               dataset=str(REPO / 'data' / 'mnist_sample.pkl.gz'),
                               batch_size=500, output_folder=str(tmp_path), n_hidden=20,
                               verbose=False)
    assert len(result['costs']) == len(result['jacobian_norms']) == 2
    assert result['costs'][1] < result['costs'][0]
    for cost, rec, norm in zip(result['costs'], result['reconstruction_costs'],
                               result['jacobian_norms']):
        # cost = rec + 0.1 * E[norm^2] >= rec + 0.1 * E[norm]^2 (Jensen), from epoch means
        assert cost >= rec + 0.1 * norm ** 2 * 0.999
    model = load_model(tmp_path / 'cA.npz')
    assert repr(model.network) == 'cA(n_visible=784, n_hidden=20)'
    numpy.testing.assert_array_equal(model.network.W.get_value(),
                                     result['model'].network.W.get_value())
    assert (tmp_path / 'cae_filters.png').exists()


def run_script(*arguments, cwd):
    return subprocess.run([sys.executable, str(REPO / 'code' / 'cA.py')] + list(arguments),
                          capture_output=True, text=True, timeout=600, cwd=str(cwd))


@pytest.mark.parametrize('arguments, message', [
    (['--contraction-level', '-0.1'], 'argument --contraction-level: must be a number >= 0'),
    (['--evaluate', 'missing.npz'], 'missing.npz'),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, arguments, message):
    done = run_script(*arguments, cwd=tmp_path)
    assert done.returncode == 2 and 'Traceback' not in done.stderr
    assert message in done.stderr.strip().splitlines()[-1]


def test_evaluate_measures_a_cA_and_a_dA_and_refuses_other_models(tmp_path):
    sample = str(REPO / 'data' / 'mnist_sample.pkl.gz')
    for script, extra in (('cA', []), ('dA', ['--corruption-levels', '0.3']),
                          ('logistic_sgd', [])):
        done = subprocess.run([sys.executable, str(REPO / 'code' / (script + '.py')), '--quick',
                               '--no-plot', '--dataset', sample, '--output-dir', str(tmp_path)]
                              + extra, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
    done = run_script('--evaluate', str(tmp_path / 'cA.npz'),
                      str(tmp_path / 'dA_corruption_30.npz'), '--dataset', sample, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0].split()[:3] == ['model', '(1000', 'test']
    assert [line.split()[0] for line in lines[1:]] == [str(tmp_path / 'cA.npz'),
                                                       str(tmp_path / 'dA_corruption_30.npz')]
    assert all(float(line.split()[2]) > 0 for line in lines[1:])
    refused = run_script('--evaluate', str(tmp_path / 'logistic_sgd.npz'), '--dataset', sample,
                         cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines()[-1].endswith(
        'holds a LogisticRegression, not an autoencoder (a cA or a dA)')


def test_main_trains_quickly_and_writes_the_model(tmp_path):
    sample = str(REPO / 'data' / 'mnist_sample.pkl.gz')
    assert main(['--quick', '--dataset', sample, '--output-dir', str(tmp_path),
                 '--n-hidden', '10']) == 0
    assert load_model(tmp_path / 'cA.npz').meta['contraction_level'] == 0.1
