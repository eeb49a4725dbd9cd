"""Denoising autoencoders: features learnt by repairing damaged inputs.

An autoencoder maps an input :math:`x \\in [0, 1]^d` to a hidden
representation :math:`y` (the *code*) and back to a reconstruction :math:`z`
of the input:

.. math::

    y = s(W x + b), \\qquad z = s(W' y + b')

with :math:`s` the logistic sigmoid.  The weights are *tied*:
:math:`W' = W^T`.  Training minimises the reconstruction cross-entropy, a
sum over the :math:`d` pixels seen as independent Bernoulli probabilities:

.. math::

    L_H(x, z) = -\\sum_{k=1}^{d} \\left[x_k \\log z_k + (1 - x_k) \\log(1 - z_k)\\right]

A *denoising* autoencoder (Vincent et al., 2008) computes the code from a
corrupted copy :math:`\\tilde{x}` of the input, here with a random fraction
of the pixels set to zero, but is still asked to reconstruct the clean
:math:`x`.  It can no longer learn the identity; it must capture how pixels
depend on each other, and its filters (the rows of :math:`W`) become stroke
detectors.

Run it::

    python code/dA.py                        # 15 epochs without, then with 30 % corruption
    python code/dA.py --dataset fashion-mnist
    python code/dA.py --quick                # smoke test: seconds

It writes ``filters_corruption_0.png`` and ``filters_corruption_30.png``
(and each model's ``.npz``) into ``--output-dir``.

References:

- P. Vincent, H. Larochelle, Y. Bengio and P.-A. Manzagol, "Extracting and
  Composing Robust Features with Denoising Autoencoders", ICML 2008
- Y. Bengio, "Learning Deep Architectures for AI", Foundations and Trends in
  Machine Learning 1(2), 2009, section 7.2
"""
import numbers
import sys
import time

import numpy

# Importing dltutorials first sets the engine's defaults (BLAS, floatX) before it reads them.
from dltutorials.data_loading import minibatch
from dltutorials.layers import glorot_uniform
from dltutorials.support import checks, command_line
from dltutorials.support.checkpoints import checkpoint_for
from dltutorials.support.models import Model, load_network, save_model
from dltutorials.support.runs import (entry_point, epochs, output_path, run_options, save_filters,
                                      tutorial_logger)
from dltutorials.training import load_training_data, pretrain_layers
from dltutorials.updates import sgd

# Theano's names, from Theano or, on Python 3.12+, PyTensor (see dltutorials.support.engine).
from dltutorials.support.engine import MRG_RandomStreams, T, theano

__all__ = ['dA', 'build_dA_function', 'train_dA', 'test_dA', 'load_dA']

logger = tutorial_logger(__name__)


class dA(object):
    """A denoising autoencoder with tied weights and sigmoid units.

    Parameters
    ----------
    numpy_rng : numpy.random.RandomState
        draws the initial weights (and seeds ``theano_rng`` if not given).
    theano_rng : MRG_RandomStreams, optional
        draws the corruption masks.
    input : Theano matrix (n_examples, n_visible), optional
        the symbolic input; a new floatX matrix if not given.  (Stacked in an
        SdA, it is the output of the layer below.)
    n_visible, n_hidden : int
        sizes of the input and of the code.
    W : shared variable (n_visible, n_hidden), optional
        weights to use, for instance shared with an MLP layer; default uniform
        in +-4 sqrt(6 / (n_hidden + n_visible)).
    bhid : shared variable (n_hidden,), optional
        biases of the hidden units; default zeros.
    bvis : shared variable (n_visible,), optional
        biases of the reconstruction; default zeros.

    Attributes ``W``, ``b`` (= bhid), ``W_prime`` (= W.T), ``b_prime``
    (= bvis), ``x`` (the input) and ``params`` = [W, b, b_prime].
    """

    def __init__(self, numpy_rng, theano_rng=None, input=None, n_visible=784, n_hidden=500,
                 W=None, bhid=None, bvis=None):
        self.n_visible, self.n_hidden = n_visible, n_hidden
        if theano_rng is None:
            theano_rng = MRG_RandomStreams(numpy_rng.randint(2 ** 30))
        self.theano_rng = theano_rng

        if W is None:
            # The sigmoid's Glorot range (4 x the tanh one).
            W = theano.shared(glorot_uniform(numpy_rng, n_visible, n_hidden, T.nnet.sigmoid),
                              name='W', borrow=True)
        if bhid is None:
            bhid = theano.shared(numpy.zeros(n_hidden, dtype=theano.config.floatX),
                                 name='bhid', borrow=True)
        if bvis is None:
            bvis = theano.shared(numpy.zeros(n_visible, dtype=theano.config.floatX),
                                 name='bvis', borrow=True)
        self.W = W
        self.b = bhid
        self.b_prime = bvis
        # Tied weights: the decoder is the transpose of the encoder, not a copy,
        # so both directions train the same matrix.
        self.W_prime = self.W.T
        # T.matrix follows floatX (the original's T.dmatrix forced float64).
        self.x = T.matrix(name='input') if input is None else input
        self.params = [self.W, self.b, self.b_prime]

    def get_corrupted_input(self, input, corruption_level):
        """``input`` with each value set to 0 with probability ``corruption_level``.

        The mask is drawn anew at every call of the compiled function:
        ``binomial(n=1, p=1 - corruption_level)``, in ``input``'s dtype so that
        the product stays floatX.  ``corruption_level`` may be a number or a
        symbolic scalar; a plain 0 returns ``input`` itself (no random draw).
        """
        if isinstance(corruption_level, numbers.Real) and corruption_level == 0:
            return input
        keep = self.theano_rng.binomial(size=input.shape, n=1, p=1 - corruption_level,
                                        dtype=input.dtype)
        return keep * input

    def get_hidden_values(self, input):
        """The code of ``input``: sigmoid(input W + b), (n_examples, n_hidden)."""
        return T.nnet.sigmoid(T.dot(input, self.W) + self.b)

    def get_reconstruction_activation(self, hidden):
        """The decoder's input to its sigmoid: hidden W' + b', (n_examples, n_visible)."""
        return T.dot(hidden, self.W_prime) + self.b_prime

    def get_reconstructed_input(self, hidden):
        """The reconstruction from a code: sigmoid(hidden W' + b'), (n_examples, n_visible)."""
        return T.nnet.sigmoid(self.get_reconstruction_activation(hidden))

    def get_reconstruction_cost(self, clean, corrupted):
        """The cross-entropy between ``clean`` and the reconstruction of ``corrupted``.

        One value per example (a sum over its pixels), shape (n_examples,).
        """
        # The cross-entropy of z = sigmoid(a), one per example (a sum over pixels):
        #     L = -sum(x log(z) + (1 - x) log(1 - z)) = sum(softplus(a) - x a)
        # as log(sigmoid(a)) = -softplus(-a) = a - softplus(a).  Written from a,
        # it costs one softplus per pixel instead of two (the training step
        # was 5-15 % faster in paired runs on a CPU) and never takes log(0).
        a = self.get_reconstruction_activation(self.get_hidden_values(corrupted))
        return T.sum(T.nnet.softplus(a) - clean * a, axis=1)

    def get_cost_updates(self, corruption_level, learning_rate):
        """Return ``(cost, updates)`` for one SGD step on a minibatch of ``self.x``.

        ``cost`` is the mean over the minibatch of the cross-entropy between
        the clean input and the reconstruction of its corrupted copy;
        ``updates`` an OrderedDict moving ``params`` down its gradient.
        """
        tilde_x = self.get_corrupted_input(self.x, corruption_level)
        cost = T.mean(self.get_reconstruction_cost(self.x, tilde_x))
        return cost, sgd(cost, self.params, learning_rate)

    def __repr__(self):
        return 'dA(n_visible=%d, n_hidden=%d)' % (self.n_visible, self.n_hidden)


def build_dA_function(da, train_set_x, batch_size, corruption_level, learning_rate):
    """Compile one training step of ``da`` on the shared training images.

    Returns ``train_fn(index)``: trains on minibatch ``index`` of
    ``train_set_x`` (taken on the device through ``givens``) and returns the
    minibatch's mean reconstruction cost.
    """
    index = T.lscalar('index')
    cost, updates = da.get_cost_updates(corruption_level, learning_rate)
    return theano.function([index], cost, updates=updates,
                           givens={da.x: minibatch(train_set_x, index, batch_size)})


def model_file_name(corruption_level):
    """The file :func:`train_dA` saves a dA with ``corruption_level`` in."""
    return 'dA_corruption_%d.npz' % round(corruption_level * 100)


@entry_point(learning_rate=checks.positive, training_epochs=checks.positive_int,
             batch_size=checks.positive_int, corruption_level=checks.fraction,
             n_hidden=checks.positive_int, seed=checks.seed)
def train_dA(learning_rate=0.1, training_epochs=15, dataset='mnist.pkl.gz', batch_size=20,
             corruption_level=0.3, n_hidden=500, seed=123, verbose=True):
    """Train one denoising autoencoder; save its parameters and a picture of its filters.

    Writes ``dA_corruption_<percent>.npz`` and ``filters_corruption_<percent>.png``
    into the output folder.  Returns a dict: ``costs`` (mean cost per epoch),
    ``seconds``, ``stopped_by``, ``model_file``, ``filter_file`` and
    ``model``.  After a Ctrl-C, what was learnt is saved and drawn, then
    KeyboardInterrupt is raised again.
    """
    datasets, n_train_batches = load_training_data(dataset, batch_size)
    train_set_x = datasets[0][0]

    rng = numpy.random.RandomState(seed)
    theano_rng = MRG_RandomStreams(rng.randint(2 ** 30))
    architecture = dict(n_visible=28 * 28, n_hidden=n_hidden)
    da = dA(numpy_rng=rng, theano_rng=theano_rng, **architecture)
    train_fn = build_dA_function(da, train_set_x, batch_size, corruption_level, learning_rate)

    percent = round(corruption_level * 100)
    name = model_file_name(corruption_level)
    logger.info('... training %r with %d %% corruption', da, percent)
    result = pretrain_layers([train_fn], n_train_batches, epochs(training_epochs),
                             labels=['Training %s' % name[:-len('.npz')]],
                             checkpoint=checkpoint_for([train_fn], name[:-len('.npz')]))
    model_file = save_model(output_path(name), da, architecture,
                            corruption_level=corruption_level, costs=result.costs[0],
                            dataset=str(dataset))
    filter_file = save_filters(da.W.get_value(borrow=True),
                               'filters_corruption_%d.png' % percent)
    logger.info('The %d %% corruption code ran for %.1f s', percent, result.seconds[0])
    if result.interrupted:
        raise KeyboardInterrupt
    return dict(costs=result.costs[0], seconds=result.seconds[0], stopped_by=result.stopped_by,
                model_file=str(model_file), model=Model(da),
                filter_file=str(filter_file) if filter_file else None)


@entry_point(learning_rate=checks.positive, training_epochs=checks.positive_int,
             batch_size=checks.positive_int, corruption_levels=checks.fractions,
             n_hidden=checks.positive_int, seed=checks.seed)
def test_dA(learning_rate=0.1, training_epochs=15, dataset='mnist.pkl.gz', batch_size=20,
            output_folder='dA_plots', corruption_levels=(0.0, 0.3), n_hidden=500, seed=123,
            verbose=True):
    """The original tutorial's experiment: a dA without, then with 30 % corruption.

    Each trains for ``training_epochs`` from the same initial weights (same
    ``seed``); their models and filters go to ``output_folder`` (created if
    absent) as ``dA_corruption_0.npz``, ``filters_corruption_0.png`` and so
    on.

    Parameters
    ----------
    learning_rate : float
        SGD step size.
    training_epochs : int
        passes over the training set, for each corruption level.
    dataset : str
        a .pkl.gz file, a folder of IDX files, or a known name.
    batch_size : int
        examples per minibatch.
    output_folder : str
        where the models and filter images go.
    corruption_levels : sequence of float
        train one dA per level: the fraction of input pixels set to 0.
    n_hidden : int
        hidden units (filters).
    seed : int
        seeds the initial weights and the corruption.
    verbose : bool
        show the progress where no logging is set up (a notebook).

    Returns
    -------
    dict: ``{corruption_level: result of train_dA}``.
    """
    start = time.perf_counter()
    results = {}
    with run_options(output_dir=output_folder):
        for level in corruption_levels:
            results[level] = train_dA(learning_rate, training_epochs, dataset, batch_size,
                                      level, n_hidden, seed, verbose)
    logger.info('dA training ran for %.1f s', time.perf_counter() - start)
    return results


def load_dA(model_file, input=None):
    """Build the :class:`dA` saved in ``model_file`` (by :func:`train_dA`) and load it.

    Returns the dA; its input is ``input`` or a new matrix (``da.x``).
    """
    return load_network(model_file, 'dA', input)


def main(argv=None):
    # --predict and --evaluate use the last dA trained (the most corrupted, by default).
    return command_line.main(
        test_dA, lambda arguments: model_file_name(arguments['corruption_levels'][-1]),
        __doc__, argv, output_dir_keyword='output_folder')


if __name__ == '__main__':
    sys.exit(main())
