"""Restricted Boltzmann machines: a probability model of the images, trained by sampling from it.

An RBM has binary visible units :math:`v` (the pixels) and binary hidden
units :math:`h`, connected only across the two layers.  It gives every
configuration an energy and a probability

.. math::

    E(v, h) = -b^T v - c^T h - v^T W h, \\qquad
    P(v, h) = \\frac{e^{-E(v, h)}}{Z}, \\qquad Z = \\sum_{v, h} e^{-E(v, h)}

with visible biases :math:`b`, hidden biases :math:`c` and weights
:math:`W`.  Given one layer, the units of the other are independent:
:math:`P(h_j = 1 \\mid v) = \\sigma(c_j + v^T W_{\\cdot j})` and
:math:`P(v_i = 1 \\mid h) = \\sigma(b_i + W_{i \\cdot} h)`.  Summing out
:math:`h` gives the *free energy* :math:`F(v) = -\\log \\sum_h e^{-E(v, h)}
= -b^T v - \\sum_j \\mathrm{softplus}(c_j + v^T W_{\\cdot j})`, so that
:math:`P(v) = e^{-F(v)} / Z`, and the gradient of the negative log-likelihood

.. math::

    -\\frac{\\partial \\log P(v)}{\\partial \\theta}
    = \\frac{\\partial F(v)}{\\partial \\theta}
    - \\mathbb{E}_{\\tilde{v} \\sim P}\\left[\\frac{\\partial F(\\tilde{v})}{\\partial \\theta}\\right]

The expectation over the model is estimated with the end of a short Gibbs
chain: started from the data (contrastive divergence, CD-k) or from where
the previous update left it (persistent CD, PCD-k).

Run it::

    python code/rbm.py                      # PCD-15, 15 epochs, 500 hidden units
    python code/rbm.py --k 1 --no-persistent     # CD-1, for comparison
    python code/rbm.py --quick              # smoke test: seconds

It writes ``filters_at_epoch_<n>.png``, ``samples.png`` and ``rbm.npz`` into
``--output-dir`` and prints the test set's log-likelihood: exact for at most
20 hidden units, by annealed importance sampling above.

References:

- G. E. Hinton, "Training Products of Experts by Minimizing Contrastive
  Divergence", Neural Computation 14, 2002
- T. Tieleman, "Training Restricted Boltzmann Machines using Approximations
  to the Likelihood Gradient", ICML 2008
- R. Salakhutdinov and I. Murray, "On the Quantitative Analysis of Deep
  Belief Networks", ICML 2008
"""
import sys

import numpy
from scipy.special import logsumexp

# Importing dltutorials first sets the engine's defaults (BLAS, floatX) before it reads them.
from dltutorials.data_loading import minibatch
from dltutorials.layers import glorot_uniform
from dltutorials.support import checks, command_line
from dltutorials.support.checkpoints import checkpoint_for
from dltutorials.support.models import Model, load_network, save_model
from dltutorials.support.runs import (current_run, entry_point, epochs, output_path, run_options,
                                      save_filters, save_samples, tutorial_logger)
from dltutorials.training import load_training_data, pretrain_layers
from dltutorials.updates import sgd

# Theano's names, from Theano or, on Python 3.12+, PyTensor (see dltutorials.support.engine).
from dltutorials.support.engine import MRG_RandomStreams, T, theano

__all__ = ['RBM', 'build_rbm_function', 'sample_from_rbm', 'exact_log_partition',
           'base_rate_vbias', 'ais_betas', 'ais_log_partition', 'log_likelihood',
           'rbm_log_likelihood', 'test_rbm', 'load_rbm']

logger = tutorial_logger(__name__)

MODEL_FILE = 'rbm.npz'


class RBM(object):
    """A restricted Boltzmann machine with binary visible and hidden units.

    Parameters
    ----------
    input : Theano matrix (n_examples, n_visible), optional
        the symbolic input; a new floatX matrix if not given.  (Stacked in a
        DBN, it is the output of the layer below.)
    n_visible, n_hidden : int
        numbers of visible and hidden units.
    W : shared variable (n_visible, n_hidden), optional
        weights, for instance shared with an MLP layer; default uniform in
        +-4 sqrt(6 / (n_hidden + n_visible)).
    hbias : shared variable (n_hidden,), optional
        hidden biases c; default zeros.
    vbias : shared variable (n_visible,), optional
        visible biases b; default zeros.
    numpy_rng : numpy.random.RandomState, optional
        draws the initial weights (seed 1234 if not given).
    theano_rng : MRG_RandomStreams, optional
        draws the Gibbs samples.

    Attributes ``input``, ``W``, ``hbias``, ``vbias``, ``params`` = [W, hbias, vbias].
    """

    def __init__(self, input=None, n_visible=784, n_hidden=500, W=None, hbias=None, vbias=None,
                 numpy_rng=None, theano_rng=None):
        self.n_visible, self.n_hidden = n_visible, n_hidden
        if numpy_rng is None:
            numpy_rng = numpy.random.RandomState(1234)
        if theano_rng is None:
            theano_rng = MRG_RandomStreams(numpy_rng.randint(2 ** 30))
        floatX = theano.config.floatX
        if W is None:
            # The sigmoid's Glorot range, as the MLP layer it may become.
            W = theano.shared(glorot_uniform(numpy_rng, n_visible, n_hidden, T.nnet.sigmoid),
                              name='W', borrow=True)
        if hbias is None:
            hbias = theano.shared(numpy.zeros(n_hidden, dtype=floatX), name='hbias', borrow=True)
        if vbias is None:
            vbias = theano.shared(numpy.zeros(n_visible, dtype=floatX), name='vbias', borrow=True)
        self.input = T.matrix('input') if input is None else input
        self.W, self.hbias, self.vbias = W, hbias, vbias
        self.theano_rng = theano_rng
        self.params = [self.W, self.hbias, self.vbias]

    def free_energy(self, v_sample):
        """F(v) = -b.v - sum_j softplus(c_j + (v W)_j): one value per row, (n_examples,)."""
        hidden_input = T.dot(v_sample, self.W) + self.hbias
        return -T.dot(v_sample, self.vbias) - T.sum(T.nnet.softplus(hidden_input), axis=1)

    def propup(self, vis):
        """[input of the hidden sigmoids, P(h = 1 | vis)], each (n_examples, n_hidden)."""
        pre_sigmoid_activation = T.dot(vis, self.W) + self.hbias
        return [pre_sigmoid_activation, T.nnet.sigmoid(pre_sigmoid_activation)]

    def sample_h_given_v(self, v0_sample):
        """[pre-sigmoid, P(h = 1 | v), a sample of h]: h drawn given ``v0_sample``."""
        pre_sigmoid_h1, h1_mean = self.propup(v0_sample)
        # dtype floatX: the sample feeds the next dot product without a cast.
        h1_sample = self.theano_rng.binomial(size=h1_mean.shape, n=1, p=h1_mean,
                                             dtype=theano.config.floatX)
        return [pre_sigmoid_h1, h1_mean, h1_sample]

    def propdown(self, hid):
        """[input of the visible sigmoids, P(v = 1 | hid)], each (n_examples, n_visible)."""
        pre_sigmoid_activation = T.dot(hid, self.W.T) + self.vbias
        return [pre_sigmoid_activation, T.nnet.sigmoid(pre_sigmoid_activation)]

    def sample_v_given_h(self, h0_sample):
        """[pre-sigmoid, P(v = 1 | h), a sample of v]: v drawn given ``h0_sample``."""
        pre_sigmoid_v1, v1_mean = self.propdown(h0_sample)
        v1_sample = self.theano_rng.binomial(size=v1_mean.shape, n=1, p=v1_mean,
                                             dtype=theano.config.floatX)
        return [pre_sigmoid_v1, v1_mean, v1_sample]

    def gibbs_hvh(self, h0_sample):
        """One Gibbs step from the hidden layer: v given h, then h given that v (six outputs)."""
        pre_sigmoid_v1, v1_mean, v1_sample = self.sample_v_given_h(h0_sample)
        pre_sigmoid_h1, h1_mean, h1_sample = self.sample_h_given_v(v1_sample)
        return [pre_sigmoid_v1, v1_mean, v1_sample, pre_sigmoid_h1, h1_mean, h1_sample]

    def gibbs_vhv(self, v0_sample):
        """One Gibbs step from the visible layer: h given v, then v given that h (six outputs)."""
        pre_sigmoid_h1, h1_mean, h1_sample = self.sample_h_given_v(v0_sample)
        pre_sigmoid_v1, v1_mean, v1_sample = self.sample_v_given_h(h1_sample)
        return [pre_sigmoid_h1, h1_mean, h1_sample, pre_sigmoid_v1, v1_mean, v1_sample]

    def get_cost_updates(self, lr=0.1, persistent=None, k=1):
        """Return ``(monitoring_cost, updates)`` of one CD-k step, or PCD-k with ``persistent``.

        ``persistent``: None for CD-k (the chain starts from the hidden
        sample of the minibatch), or a shared (n_chains, n_hidden) matrix of
        hidden states for PCD-k (the chain goes on from it; the updates store
        where it ended).  The Gibbs chain runs ``k`` steps in a ``scan``.
        ``updates`` move ``params`` by ``lr`` down the estimated gradient of
        the negative log-likelihood and advance the random streams.
        ``monitoring_cost``: the pseudo-likelihood cost for PCD, the
        reconstruction cross-entropy for CD.
        """
        pre_sigmoid_ph, ph_mean, ph_sample = self.sample_h_given_v(self.input)
        chain_start = ph_sample if persistent is None else persistent
        # outputs_info: only the last output (the hidden sample) is fed back.
        (
            [pre_sigmoid_nvs, nv_means, nv_samples, pre_sigmoid_nhs, nh_means, nh_samples],
            updates,
        ) = theano.scan(self.gibbs_hvh, outputs_info=[None, None, None, None, None, chain_start],
                        n_steps=k, name='gibbs_hvh')
        chain_end = nv_samples[-1]
        # The gradient of this cost is the estimate above: dF(data)/dtheta minus
        # dF(chain end)/dtheta.  The chain end is a sample, not a function of
        # theta to differentiate through: it is held constant.  (The cost's
        # value is not the log-likelihood; it is not reported.)
        cost = T.mean(self.free_energy(self.input)) - T.mean(self.free_energy(chain_end))
        gparams = T.grad(cost, self.params, consider_constant=[chain_end])
        updates.update(sgd(gparams, self.params, T.cast(lr, dtype=theano.config.floatX)))
        if persistent is not None:
            updates[persistent] = nh_samples[-1]
            monitoring_cost = self.get_pseudo_likelihood_cost(updates)
        else:
            monitoring_cost = self.get_reconstruction_cost(updates, pre_sigmoid_nvs[-1])
        return monitoring_cost, updates

    def get_pseudo_likelihood_cost(self, updates):
        """The negative log pseudo-likelihood of the (rounded) input, estimated from one bit.

        log PL(v) = sum over pixels i of log P(pixel i | the others), and
        that probability is sigmoid(F(v with bit i flipped) - F(v)).
        Flipping one bit ``i`` per call and multiplying by n_visible
        estimates the sum; ``i`` cycles over the pixels (a shared index,
        advanced in ``updates``).  Mean over the minibatch; it falls as the
        model improves.  (The original returned the log pseudo-likelihood,
        this number's negative.)
        """
        bit_i_idx = theano.shared(value=0, name='bit_i_idx')
        xi = T.round(self.input)
        fe_xi = self.free_energy(xi)
        xi_flip = T.set_subtensor(xi[:, bit_i_idx], 1 - xi[:, bit_i_idx])
        fe_xi_flip = self.free_energy(xi_flip)
        # -log(sigmoid(x)) = softplus(-x): finite in float32 however large x.
        cost = T.mean(self.n_visible * T.nnet.softplus(fe_xi - fe_xi_flip))
        updates[bit_i_idx] = (bit_i_idx + 1) % self.n_visible
        return cost

    def get_reconstruction_cost(self, updates, pre_sigmoid_nv):
        """The cross-entropy between the input and P(v | h) of the chain's last step.

        ``pre_sigmoid_nv``: that step's visible pre-sigmoid activation.  Mean
        over the minibatch of a sum over pixels.  ``updates`` is unused
        (kept for the original's signature).
        """
        # -[x log(sigmoid(a)) + (1 - x) log(1 - sigmoid(a))] = softplus(a) - x a,
        # computed from a: no log(0) where a sigmoid saturates.
        return T.mean(T.sum(T.nnet.softplus(pre_sigmoid_nv) - self.input * pre_sigmoid_nv,
                            axis=1))

    # What a loaded model predicts with (see dltutorials.support.models.Model):
    # the mean-field reconstruction P(v | P(h | v)), as a dA's.
    def get_hidden_values(self, input):
        """P(h = 1 | input), (n_examples, n_hidden)."""
        return self.propup(input)[1]

    def get_reconstruction_activation(self, hidden):
        """The visible pre-sigmoid activation given ``hidden``, (n_examples, n_visible)."""
        return self.propdown(hidden)[0]

    def get_reconstructed_input(self, hidden):
        """P(v = 1 | hidden), (n_examples, n_visible)."""
        return self.propdown(hidden)[1]

    def __repr__(self):
        return 'RBM(n_visible=%d, n_hidden=%d)' % (self.n_visible, self.n_hidden)


def build_rbm_function(rbm, train_set_x, batch_size, learning_rate, k, persistent):
    """Compile one CD-k (or PCD-k) step of ``rbm`` on the shared training images.

    ``persistent``: True for PCD (a shared chain state of ``batch_size``
    chains, all hidden units off at first), False for CD.  Returns
    ``train_fn(index)``: trains on minibatch ``index`` and returns the
    monitoring cost.
    """
    index = T.lscalar('index')
    chain = None
    if persistent:
        chain = theano.shared(numpy.zeros((batch_size, rbm.n_hidden), dtype=theano.config.floatX),
                              name='persistent_chain', borrow=True)
    cost, updates = rbm.get_cost_updates(lr=learning_rate, persistent=chain, k=k)
    return theano.function([index], cost, updates=updates, name='train_rbm',
                           givens={rbm.input: minibatch(train_set_x, index, batch_size)})


def sample_from_rbm(rbm, start_images, n_samples, plot_every=1000):
    """Run one Gibbs chain from each of ``start_images``; keep a picture every ``plot_every`` steps.

    Returns an array (n_samples, n_chains, n_visible) of P(v = 1 | h) at
    steps plot_every, 2 plot_every, ... (the means look better than the
    binary samples they are drawn with).
    """
    chain = theano.shared(numpy.asarray(start_images, dtype=theano.config.floatX),
                          name='visible_chain')
    (
        [presig_hids, hid_mfs, hid_samples, presig_vis, vis_mfs, vis_samples],
        updates,
    ) = theano.scan(rbm.gibbs_vhv, outputs_info=[None, None, None, None, None, chain],
                    n_steps=plot_every, name='gibbs_vhv')
    updates[chain] = vis_samples[-1]
    sample_fn = theano.function([], vis_mfs[-1], updates=updates, name='sample_fn')
    return numpy.array([sample_fn() for _ in range(n_samples)])


# --------------------------------------------------------------------------
# The log-likelihood (numpy, float64)
# --------------------------------------------------------------------------

def _softplus(x):
    """log(1 + e^x) of an array, as max(x, 0) + log1p(e^-|x|): no overflow, one temporary.

    Twice as fast as ``numpy.logaddexp(0, x)`` (9.7 against 18 ns a float64
    here): exact log Z for 20 hidden units took 7.7-8.4 s instead of 15.5-16.1
    s, and AIS for 500 (100 runs, 2,072 temperatures) 7.5-7.6 s instead of
    11.6-12.9 s (twice each way, interleaved; the same log Z to all digits).
    """
    result = numpy.abs(x)
    numpy.negative(result, out=result)
    numpy.exp(result, out=result)
    numpy.log1p(result, out=result)
    result += numpy.maximum(x, 0)
    return result


def exact_log_partition(W, hbias, vbias, chunk=1024):
    """log Z of an RBM, exactly: a sum over all 2^n_hidden hidden configurations.

    Summing the visible units out analytically,
    Z = sum_h exp(c.h) prod_i (1 + exp(b_i + (W h)_i)).  Practical up to
    about 20 hidden units (a million terms).  ``W``: (n_visible, n_hidden).
    """
    W, hbias, vbias = (numpy.asarray(a, dtype=numpy.float64) for a in (W, hbias, vbias))
    n_hidden = len(hbias)
    partial_sums = []
    for start in range(0, 2 ** n_hidden, chunk):
        codes = numpy.arange(start, min(start + chunk, 2 ** n_hidden))
        h = ((codes[:, None] >> numpy.arange(n_hidden)) & 1).astype(numpy.float64)
        partial_sums.append(logsumexp(h @ hbias + _softplus(h @ W.T + vbias).sum(axis=1)))
    return logsumexp(numpy.array(partial_sums))


def base_rate_vbias(train_images, smoothing=0.05):
    """The visible biases of the AIS base model: each pixel's log-odds on the training images.

    Counts are smoothed (``smoothing`` pseudo-examples on and off) so that a
    pixel never on gets a finite bias.
    """
    images = numpy.asarray(train_images, dtype=numpy.float64)
    mean = (images.sum(axis=0) + smoothing) / (len(images) + 2 * smoothing)
    return numpy.log(mean) - numpy.log1p(-mean)


def ais_betas(n_betas=14500):
    """Inverse temperatures from 0 to 1: Salakhutdinov and Murray's schedule, scaled to ``n_betas``.

    Their 14,500: steps of 0.001 to 0.5, 0.0001 to 0.9, 0.00001 to 1 (about
    3 %, 28 % and 69 % of the steps).
    """
    n_first, n_second = max(1, round(n_betas * 500 / 14500)), max(1, round(n_betas * 4000 / 14500))
    n_third = max(1, n_betas - n_first - n_second)
    return numpy.concatenate([numpy.linspace(0, 0.5, n_first, endpoint=False),
                              numpy.linspace(0.5, 0.9, n_second, endpoint=False),
                              numpy.linspace(0.9, 1.0, n_third + 1)])


def ais_log_partition(W, hbias, vbias, base_vbias, betas, n_runs=100, rng=None):
    """Estimate log Z of an RBM by annealed importance sampling (Salakhutdinov and Murray, 2008).

    The runs start from samples of the base model (independent pixels with
    biases ``base_vbias``, no weights) and move through the models
    p_beta(v) proportional to exp((1 - beta) b_A.v + beta b.v) prod_j
    (1 + exp(beta (c_j + (v W)_j))), for ``betas`` from 0 to 1, one Gibbs
    step each.  Each run's importance weight is the product of the ratios
    p*(v) at beta over p*(v) at the previous beta, for the v of each step;
    their mean estimates Z / Z0, with log Z0 = sum(softplus(b_A)) +
    n_hidden log 2.

    Returns a dict: ``log_z`` (the estimate), ``log_z_low`` and
    ``log_z_high`` (log of the mean weight minus and plus three standard
    errors; -inf when the lower end is not positive), ``n_runs``,
    ``n_betas``.  The estimate of Z is unbiased; that of log Z, by Jensen,
    tends to be low, hence too high a log-likelihood: compare with care.
    """
    W, hbias, vbias, base_vbias = (numpy.asarray(a, dtype=numpy.float64)
                                   for a in (W, hbias, vbias, base_vbias))
    rng = numpy.random.RandomState(0) if rng is None else rng
    n_hidden = len(hbias)

    def bernoulli(odds_against):
        # A draw of P(1) = sigmoid(x) = 1 / (1 + e^-x), given e^-x, as u (1 + e^-x) < 1:
        # no division, and an e^-x that overflowed to inf gives 0 as it should.
        return (rng.rand(*odds_against.shape) * (1 + odds_against) < 1).astype(numpy.float64)

    v = bernoulli(numpy.tile(numpy.exp(-base_vbias), (n_runs, 1)))
    log_weights = numpy.zeros(n_runs)
    bias_change = vbias - base_vbias
    with numpy.errstate(over='ignore'):
        for previous, beta in zip(betas[:-1], betas[1:]):
            # log p*_beta(v) - log p*_previous(v); the hidden input serves the Gibbs step too.
            hidden_input = v @ W + hbias
            log_weights += ((beta - previous) * (v @ bias_change)
                            + (_softplus(beta * hidden_input)
                               - _softplus(previous * hidden_input)).sum(axis=1))
            # One Gibbs step that leaves p_beta invariant: h given v, then v given h.
            h = bernoulli(numpy.exp(-beta * hidden_input))
            v = bernoulli(numpy.exp(-(base_vbias + beta * (bias_change + h @ W.T))))
    log_z0 = _softplus(base_vbias).sum() + n_hidden * numpy.log(2)
    top = log_weights.max()
    weights = numpy.exp(log_weights - top)      # the weights over their largest
    mean, error = weights.mean(), 3 * weights.std() / numpy.sqrt(n_runs)
    return dict(log_z=log_z0 + top + numpy.log(mean),
                log_z_low=log_z0 + top + numpy.log(mean - error) if mean > error else -numpy.inf,
                log_z_high=log_z0 + top + numpy.log(mean + error),
                n_runs=n_runs, n_betas=len(betas))


def log_likelihood(W, hbias, vbias, images, log_z):
    """The mean log P(v) of the rows of ``images`` (binary) under an RBM with partition ``log_z``."""
    images, W, hbias, vbias = (numpy.asarray(a, dtype=numpy.float64)
                               for a in (images, W, hbias, vbias))
    return float(numpy.mean(images @ vbias + _softplus(images @ W + hbias).sum(axis=1)) - log_z)


#: The most hidden units for which log Z is computed exactly.
EXACT_MAX_HIDDEN = 20


def rbm_log_likelihood(rbm, train_images, test_images, ais_runs=100, n_betas=14500, seed=1):
    """The mean log-likelihood of the test images (binarised at 0.5) under ``rbm``, in nats.

    log Z is exact for at most :data:`EXACT_MAX_HIDDEN` hidden units, else
    estimated by :func:`ais_log_partition` with a base model fitted to the
    binarised training images.  Returns a dict: ``log_likelihood``,
    ``log_z``, ``method`` ('exact' or 'AIS') and, for AIS, the likelihood's
    range from the estimate's spread (``log_likelihood_low``/``_high``).
    """
    W, hbias, vbias = (p.get_value() for p in rbm.params)
    test_binary = numpy.asarray(test_images) > 0.5
    if rbm.n_hidden <= EXACT_MAX_HIDDEN:
        log_z = exact_log_partition(W, hbias, vbias)
        return dict(log_likelihood=log_likelihood(W, hbias, vbias, test_binary, log_z),
                    log_z=log_z, method='exact')
    estimate = ais_log_partition(W, hbias, vbias, base_rate_vbias(numpy.asarray(train_images) > 0.5),
                                 ais_betas(n_betas), ais_runs, numpy.random.RandomState(seed))
    mean_log_p_star = log_likelihood(W, hbias, vbias, test_binary, 0.0)
    return dict(log_likelihood=mean_log_p_star - estimate['log_z'], log_z=estimate['log_z'],
                log_likelihood_low=mean_log_p_star - estimate['log_z_high'],
                log_likelihood_high=mean_log_p_star - estimate['log_z_low'],
                method='AIS (%d runs, %d temperatures)' % (ais_runs, n_betas))


# --------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------

@entry_point(learning_rate=checks.positive, training_epochs=checks.positive_int,
             batch_size=checks.positive_int, n_chains=checks.positive_int,
             n_samples=checks.non_negative_int, n_hidden=checks.positive_int,
             k=checks.positive_int, persistent=checks.switch, plot_every=checks.positive_int,
             ais_runs=checks.positive_int, ais_betas=checks.positive_int, seed=checks.seed)
def test_rbm(learning_rate=0.1, training_epochs=15, dataset='mnist.pkl.gz', batch_size=20,
             n_chains=20, n_samples=10, output_folder='rbm_plots', n_hidden=500, k=15,
             persistent=True, plot_every=1000, ais_runs=100, ais_betas=14500, seed=123,
             verbose=True):
    """Train an RBM with PCD-15 (or CD-k); draw its filters and samples; report its log-likelihood.

    Parameters
    ----------
    learning_rate : float
        SGD step size.
    training_epochs : int
        passes over the training set.
    dataset : str
        a .pkl.gz file, a folder of IDX files, or a known name.
    batch_size : int
        examples per minibatch (and persistent chains, for PCD).
    n_chains : int
        Gibbs chains drawn after training, each from a random test image.
    n_samples : int
        pictures taken of each chain (0: draw no samples).
    output_folder : str
        where the model, filters and samples images go.
    n_hidden : int
        hidden units; at most 20 gives the exact log-likelihood.
    k : int
        Gibbs steps per update.
    persistent : bool
        PCD (chains kept between updates) if true, CD if false.
    plot_every : int
        Gibbs steps between two pictures of the chains.
    ais_runs : int
        annealed importance sampling runs (above 20 hidden units).
    ais_betas : int
        AIS inverse temperatures.
    seed : int
        seeds the weights, the Gibbs sampling and the chains' start images.
    verbose : bool
        show the progress where no logging is set up (a notebook).

    Returns
    -------
    dict: ``costs`` (the monitoring cost of each epoch), ``seconds``,
    ``stopped_by``, ``model_file``, ``filter_files``, ``samples_file``,
    ``samples`` (n_samples, n_chains, n_visible), ``log_likelihood`` (see
    :func:`rbm_log_likelihood`) and ``model``.
    """
    with run_options(output_dir=output_folder):
        if current_run().quick:
            n_chains, n_samples, plot_every = min(n_chains, 2), min(n_samples, 2), 10
            ais_runs, ais_betas = min(ais_runs, 10), min(ais_betas, 100)
        datasets, n_train_batches = load_training_data(dataset, batch_size)
        train_set_x = datasets[0][0]

        rng = numpy.random.RandomState(seed)
        theano_rng = MRG_RandomStreams(rng.randint(2 ** 30))
        architecture = dict(n_visible=28 * 28, n_hidden=n_hidden)
        rbm = RBM(numpy_rng=rng, theano_rng=theano_rng, **architecture)
        train_fn = build_rbm_function(rbm, train_set_x, batch_size, learning_rate, k, persistent)

        method = '%sCD-%d' % ('P' if persistent else '', k)
        filter_files = []

        def draw_filters(layer, epoch):
            filter_files.append(save_filters(rbm.W.get_value(borrow=True),
                                             'filters_at_epoch_%d.png' % epoch))

        logger.info('... training %r with %s', rbm, method)
        result = pretrain_layers([train_fn], n_train_batches, epochs(training_epochs),
                                 labels=['Training the RBM (%s)' % method],
                                 checkpoint=checkpoint_for([train_fn], 'rbm'),
                                 on_epoch_end=draw_filters)
        model_file = save_model(output_path(MODEL_FILE), rbm, architecture, k=k,
                                persistent=persistent, costs=result.costs[0],
                                dataset=str(dataset))
        logger.info('Training took %.1f s; the model is saved to %s', result.seconds[0],
                    model_file)
        if result.interrupted:
            raise KeyboardInterrupt

        test_images = datasets[2][0].get_value(borrow=True)
        samples, samples_file = numpy.zeros((0, n_chains, rbm.n_visible)), None
        if n_samples:
            starts = test_images[rng.choice(len(test_images), n_chains,
                                            replace=n_chains > len(test_images))]
            logger.info('... sampling %d chains, a picture every %d Gibbs steps', n_chains,
                        plot_every)
            samples = sample_from_rbm(rbm, starts, n_samples, plot_every)
            samples_file = save_samples(samples, 'samples.png')

        logger.info('... computing the test log-likelihood')
        likelihood = rbm_log_likelihood(rbm, train_set_x.get_value(borrow=True), test_images,
                                         ais_runs, ais_betas, seed)
        if 'log_likelihood_low' in likelihood:
            logger.info('Mean test log-likelihood: %.2f nats (%s; log Z %.2f)',
                        likelihood['log_likelihood'], likelihood['method'], likelihood['log_z'])
            if numpy.isfinite(likelihood['log_likelihood_high']):
                logger.info('  within 3 standard errors of the AIS weights: %.2f to %.2f nats',
                            likelihood['log_likelihood_low'], likelihood['log_likelihood_high'])
            else:
                logger.info('  3 standard errors of the AIS weights: above %.2f nats, no upper '
                            'bound (a few runs dominate: more --ais-runs would narrow it)',
                            likelihood['log_likelihood_low'])
        else:
            logger.info('Mean test log-likelihood: %.2f nats (exact; log Z %.2f)',
                        likelihood['log_likelihood'], likelihood['log_z'])
        save_model(model_file, rbm, architecture, k=k, persistent=persistent,
                   costs=result.costs[0], dataset=str(dataset), log_likelihood=likelihood)
    return dict(costs=result.costs[0], seconds=result.seconds[0], stopped_by=result.stopped_by,
                model_file=str(model_file), filter_files=[str(f) for f in filter_files if f],
                samples_file=str(samples_file) if samples_file else None, samples=samples,
                log_likelihood=likelihood, model=Model(rbm))


def load_rbm(model_file, input=None):
    """Build the :class:`RBM` saved in ``model_file`` (by :func:`test_rbm`) and load it."""
    return load_network(model_file, 'RBM', input)


def main(argv=None):
    return command_line.main(test_rbm, MODEL_FILE, __doc__, argv,
                             output_dir_keyword='output_folder')


if __name__ == '__main__':
    sys.exit(main())
