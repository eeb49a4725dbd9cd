"""Hybrid Monte Carlo: sampling a density by simulating a ball rolling on its energy.

To draw samples from :math:`p(x) \\propto e^{-E(x)}` when only :math:`E`
and its gradient are known, Hybrid (or Hamiltonian) Monte Carlo (Duane et
al., 1987; Neal, 2011) gives the position :math:`x` a velocity :math:`v`
and follows the dynamics of the Hamiltonian

.. math::

    H(x, v) = E(x) + K(v), \\qquad K(v) = \\tfrac{1}{2} \\sum_i v_i^2

for a while.  Each move draws a fresh velocity :math:`v \\sim N(0, I)`,
simulates ``n_steps`` leapfrog steps of size :math:`\\epsilon`,

.. math::

    v \\leftarrow v - \\tfrac{\\epsilon}{2} \\nabla E(x), \\quad
    x \\leftarrow x + \\epsilon v, \\quad
    v \\leftarrow v - \\tfrac{\\epsilon}{2} \\nabla E(x)

(the inner half steps merged into whole ones), and accepts the end point
with the Metropolis probability :math:`\\min(1, e^{H(x, v) - H(x', v')})`.
Exact dynamics would keep :math:`H` and accept every move; the leapfrog
keeps it up to :math:`O(\\epsilon^2)` and the test corrects the rest, so the
chain leaves :math:`p` invariant whatever the step size.  A long trajectory
crosses the density in one move, where a random walk would wander.

The sampler adapts its step size as it goes: larger while the (slowly
averaged) acceptance rate is above its target of 0.9, smaller below.

Run it::

    python code/hmc.py                       # a 5-D Gaussian, then the posterior of a
                                             # logistic regression on 500 digits
    python code/hmc.py --target gaussian --dim 10
    python code/hmc.py --quick               # smoke test: seconds

It writes ``hmc_gaussian.png`` and ``hmc_logistic.png`` (traces, step size
and acceptance rate) and ``hmc_logistic_samples.npz`` into ``--output-dir``.

References:

- S. Duane, A. D. Kennedy, B. J. Pendleton and D. Roweth, "Hybrid Monte
  Carlo", Physics Letters B 195(2), 1987
- R. M. Neal, "MCMC using Hamiltonian dynamics", Handbook of Markov Chain
  Monte Carlo, 2011
"""
import functools
import sys
import time

import numpy

# Importing dltutorials first sets the engine's defaults (BLAS, floatX) before it reads them.
from dltutorials.support import checks, command_line
from dltutorials.support.datasets import load_arrays
from dltutorials.support.errors import HyperparameterError
from dltutorials.support.runs import (current_run, entry_point, output_path, prepare_output_dir,
                                      run_options, tutorial_logger)

# Theano's names, from Theano or, on Python 3.12+, PyTensor (see dltutorials.support.engine).
from dltutorials.support.engine import MRG_RandomStreams, T, theano

__all__ = ['kinetic_energy', 'hamiltonian', 'metropolis_hastings_accept', 'simulate_dynamics',
           'hmc_move', 'hmc_updates', 'HMC_sampler', 'sampler_on_nd_gaussian',
           'effective_sample_size', 'moment_errors', 'logistic_posterior_energy',
           'test_hmc_sampling']

logger = tutorial_logger(__name__)


def sharedX(value, name):
    """A floatX shared scalar (the original's helper)."""
    return theano.shared(numpy.asarray(value, dtype=theano.config.floatX), name=name)


def kinetic_energy(vel):
    """K(v) = sum(v^2) / 2 of each chain: ``vel`` (n_chains, dim) -> (n_chains,)."""
    return 0.5 * (vel ** 2).sum(axis=1)


def hamiltonian(pos, vel, energy_fn):
    """H(x, v) = E(x) + K(v) of each chain, (n_chains,).

    ``energy_fn`` maps positions (n_chains, dim) to the energy of each, (n_chains,).
    """
    return energy_fn(pos) + kinetic_energy(vel)


def metropolis_hastings_accept(energy_prev, energy_next, s_rng):
    """True where a move from energy ``energy_prev`` to ``energy_next`` is accepted.

    Accepted with probability min(1, exp(energy_prev - energy_next)): a
    uniform draw u is compared with the ratio.  A proposal whose energy is
    NaN is never accepted (every comparison with NaN is false).
    """
    ediff = energy_prev - energy_next
    return (T.exp(ediff) - s_rng.uniform(size=energy_prev.shape)) >= 0


def simulate_dynamics(initial_pos, initial_vel, stepsize, n_steps, energy_fn):
    """Follow the leapfrog from ``(initial_pos, initial_vel)`` for ``n_steps`` steps.

    Returns ``(final_pos, final_vel)``, both of the positions' shape.  The
    first half step of the velocity and the last are taken outside the
    scan; inside it, each step is a whole velocity step and a position step.
    """
    def leapfrog(pos, vel, step):
        dE_dpos = T.grad(energy_fn(pos).sum(), pos)
        new_vel = vel - step * dE_dpos
        new_pos = pos + step * new_vel
        return [new_pos, new_vel]

    dE_dpos = T.grad(energy_fn(initial_pos).sum(), initial_pos)
    vel_half_step = initial_vel - 0.5 * stepsize * dE_dpos
    pos_full_step = initial_pos + stepsize * vel_half_step
    (all_pos, all_vel), scan_updates = theano.scan(
        leapfrog, outputs_info=[pos_full_step, vel_half_step], non_sequences=[stepsize],
        n_steps=n_steps - 1)
    final_pos = all_pos[-1]
    final_vel = all_vel[-1] - 0.5 * stepsize * T.grad(energy_fn(final_pos).sum(), final_pos)
    return final_pos, final_vel


def hmc_move(s_rng, positions, energy_fn, stepsize, n_steps):
    """One HMC move of every chain: returns ``(accept, final_pos)``.

    ``accept`` (n_chains,) says which chains take their proposal
    ``final_pos`` (the positions' shape); the velocities are drawn from
    ``s_rng``.
    """
    initial_vel = s_rng.normal(size=positions.shape, dtype=positions.dtype)
    final_pos, final_vel = simulate_dynamics(positions, initial_vel, stepsize, n_steps,
                                             energy_fn)
    accept = metropolis_hastings_accept(
        energy_prev=hamiltonian(positions, initial_vel, energy_fn),
        energy_next=hamiltonian(final_pos, final_vel, energy_fn), s_rng=s_rng)
    return accept, final_pos


def hmc_updates(positions, stepsize, avg_acceptance_rate, final_pos, accept,
                target_acceptance_rate, stepsize_inc, stepsize_dec, stepsize_min, stepsize_max,
                avg_acceptance_slowness):
    """The updates of one draw: the positions, the step size, the average acceptance rate.

    Returns a list of (shared variable, new value) pairs.  The step size
    grows by ``stepsize_inc`` while the average acceptance rate is above its
    target, shrinks by ``stepsize_dec`` otherwise, within [stepsize_min,
    stepsize_max]; the average follows the chains' acceptance with
    exponential forgetting (``avg_acceptance_slowness`` of it kept per draw).
    """
    accept_matrix = accept.dimshuffle(0, *(('x',) * (final_pos.ndim - 1)))
    new_positions = T.switch(accept_matrix, final_pos, positions)
    _new_stepsize = T.switch(avg_acceptance_rate > target_acceptance_rate,
                             stepsize * stepsize_inc, stepsize * stepsize_dec)
    new_stepsize = T.clip(_new_stepsize, stepsize_min, stepsize_max)
    new_acceptance_rate = (avg_acceptance_slowness * avg_acceptance_rate
                           + (1.0 - avg_acceptance_slowness)
                           * accept.mean(dtype=avg_acceptance_rate.dtype))
    return [(positions, new_positions),
            (stepsize, new_stepsize.astype(stepsize.dtype)),
            (avg_acceptance_rate, new_acceptance_rate.astype(avg_acceptance_rate.dtype))]


class HMC_sampler(object):
    """An HMC sampler of chains stored in a shared variable (see :meth:`new_from_shared_positions`).

    Attributes: ``positions`` (the shared chains), ``stepsize`` and
    ``avg_acceptance_rate`` (shared scalars, adapted at every draw),
    ``target_acceptance_rate``, ``stepsize_min``, ``stepsize_max``,
    ``s_rng`` and ``simulate`` (the compiled draw).
    """

    def __init__(self, **kwargs):
        self.__dict__.update(kwargs)

    @classmethod
    def new_from_shared_positions(cls, shared_positions, energy_fn, initial_stepsize=0.01,
                                  target_acceptance_rate=.9, n_steps=20, stepsize_dec=0.98,
                                  stepsize_min=0.001, stepsize_max=0.25, stepsize_inc=1.02,
                                  avg_acceptance_slowness=0.9, seed=12345):
        """Compile the draw of a sampler whose chains start at ``shared_positions``.

        ``shared_positions``: a shared (n_chains, dim) array, moved in place
        by every :meth:`draw`; ``energy_fn``: a function of a symbolic
        (n_chains, dim) matrix giving each chain's energy -log p(x) + const,
        (n_chains,).  ``seed`` seeds the velocities and the Metropolis draws.
        """
        stepsize = sharedX(initial_stepsize, 'hmc_stepsize')
        avg_acceptance_rate = sharedX(target_acceptance_rate, 'avg_acceptance_rate')
        s_rng = MRG_RandomStreams(seed)
        accept, final_pos = hmc_move(s_rng, shared_positions, energy_fn, stepsize, n_steps)
        simulate_updates = hmc_updates(
            shared_positions, stepsize, avg_acceptance_rate, final_pos=final_pos, accept=accept,
            target_acceptance_rate=target_acceptance_rate, stepsize_inc=stepsize_inc,
            stepsize_dec=stepsize_dec, stepsize_min=stepsize_min, stepsize_max=stepsize_max,
            avg_acceptance_slowness=avg_acceptance_slowness)
        simulate = theano.function([], [], updates=simulate_updates)
        return cls(positions=shared_positions, stepsize=stepsize, stepsize_min=stepsize_min,
                   stepsize_max=stepsize_max, avg_acceptance_rate=avg_acceptance_rate,
                   target_acceptance_rate=target_acceptance_rate, s_rng=s_rng,
                   _updates=simulate_updates, simulate=simulate)

    def draw(self, **kwargs):
        """Move every chain once; return a copy of the new positions (n_chains, dim)."""
        self.simulate()
        return self.positions.get_value(borrow=False)


# --------------------------------------------------------------------------
# Two targets: the original test's Gaussian, and a logistic regression's posterior
# --------------------------------------------------------------------------

def correlated_gaussian(dim, seed=123):
    """The original test's target: a mean in [0, 10)^dim and a covariance with unit diagonal.

    The off-diagonal terms are uniform in [0, 1), symmetrised.  Returns
    ``(mu, cov)``, floatX.
    """
    rng = numpy.random.RandomState(seed)
    mu = numpy.array(rng.rand(dim) * 10, dtype=theano.config.floatX)
    cov = numpy.array(rng.rand(dim, dim), dtype=theano.config.floatX)
    cov = (cov + cov.T) / 2.
    cov[numpy.arange(dim), numpy.arange(dim)] = 1.0
    return mu, cov


def gaussian_energy_fn(mu, cov):
    """E(x) = (x - mu)^T cov^-1 (x - mu) / 2 of each row of x."""
    cov_inv = numpy.linalg.inv(cov).astype(cov.dtype)

    def gaussian_energy(x):
        return 0.5 * (T.dot((x - mu), cov_inv) * (x - mu)).sum(axis=1)
    return gaussian_energy


def new_gaussian_sampler(sampler_cls, dim):
    """A sampler of :func:`correlated_gaussian` (dim): 3 chains, started as the original test did.

    The target is kept in ``sampler.mu`` and ``sampler.cov``.
    """
    batchsize = 3
    rng = numpy.random.RandomState(123)
    mu, cov = correlated_gaussian(dim, seed=123)
    rng.rand(dim * (dim + 1))                   # the draws correlated_gaussian made
    position = theano.shared(rng.randn(batchsize, dim).astype(theano.config.floatX))
    sampler = sampler_cls(position, gaussian_energy_fn(mu, cov), initial_stepsize=1e-3,
                          stepsize_max=0.5)
    sampler.mu, sampler.cov = mu, cov
    return sampler


def sampler_on_nd_gaussian(sampler_cls, burnin, n_samples, dim=10):
    """The original test: 3 chains on :func:`correlated_gaussian` (dim), burn in, then draw.

    ``sampler_cls`` is ``HMC_sampler.new_from_shared_positions`` (or a
    function of the same arguments).  Logs the target and the empirical
    mean and covariance, and the final step size and acceptance rate.
    Returns the sampler, with the kept draws in ``sampler.samples``
    (n_samples, 3, dim) and the target in ``sampler.mu``, ``sampler.cov``.
    """
    sampler = new_gaussian_sampler(sampler_cls, dim)
    for _ in range(burnin):
        sampler.draw()
    sampler.samples = numpy.asarray([sampler.draw() for _ in range(n_samples)])
    log_fit(sampler.samples, sampler.mu, sampler.cov)
    logger.info('final stepsize %.4f, final acceptance rate %.3f',
                sampler.stepsize.get_value(), sampler.avg_acceptance_rate.get_value())
    return sampler


def log_fit(samples, mu, cov):
    """Log the target's mean beside the draws', and the largest covariance difference."""
    samples = samples.reshape(-1, samples.shape[-1])
    logger.info('target mean:    %s', numpy.array2string(mu, precision=3))
    logger.info('empirical mean: %s', numpy.array2string(samples.mean(axis=0), precision=3))
    logger.info('largest covariance difference: %.3f', numpy.abs(numpy.cov(samples.T) - cov).max())


def logistic_posterior_energy(x, y, n_chains, n_in, n_out, prior_precision):
    """The energy of a logistic regression's parameters: -log p(W, b | x, y) + const.

    Each chain's position is ``W`` (n_in x n_out) and ``b`` (n_out) laid
    end to end, ``n_in * n_out + n_out`` values; the energy is the summed
    negative log-likelihood of the labels ``y`` of the images ``x`` under
    the softmax regression of :class:`~dltutorials.logistic_sgd.LogisticRegression`
    with those weights, plus a Gaussian prior, ``prior_precision * |theta|^2 / 2``.
    """
    def energy(positions):
        W = positions[:, :n_in * n_out].reshape((n_chains, n_in, n_out))
        # The chains' weights side by side, (n_in, n_chains * n_out): one
        # product gives every chain's scores (4 small products took twice as long).
        scores = T.dot(x, W.dimshuffle(1, 0, 2).reshape((n_in, n_chains * n_out)))
        scores = scores.reshape((x.shape[0], n_chains, n_out)) + positions[:, n_in * n_out:]
        # log softmax over each chain's classes, its largest score set aside first.
        top = T.max(scores, axis=2, keepdims=True)
        log_p = scores - top - T.log(T.sum(T.exp(scores - top), axis=2, keepdims=True))
        is_label = T.eq(y.dimshuffle(0, 'x'), T.arange(n_out)).astype(log_p.dtype)
        negative_log_likelihood = -T.sum(log_p * is_label.dimshuffle(0, 'x', 1), axis=(0, 2))
        return negative_log_likelihood + 0.5 * prior_precision * (positions ** 2).sum(axis=1)
    return energy


# --------------------------------------------------------------------------
# Measuring the chains
# --------------------------------------------------------------------------

def effective_sample_size(draws):
    """The effective number of independent draws in ``draws`` (n_draws, n_chains).

    n_draws * n_chains / (1 + 2 sum_t rho_t), with rho_t the lag-t
    autocorrelation averaged over the chains, summed in pairs while the
    pair sums stay positive (Geyer's initial positive sequence).
    """
    draws = numpy.asarray(draws, dtype=numpy.float64)
    n, n_chains = draws.shape
    centred = draws - draws.mean(axis=0)
    # All the lags at once through the FFT, zero-padded against wrapping.
    spectrum = numpy.fft.rfft(centred, n=2 * n, axis=0)
    autocovariance = numpy.fft.irfft(spectrum * numpy.conj(spectrum), axis=0)[:n] / n
    rho = (autocovariance / autocovariance[0]).mean(axis=1)
    total = 0.0
    for t in range(1, n - 1, 2):
        pair = rho[t] + rho[t + 1]
        if pair <= 0:
            break
        total += pair
    return n * n_chains / (1 + 2 * total)


def moment_errors(samples, mu, cov):
    """How far the draws' mean and covariance are from the target's, in Monte Carlo errors.

    ``samples`` (n_draws, n_chains, dim).  Each error is divided by its
    standard error: the draws' standard deviation over the square root of
    the effective sample size of the same quantity (x_i for a mean,
    (x_i - mu_i)(x_j - mu_j) for a covariance).  Returns a dict of the
    largest absolute z-scores and of the smallest effective sample size.
    """
    centred = samples - mu
    mean_z, cov_z, sizes = [], [], []
    dim = samples.shape[2]
    for i in range(dim):
        ess = effective_sample_size(samples[:, :, i])
        sizes.append(ess)
        mean_z.append((samples[:, :, i].mean() - mu[i]) / (samples[:, :, i].std() / ess ** .5))
        for j in range(i, dim):
            product = centred[:, :, i] * centred[:, :, j]
            ess_ij = effective_sample_size(product)
            cov_z.append((product.mean() - cov[i, j]) / (product.std() / ess_ij ** .5))
    return dict(mean_z=float(numpy.abs(mean_z).max()), cov_z=float(numpy.abs(cov_z).max()),
                min_ess=float(min(sizes)))


# --------------------------------------------------------------------------
# The script
# --------------------------------------------------------------------------

def run_chains(sampler, burnin, n_samples):
    """Burn in, then draw; returns the kept draws (n_samples, n_chains, dim) and the history.

    The history has the step size and the average acceptance rate after
    every draw, burn-in included (arrays of burnin + n_samples).
    """
    stepsizes, acceptance = [], []
    kept = []
    for draw in range(burnin + n_samples):
        positions = sampler.draw()
        stepsizes.append(float(sampler.stepsize.get_value()))
        acceptance.append(float(sampler.avg_acceptance_rate.get_value()))
        if draw >= burnin:
            kept.append(positions)
    return numpy.asarray(kept), dict(stepsize=numpy.array(stepsizes),
                                     acceptance=numpy.array(acceptance))


def check_start(energy_fn, positions):
    """Raise HyperparameterError unless every chain's energy is finite at ``positions``."""
    x = T.matrix('positions', dtype=positions.dtype)
    energies = theano.function([x], energy_fn(x))(positions)
    bad = numpy.flatnonzero(~numpy.isfinite(energies))
    if len(bad):
        raise HyperparameterError(
            'the energy is not finite where chain%s %s start%s (%s): start the chains where the '
            'density is positive (a smaller --init-scale)' % (
                's' if len(bad) > 1 else '', ', '.join(map(str, bad)),
                '' if len(bad) > 1 else 's', ', '.join('%g' % energies[k] for k in bad)))


def sample_gaussian(dim, burnin, n_samples, seed):
    """The original test's Gaussian, sampled and measured; returns a result dict."""
    sampler = new_gaussian_sampler(functools.partial(HMC_sampler.new_from_shared_positions,
                                                     seed=seed), dim)
    samples, history = run_chains(sampler, burnin, n_samples)
    log_fit(samples, sampler.mu, sampler.cov)
    errors = moment_errors(samples, sampler.mu, sampler.cov)
    logger.info('Gaussian (%d-D, %d chains): acceptance %.3f, step size %.4f; largest errors: '
                'mean %.2f, covariance %.2f Monte Carlo standard errors (smallest effective '
                'sample size %.0f of %d draws)', dim, samples.shape[1],
                history['acceptance'][-1], history['stepsize'][-1], errors['mean_z'],
                errors['cov_z'], errors['min_ess'], samples.shape[0] * samples.shape[1])
    return dict(samples=samples, history=history, mu=sampler.mu, cov=sampler.cov, **errors)


def sample_logistic_posterior(dataset, n_examples, n_chains, burnin, n_samples, prior_precision,
                              init_scale, seed):
    """HMC on a logistic regression's weights given ``n_examples`` training digits.

    Returns a result dict: the kept draws, the history, and the test error
    of the posterior's average prediction, of single draws, and of the
    maximum a posteriori weights (the same energy, minimised by L-BFGS).
    """
    import scipy.optimize

    (train_x, train_y), _, (test_x, test_y) = load_arrays(dataset)
    floatX = theano.config.floatX
    x = theano.shared(train_x[:n_examples].astype(floatX), name='x')
    y = theano.shared(train_y[:n_examples].astype('int64'), name='y')
    n_in, n_out = train_x.shape[1], 10
    energy_fn = logistic_posterior_energy(x, y, n_chains, n_in, n_out, prior_precision)
    start = (numpy.random.RandomState(seed).normal(0, init_scale, (n_chains, n_in * n_out + n_out))
             .astype(floatX))
    check_start(energy_fn, start)
    positions = theano.shared(start, name='positions')
    sampler = HMC_sampler.new_from_shared_positions(positions, energy_fn, seed=seed)
    samples, history = run_chains(sampler, burnin, n_samples)

    def probabilities(theta):
        logits = test_x @ theta[:n_in * n_out].reshape(n_in, n_out) + theta[n_in * n_out:]
        logits -= logits.max(axis=1, keepdims=True)
        p = numpy.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    flat = samples.reshape(-1, samples.shape[2]).astype(numpy.float64)
    # The posterior's prediction averages the probabilities of every kept draw.
    average = numpy.mean([probabilities(theta) for theta in flat[::max(1, len(flat) // 200)]],
                         axis=0)
    single = [numpy.mean(probabilities(theta).argmax(axis=1) != test_y) for theta in flat[-10:]]

    theta = T.vector('theta', dtype=floatX)
    one_chain = logistic_posterior_energy(x, y, 1, n_in, n_out, prior_precision)
    energy_and_grad = theano.function([theta], [one_chain(theta.dimshuffle('x', 0))[0],
                                                T.grad(one_chain(theta.dimshuffle('x', 0))[0],
                                                       theta)])
    optimum = scipy.optimize.minimize(
        lambda t: [numpy.float64(v) for v in energy_and_grad(t.astype(floatX))],
        numpy.zeros(n_in * n_out + n_out), jac=True, method='L-BFGS-B')
    result = dict(samples=samples, history=history,
                  average_error=float(numpy.mean(average.argmax(axis=1) != test_y)),
                  single_error=float(numpy.mean(single)),
                  map_error=float(numpy.mean(probabilities(optimum.x).argmax(axis=1) != test_y)),
                  n_test=len(test_y),
                  bias_ess=[effective_sample_size(samples[:, :, n_in * n_out + k])
                            for k in range(n_out)])
    logger.info('logistic regression on %d digits, %d chains x %d draws: acceptance %.3f, '
                'step size %.4f; test error (%d digits): posterior average %.2f %%, single '
                'draws %.2f %%, maximum a posteriori %.2f %%', n_examples, n_chains, n_samples,
                history['acceptance'][-1], history['stepsize'][-1], len(test_y),
                100 * result['average_error'], 100 * result['single_error'],
                100 * result['map_error'])
    logger.info('effective sample size of the %d biases: %.0f to %.0f of %d draws', n_out,
                min(result['bias_ess']), max(result['bias_ess']), n_samples * n_chains)
    return result


@entry_point(dim=checks.positive_int, burnin=checks.non_negative_int,
             n_samples=checks.positive_int, n_examples=checks.positive_int,
             n_chains=checks.positive_int, prior_precision=checks.positive,
             init_scale=checks.non_negative, seed=checks.seed,
             target=checks.Choice(('both', 'gaussian', 'logistic')))
def test_hmc_sampling(target='both', dim=5, burnin=1000, n_samples=1000,
                      dataset='mnist.pkl.gz', n_examples=500, n_chains=4, prior_precision=1.0,
                      init_scale=0.01, seed=123, verbose=True):
    """Sample the original test's Gaussian and a logistic regression's posterior with HMC.

    Parameters
    ----------
    target : str
        'gaussian', 'logistic' or 'both'.
    dim : int
        dimension of the Gaussian.
    burnin : int
        draws made before those kept (the step size adapts during them too).
    n_samples : int
        draws kept, per chain.
    dataset : str
        the digits of the logistic regression: a .pkl.gz file, a folder of
        IDX files, or a known name.
    n_examples : int
        training digits the posterior is conditioned on.
    n_chains : int
        chains of the logistic regression's sampler (the Gaussian's: 3, as
        the original).
    prior_precision : float
        the Gaussian prior's 1 / variance on each weight.
    init_scale : float
        standard deviation of the logistic chains' starting weights.
    seed : int
        seeds the chains.
    verbose : bool
        show the progress where no logging is set up (a notebook).

    Returns
    -------
    dict: ``gaussian`` and ``logistic``, the results of each target sampled.
    """
    prepare_output_dir()
    if current_run().quick:
        burnin, n_samples, n_examples = 5, 5, min(n_examples, 50)
    results = {}
    start = time.perf_counter()
    if target in ('both', 'gaussian'):
        results['gaussian'] = sample_gaussian(dim, burnin, n_samples, seed)
        plot_chains(results['gaussian'], burnin, 'hmc_gaussian.png',
                    '%d-D Gaussian, 3 chains' % dim)
    if target in ('both', 'logistic'):
        results['logistic'] = sample_logistic_posterior(
            dataset, n_examples, n_chains, burnin, n_samples, prior_precision, init_scale, seed)
        numpy.savez(output_path('hmc_logistic_samples.npz'),
                    samples=results['logistic']['samples'],
                    **results['logistic']['history'])
        # Weights the digits inform: the centre pixel's for class 0, and class 0's bias.
        plot_chains(results['logistic'], burnin, 'hmc_logistic.png',
                    'logistic regression on %d digits, %d chains' % (n_examples, n_chains),
                    coordinates={'W[centre pixel, 0]': (14 * 28 + 14) * 10, 'b[0]': 784 * 10})
    logger.info('HMC ran for %.1f s', time.perf_counter() - start)
    return results


def plot_chains(result, burnin, name, title, coordinates=None):
    """Draw the traces of two coordinates and the step size and acceptance rate by draw."""
    if not current_run().plot:
        return None
    from dltutorials.support.plotting import plot_hmc_chains
    return plot_hmc_chains(result['samples'], result['history'], burnin, output_path(name),
                           title, coordinates)


def main(argv=None):
    parser = command_line.build_parser(test_hmc_sampling, __doc__.strip().split('\n')[0],
                                       saved_model_flags=False)
    arguments = vars(parser.parse_args(argv))
    options = {name: arguments.pop(name) for name in ('output_dir', 'quick', 'no_plot', 'quiet',
                                                      'resume')}

    def task():
        if options['resume']:
            raise HyperparameterError('hmc.py keeps no checkpoints (a run takes a minute): run it '
                                      'again without --resume')
        with run_options(output_dir=options['output_dir'], quick=options['quick'],
                         plot=not options['no_plot'], script=True):
            return test_hmc_sampling(**arguments)
    return command_line.run(task, options['quiet'])


if __name__ == '__main__':
    sys.exit(main())
