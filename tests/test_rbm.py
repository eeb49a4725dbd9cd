"""The RBM: its energy, CD and PCD against the exact gradient, log Z exact and by AIS, the script."""
import inspect
import itertools

import numpy
import pytest

from dltutorials.support.engine import T, theano

from conftest import make_digits
from dltutorials import load_model, rbm as rbm_module
from dltutorials.rbm import (RBM, ais_betas, ais_log_partition, base_rate_vbias,
                             build_rbm_function, exact_log_partition, load_rbm, log_likelihood,
                             main)
from dltutorials.support.errors import HyperparameterError

floatX = theano.config.floatX


def small_rbm(n_visible=6, n_hidden=3, seed=0, scale=1.0):
    """An RBM with random weights and biases of about ``scale``, and its numpy values."""
    rng = numpy.random.RandomState(seed)
    values = [rng.normal(0, scale, (n_visible, n_hidden)), rng.normal(0, scale, n_hidden),
              rng.normal(0, scale, n_visible)]
    shared = [theano.shared(value.astype(floatX)) for value in values]
    rbm = RBM(n_visible=n_visible, n_hidden=n_hidden, W=shared[0], hbias=shared[1],
              vbias=shared[2], numpy_rng=rng)
    return rbm, [shared_variable.get_value().astype(numpy.float64) for shared_variable in shared]


def all_binary_vectors(n):
    return numpy.array(list(itertools.product([0, 1], repeat=n)), dtype=numpy.float64)


def energy(v, h, W, hbias, vbias):
    """E(v, h) for every pair of rows: (n_v, n_h)."""
    return -(v @ vbias)[:, None] - (h @ hbias)[None, :] - v @ W @ h.T


def brute_force_log_z(W, hbias, vbias):
    v, h = all_binary_vectors(len(vbias)), all_binary_vectors(len(hbias))
    minus_e = -energy(v, h, W, hbias, vbias)
    top = minus_e.max()
    return top + numpy.log(numpy.exp(minus_e - top).sum())


def test_free_energy_is_minus_the_log_of_the_sum_over_hidden_configurations():
    rbm, (W, hbias, vbias) = small_rbm()
    v = numpy.random.RandomState(1).uniform(0, 1, (5, 6))
    computed = theano.function([rbm.input], rbm.free_energy(rbm.input))(v.astype(floatX))
    h = all_binary_vectors(3)
    minus_e = -energy(v, h, W, hbias, vbias)
    expected = -numpy.log(numpy.exp(minus_e).sum(axis=1))
    numpy.testing.assert_allclose(computed, expected, rtol=1e-4, atol=1e-4)


def test_the_conditionals_are_the_sigmoids_of_the_energy():
    rbm, (W, hbias, vbias) = small_rbm()
    v = all_binary_vectors(6)[::7]
    h_mean = theano.function([rbm.input], rbm.propup(rbm.input)[1])(v.astype(floatX))
    numpy.testing.assert_allclose(h_mean, 1 / (1 + numpy.exp(-(v @ W + hbias))), rtol=1e-5)
    hid = T.matrix('h')
    h = all_binary_vectors(3)
    v_mean = theano.function([hid], rbm.propdown(hid)[1])(h.astype(floatX))
    numpy.testing.assert_allclose(v_mean, 1 / (1 + numpy.exp(-(h @ W.T + vbias))), rtol=1e-5)
    # Samples are binary, in floatX, and follow the means.
    sample = theano.function([rbm.input], rbm.sample_h_given_v(rbm.input)[2])(
        numpy.tile(v[3:4], (20000, 1)).astype(floatX))
    assert sample.dtype == floatX and set(numpy.unique(sample)) <= {0.0, 1.0}
    numpy.testing.assert_allclose(sample.mean(axis=0), h_mean[3], atol=0.02)


def exact_gradients(W, hbias, vbias, data):
    """The gradient of the mean negative log-likelihood of ``data``, by enumeration."""
    v_all = all_binary_vectors(len(vbias))
    minus_free_energy = v_all @ vbias + numpy.logaddexp(0, v_all @ W + hbias).sum(axis=1)
    p_v = numpy.exp(minus_free_energy - minus_free_energy.max())
    p_v /= p_v.sum()

    def statistics(v, weights):
        h_mean = 1 / (1 + numpy.exp(-(v @ W + hbias)))
        return (v * weights[:, None]).T @ h_mean, weights @ h_mean, weights @ v

    data_terms = statistics(data, numpy.full(len(data), 1.0 / len(data)))
    model_terms = statistics(v_all, p_v)
    return [model - observed for observed, model in zip(data_terms, model_terms)]


@pytest.mark.parametrize('persistent', [False, True])
def test_a_long_gibbs_chain_gives_the_exact_log_likelihood_gradient(persistent):
    # With many Gibbs steps the chain's end is a sample of the model, so the
    # step moves the parameters by -lr times the gradient of the negative
    # log-likelihood (a sign error, or differentiating through the chain,
    # would show here).
    rbm, (W, hbias, vbias) = small_rbm(scale=0.7)
    data = all_binary_vectors(6)[[3, 17, 40, 63]]
    batch = numpy.repeat(data, 5000, axis=0)       # 20,000 chains: sampling error ~0.01
    train_set_x = theano.shared(batch.astype(floatX))
    train_fn = build_rbm_function(rbm, train_set_x, len(batch), learning_rate=1.0, k=30,
                                  persistent=persistent)
    before = [p.get_value().astype(numpy.float64) for p in rbm.params]
    if persistent:
        for _ in range(3):        # bring the persistent chains to the model (a step of lr 1
            train_fn(0)           # moves the parameters: put them back each time)
            for p, value in zip(rbm.params, before):
                p.set_value(value.astype(floatX))
    train_fn(0)
    step = [b - p.get_value() for b, p in zip(before, rbm.params)]
    for estimated, exact in zip(step, exact_gradients(W, hbias, vbias, data)):
        numpy.testing.assert_allclose(estimated, exact, atol=0.03)
    assert max(abs(g).max() for g in exact_gradients(W, hbias, vbias, data)) > 0.2


def test_one_step_of_cd_is_biased_where_the_long_chain_is_not():
    rbm, (W, hbias, vbias) = small_rbm(scale=1.5, seed=3)
    data = all_binary_vectors(6)[[0, 63]]
    batch = numpy.repeat(data, 10000, axis=0)
    train_fn = build_rbm_function(rbm, theano.shared(batch.astype(floatX)), len(batch),
                                  learning_rate=1.0, k=1, persistent=False)
    before = [p.get_value().astype(numpy.float64) for p in rbm.params]
    train_fn(0)
    step = before[0] - rbm.W.get_value()
    assert abs(step - exact_gradients(W, hbias, vbias, data)[0]).max() > 0.1


def test_pcd_chains_go_on_from_where_the_last_update_left_them():
    # Weights so strong that a chain stays where it is: v_i = h_i.  A PCD
    # step must start from the stored chain (not from the data) and store
    # where it ended.
    big = 30.0
    rbm = RBM(n_visible=2, n_hidden=2, W=theano.shared(numpy.eye(2, dtype=floatX) * big),
              hbias=theano.shared(numpy.full(2, -big / 2, dtype=floatX)),
              vbias=theano.shared(numpy.full(2, -big / 2, dtype=floatX)))
    chain = theano.shared(numpy.array([[1, 0]], dtype=floatX))
    cost, updates = rbm.get_cost_updates(lr=0.0, persistent=chain, k=3)
    assert chain in updates
    step = theano.function([rbm.input], cost, updates=updates)
    data = numpy.array([[0, 1]], dtype=floatX)
    for _ in range(3):
        step(data)
        numpy.testing.assert_array_equal(chain.get_value(), [[1, 0]])
    chain.set_value(numpy.array([[0, 1]], dtype=floatX))
    step(data)
    numpy.testing.assert_array_equal(chain.get_value(), [[0, 1]])


def test_the_pseudo_likelihood_cost_cycles_through_the_bits_to_the_exact_value():
    rbm, (W, hbias, vbias) = small_rbm()
    data = all_binary_vectors(6)[[5, 22, 51]]
    chain = theano.shared(numpy.zeros((3, 3), dtype=floatX))
    cost, updates = rbm.get_cost_updates(lr=0.0, persistent=chain, k=1)
    step = theano.function([rbm.input], cost, updates=updates)
    costs = [float(step(data.astype(floatX))) for _ in range(6)]

    def minus_free_energy(v):
        return v @ vbias + numpy.logaddexp(0, v @ W + hbias).sum(axis=1)

    # -log P(v_i | v_-i) = softplus(F(v) - F(v with bit i flipped)), summed over bits.
    exact = 0.0
    for i in range(6):
        flipped = data.copy()
        flipped[:, i] = 1 - flipped[:, i]
        exact += numpy.logaddexp(0, minus_free_energy(flipped) - minus_free_energy(data)).mean()
    # Each call uses one bit, times n_visible: their mean over a cycle is the sum.
    assert numpy.mean(costs) == pytest.approx(exact, rel=1e-4)
    assert len(set(numpy.round(costs, 4))) > 1


def test_the_reconstruction_cost_is_the_cross_entropy_of_p_v_given_h():
    rbm, (W, hbias, vbias) = small_rbm()
    x = numpy.random.RandomState(2).uniform(0, 1, (4, 6))
    h = numpy.random.RandomState(3).randint(0, 2, (4, 3)).astype(numpy.float64)
    pre_sigmoid = T.matrix('a')
    computed = theano.function([rbm.input, pre_sigmoid],
                               rbm.get_reconstruction_cost({}, pre_sigmoid))(
        x.astype(floatX), (h @ W.T + vbias).astype(floatX))
    p = 1 / (1 + numpy.exp(-(h @ W.T + vbias)))
    expected = -numpy.mean(numpy.sum(x * numpy.log(p) + (1 - x) * numpy.log(1 - p), axis=1))
    assert computed == pytest.approx(expected, rel=1e-4)


def test_the_exact_log_partition_function_equals_brute_force_over_v_and_h():
    _, (W, hbias, vbias) = small_rbm(n_visible=7, n_hidden=5, scale=1.2, seed=4)
    expected = brute_force_log_z(W, hbias, vbias)
    assert exact_log_partition(W, hbias, vbias) == pytest.approx(expected, abs=1e-10)
    assert exact_log_partition(W, hbias, vbias, chunk=3) == pytest.approx(expected, abs=1e-10)
    # and the log-likelihood is normalised: P(v) sums to 1.
    v_all = all_binary_vectors(7)
    log_p = [log_likelihood(W, hbias, vbias, v[None], expected) for v in v_all]
    assert numpy.exp(log_p).sum() == pytest.approx(1.0, abs=1e-10)


def test_softplus_matches_logaddexp_from_far_below_to_far_above_and_keeps_inf_and_nan():
    x = numpy.concatenate([numpy.linspace(-800, 800, 4001), [0.0, 1e-300, -1e-300]])
    expected = numpy.logaddexp(0, x)
    numpy.testing.assert_allclose(rbm_module._softplus(x), expected, rtol=4.5e-16, atol=1e-300)  # 2 ulp
    with numpy.errstate(invalid='ignore'):
        special = rbm_module._softplus(numpy.array([numpy.inf, -numpy.inf, numpy.nan]))
    assert special[0] == numpy.inf and special[1] == 0 and numpy.isnan(special[2])


def test_annealed_importance_sampling_agrees_with_the_exact_log_z():
    # An RBM of 40 visible and 12 hidden units with weights like a trained one's.
    rng = numpy.random.RandomState(5)
    W = rng.normal(0, 0.5, (40, 12))
    hbias, vbias = rng.normal(-1, 0.5, 12), rng.normal(-0.5, 1, 40)
    images = (rng.rand(300, 40) < 1 / (1 + numpy.exp(-vbias))).astype(numpy.float64)
    exact = exact_log_partition(W, hbias, vbias)
    estimate = ais_log_partition(W, hbias, vbias, base_rate_vbias(images), ais_betas(2000),
                                 n_runs=200, rng=numpy.random.RandomState(6))
    # Stated tolerance: 0.1 nats (here the spread is a few hundredths).
    assert estimate['log_z'] == pytest.approx(exact, abs=0.1)
    assert estimate['log_z_low'] <= estimate['log_z'] <= estimate['log_z_high']
    assert estimate['log_z_high'] - estimate['log_z_low'] < 0.3
    # With too few temperatures the estimate is poor and its spread says so.
    poor = ais_log_partition(W, hbias, vbias, base_rate_vbias(images), ais_betas(3), n_runs=200,
                             rng=numpy.random.RandomState(6))
    assert poor['log_z_high'] - poor['log_z_low'] > estimate['log_z_high'] - estimate['log_z_low']


def test_the_temperature_schedule_runs_from_0_to_1_in_salakhutdinov_and_murrays_steps():
    betas = ais_betas()
    assert len(betas) == 14501 and betas[0] == 0 and betas[-1] == 1
    assert numpy.all(numpy.diff(betas) > 0)
    assert numpy.diff(betas)[0] == pytest.approx(0.001)
    assert numpy.diff(betas)[-1] == pytest.approx(0.00001)


def test_rbm_learns_the_digits_and_reports_an_exact_log_likelihood(tiny_pkl, tmp_path):
    result = rbm_module.test_rbm(learning_rate=0.1, training_epochs=4, dataset=str(tiny_pkl),
                                 batch_size=10, n_chains=3, n_samples=2, n_hidden=12,
                                 output_folder=str(tmp_path / 'out'), plot_every=20)
    assert result['costs'][-1] < result['costs'][0]
    likelihood = result['log_likelihood']
    assert likelihood['method'] == 'exact'
    # Better than the untrained RBM (all pixels 50/50: 784 log 2 = 543 nats lost).
    assert -543 < likelihood['log_likelihood'] < 0
    assert result['samples'].shape == (2, 3, 784)
    out = tmp_path / 'out'
    assert sorted(p.name for p in out.iterdir()) == [
        'filters_at_epoch_1.png', 'filters_at_epoch_2.png', 'filters_at_epoch_3.png',
        'filters_at_epoch_4.png', 'rbm.npz', 'samples.png']
    # The saved model is the trained one: same parameters, same reconstructions.
    loaded = load_rbm(out / 'rbm.npz')
    for trained, saved in zip(result['model'].network.params, loaded.params):
        numpy.testing.assert_array_equal(trained.get_value(), saved.get_value())
    images = make_digits(20, seed=9)[0]
    numpy.testing.assert_allclose(load_model(out / 'rbm.npz').predict(images),
                                  result['model'].predict(images), rtol=1e-6)
    assert load_model(out / 'rbm.npz').meta['log_likelihood']['log_likelihood'] == \
        pytest.approx(likelihood['log_likelihood'])


def test_the_original_entry_point_keeps_its_signature():
    parameters = inspect.signature(rbm_module.test_rbm).parameters
    assert list(parameters)[:8] == ['learning_rate', 'training_epochs', 'dataset', 'batch_size',
                                    'n_chains', 'n_samples', 'output_folder', 'n_hidden']
    assert [parameters[name].default for name in list(parameters)[:8]] == [
        0.1, 15, 'mnist.pkl.gz', 20, 20, 10, 'rbm_plots', 500]
    assert list(inspect.signature(RBM).parameters) == [
        'input', 'n_visible', 'n_hidden', 'W', 'hbias', 'vbias', 'numpy_rng', 'theano_rng']
    assert list(inspect.signature(RBM.get_cost_updates).parameters) == [
        'self', 'lr', 'persistent', 'k']


@pytest.mark.parametrize('kwargs, message', [
    (dict(n_hidden=0), 'n_hidden'), (dict(k=0), 'k must be'), (dict(persistent=1), 'persistent'),
    (dict(batch_size=301), 'larger than'), (dict(learning_rate=-1), 'learning_rate'),
])
def test_nonsense_hyperparameters_are_refused(tiny_pkl, tmp_path, kwargs, message):
    with pytest.raises(HyperparameterError, match=message):
        rbm_module.test_rbm(dataset=str(tiny_pkl), output_folder=str(tmp_path), **kwargs)


def test_quick_mode_end_to_end_from_the_command_line(tiny_pkl, tmp_path, capsys):
    args = ['--dataset', str(tiny_pkl), '--output-dir', str(tmp_path), '--quick',
            '--n-hidden', '30', '--k', '1', '--no-persistent']
    assert main(args) == 0
    err = capsys.readouterr().err
    assert 'Training the RBM (CD-1), epoch 1, cost' in err
    assert 'Mean test log-likelihood: ' in err and 'AIS (10 runs, 100 temperatures)' in err
    assert (tmp_path / 'samples.png').exists() and (tmp_path / 'rbm.npz').exists()
    assert main(args + ['--predict']) == 0
    assert 'mean absolute reconstruction error' in capsys.readouterr().out
    assert main(args + ['--evaluate']) == 0
    assert 'mean reconstruction cross-entropy' in capsys.readouterr().out
    for flags in (['--k', '0'], ['--n-hidden', 'many'], ['--persistent', '1']):
        with pytest.raises(SystemExit) as stop:
            main(flags)
        assert stop.value.code == 2
