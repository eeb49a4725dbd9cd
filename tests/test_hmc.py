"""Hybrid Monte Carlo: the leapfrog, the Metropolis test, the adaptation, the chains' moments."""
import subprocess
import sys

import numpy
import pytest
import scipy.stats

from dltutorials.support.engine import MRG_RandomStreams, T, theano

from conftest import REPO
from dltutorials.hmc import (HMC_sampler, effective_sample_size, gaussian_energy_fn,
                             hamiltonian, hmc_updates, metropolis_hastings_accept, moment_errors,
                             simulate_dynamics)

floatX = theano.config.floatX


def test_effective_sample_size_of_an_ar1_process_follows_its_closed_form():
    # x_t = phi x_{t-1} + noise: ESS = N (1 - phi) / (1 + phi).
    rng = numpy.random.RandomState(0)
    n, n_chains = 20000, 4
    for phi in (0.0, 0.5, 0.9):
        draws = numpy.zeros((n, n_chains))
        draws[0] = rng.normal(size=n_chains) / numpy.sqrt(1 - phi ** 2)
        for t in range(1, n):
            draws[t] = phi * draws[t - 1] + rng.normal(size=n_chains)
        expected = n * n_chains * (1 - phi) / (1 + phi)
        assert abs(effective_sample_size(draws) / expected - 1) < 0.15, phi


def leapfrog_energy_error(stepsize, trajectory_time=2.0):
    """Mean |H(end) - H(start)| of 200 leapfrog trajectories on a 3-D correlated Gaussian."""
    cov = numpy.array([[1.0, 0.6, 0.2], [0.6, 1.0, 0.3], [0.2, 0.3, 1.0]])
    energy_fn = gaussian_energy_fn(numpy.zeros(3), cov)
    pos, vel = T.dmatrix('pos'), T.dmatrix('vel')
    n_steps = int(round(trajectory_time / stepsize))
    final_pos, final_vel = simulate_dynamics(pos, vel, stepsize, n_steps, energy_fn)
    change = theano.function([pos, vel], hamiltonian(final_pos, final_vel, energy_fn)
                             - hamiltonian(pos, vel, energy_fn))
    rng = numpy.random.RandomState(1)
    return numpy.abs(change(rng.normal(size=(200, 3)), rng.normal(size=(200, 3)))).mean()


def test_the_leapfrog_keeps_the_energy_to_second_order_in_the_step_size():
    coarse, fine = leapfrog_energy_error(0.1), leapfrog_energy_error(0.05)
    assert 0 < fine < coarse < 0.05
    assert 3.5 < coarse / fine < 4.5          # halving the step quarters the error


def test_the_metropolis_test_keeps_a_standard_normal_exactly():
    # Random-walk proposals x' = x + N(0, s^2) from x ~ N(0, 1), accepted with
    # min(1, exp(E(x) - E(x'))), E = x^2 / 2: the kept values are N(0, 1) again,
    # and the acceptance rate is (2 / pi) arctan(2 / s) (Gelman, Roberts and Gilks, 1996).
    n, s = 200000, 1.5
    rng = numpy.random.RandomState(2)
    x = rng.normal(size=n)
    proposal = x + s * rng.normal(size=n)
    energy_prev, energy_next = T.dvector('prev'), T.dvector('next')
    accept = theano.function([energy_prev, energy_next], metropolis_hastings_accept(
        energy_prev, energy_next, MRG_RandomStreams(3)))(x ** 2 / 2, proposal ** 2 / 2)
    kept = numpy.where(accept, proposal, x)
    rate = 2 / numpy.pi * numpy.arctan(2 / s)
    assert abs(accept.mean() - rate) < 4 * numpy.sqrt(rate * (1 - rate) / n)
    assert scipy.stats.kstest(kept, 'norm').pvalue > 0.001
    assert abs(kept.var() - 1) < 4 * numpy.sqrt(2 / n)
    # The same proposals all accepted are N(0, 1 + s^2): the checks above would see it.
    assert scipy.stats.kstest(proposal, 'norm').pvalue < 1e-10


def test_a_nan_proposal_is_never_accepted():
    prev, nxt = T.vector('prev'), T.vector('next')
    accept = theano.function([prev, nxt], metropolis_hastings_accept(prev, nxt,
                                                                     MRG_RandomStreams(4)))
    values = numpy.array([numpy.nan, numpy.inf, 1.0], dtype=floatX)
    assert list(accept(numpy.zeros(3, dtype=floatX), values)[:2]) == [False, False]


@pytest.mark.parametrize('average, expected_stepsize', [(0.95, 0.102), (0.5, 0.098)])
def test_the_step_size_follows_the_acceptance_rate_within_its_bounds(average, expected_stepsize):
    positions = theano.shared(numpy.zeros((2, 3), dtype=floatX))
    stepsize = theano.shared(numpy.asarray(0.1, dtype=floatX))
    rate = theano.shared(numpy.asarray(average, dtype=floatX))
    proposal = numpy.ones((2, 3), dtype=floatX)
    updates = hmc_updates(positions, stepsize, rate, final_pos=T.constant(proposal),
                          accept=T.constant(numpy.array([True, False])),
                          target_acceptance_rate=0.9, stepsize_inc=1.02, stepsize_dec=0.98,
                          stepsize_min=0.001, stepsize_max=0.25, avg_acceptance_slowness=0.9)
    theano.function([], [], updates=updates)()
    numpy.testing.assert_array_equal(positions.get_value(), [[1, 1, 1], [0, 0, 0]])
    assert stepsize.get_value() == pytest.approx(expected_stepsize, rel=1e-5)
    assert rate.get_value() == pytest.approx(0.9 * average + 0.1 * 0.5, rel=1e-5)
    stepsize.set_value(numpy.asarray(0.2499, dtype=floatX))
    rate.set_value(numpy.asarray(1.0, dtype=floatX))
    theano.function([], [], updates=updates)()
    assert stepsize.get_value() == pytest.approx(0.25)          # clipped at stepsize_max


def test_the_posterior_energy_is_logistic_regressions_likelihood_plus_the_prior():
    from dltutorials.hmc import logistic_posterior_energy
    from dltutorials.logistic_sgd import LogisticRegression
    rng = numpy.random.RandomState(6)
    n_chains, n_in, n_out, n = 3, 7, 4, 11
    x = theano.shared(rng.uniform(size=(n, n_in)).astype(floatX))
    y = theano.shared(rng.randint(0, n_out, n).astype('int64'))
    positions = T.matrix('positions')
    energy = theano.function([positions], logistic_posterior_energy(
        x, y, n_chains, n_in, n_out, prior_precision=0.5)(positions))
    values = rng.normal(0, 1, (n_chains, n_in * n_out + n_out)).astype(floatX)
    # Each chain's weights in the tutorial's own model, one chain at a time.
    theta = T.vector('theta')
    model = LogisticRegression(x, n_in, n_out, W=theta[:n_in * n_out].reshape((n_in, n_out)),
                               b=theta[n_in * n_out:])
    nll = theano.function([theta], n * model.negative_log_likelihood(y))
    expected = [nll(chain) + 0.25 * numpy.sum(chain.astype(numpy.float64) ** 2)
                for chain in values]
    numpy.testing.assert_allclose(energy(values), expected, rtol=1e-5)


def test_the_same_seed_draws_the_same_chains():
    energy_fn = gaussian_energy_fn(numpy.zeros(2, dtype=floatX), numpy.eye(2, dtype=floatX))

    def chains(seed):
        start = theano.shared(numpy.ones((3, 2), dtype=floatX))
        sampler = HMC_sampler.new_from_shared_positions(start, energy_fn, n_steps=5, seed=seed)
        return numpy.array([sampler.draw() for _ in range(20)])
    first = chains(7)
    numpy.testing.assert_array_equal(first, chains(7))
    assert not numpy.array_equal(first, chains(8))


# The original test_hmc.py's test, run as its users ran it: the modules from
# code/, its Gaussian (5-D, 3 chains, 1,000 draws after 1,000 of burn-in),
# its assertions; then, beyond it, the moments within Monte Carlo error.
ORIGINAL_TEST_HMC = '''
import sys
sys.path.insert(0, sys.argv[1])
from hmc import HMC_sampler, moment_errors, sampler_on_nd_gaussian

sampler = sampler_on_nd_gaussian(HMC_sampler.new_from_shared_positions, burnin=1000,
                                 n_samples=1000, dim=5)
assert abs(sampler.avg_acceptance_rate.get_value() - sampler.target_acceptance_rate) < .1
assert sampler.stepsize.get_value() >= sampler.stepsize_min
assert sampler.stepsize.get_value() <= sampler.stepsize_max
errors = moment_errors(sampler.samples, sampler.mu, sampler.cov)
print('z', errors['mean_z'], errors['cov_z'], errors['min_ess'])
'''


def test_the_original_test_hmc_passes_and_the_moments_are_within_monte_carlo_error():
    done = subprocess.run([sys.executable, '-c', ORIGINAL_TEST_HMC, str(REPO / 'code')],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    mean_z, cov_z, min_ess = map(float, done.stdout.split('z ')[-1].split())
    # 5 means and 15 covariances, each within 4 of its own standard error,
    # computed from the chains' effective sample size (not a fixed tolerance).
    assert mean_z < 4 and cov_z < 4
    assert min_ess > 100


def test_moment_errors_see_a_wrong_target():
    rng = numpy.random.RandomState(5)
    samples = rng.normal(size=(2000, 3, 2))
    right = moment_errors(samples, numpy.zeros(2), numpy.eye(2))
    assert right['mean_z'] < 4 and right['cov_z'] < 4
    assert abs(right['min_ess'] / 6000 - 1) < 0.15
    assert moment_errors(samples, numpy.full(2, 0.1), numpy.eye(2))['mean_z'] > 4
    assert moment_errors(samples, numpy.zeros(2), 1.2 * numpy.eye(2))['cov_z'] > 4


def run_script(*arguments, cwd):
    return subprocess.run([sys.executable, str(REPO / 'code' / 'hmc.py'), '--dataset',
                           str(REPO / 'data' / 'mnist_sample.pkl.gz')] + list(arguments),
                          capture_output=True, text=True, timeout=600, cwd=str(cwd))


@pytest.mark.parametrize('arguments, message', [
    (['--target', 'logistic', '--init-scale', '1e30', '--quick'],
     'the energy is not finite where chains 0, 1, 2, 3 start (inf, inf, inf, inf): start the '
     'chains where the density is positive (a smaller --init-scale)'),
    (['--n-samples', '0'], 'argument --n-samples: must be a positive integer, got 0'),
    (['--resume'], 'hmc.py keeps no checkpoints'),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, arguments, message):
    done = run_script(*arguments, cwd=tmp_path)
    assert done.returncode == 2 and 'Traceback' not in done.stderr, done.stderr[-2000:]
    assert message in done.stderr.strip().splitlines()[-1]


def test_the_script_samples_both_targets_and_draws_them(tmp_path):
    done = run_script('--quick', '--output-dir', str(tmp_path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert 'Gaussian (5-D, 3 chains): acceptance' in done.stderr
    assert 'logistic regression on 50 digits, 4 chains x 5 draws' in done.stderr
    saved = numpy.load(tmp_path / 'hmc_logistic_samples.npz')
    assert saved['samples'].shape == (5, 4, 7850)
    assert saved['stepsize'].shape == saved['acceptance'].shape == (10,)
    assert (tmp_path / 'hmc_gaussian.png').exists() and (tmp_path / 'hmc_logistic.png').exists()
