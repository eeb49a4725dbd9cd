"""Contractive autoencoders: features that change little when the input changes a little.

A contractive autoencoder (Rifai et al., 2011) is the autoencoder of the
denoising tutorial (tied weights, sigmoid units, cross-entropy
reconstruction) with a different way of refusing to learn the identity.
Instead of corrupting the input, it penalises how fast the code moves when
the input moves: the squared Frobenius norm of the Jacobian of the hidden
units with respect to the input,

.. math::

    \\|J_h(x)\\|_F^2 = \\sum_{i,j} \\left(\\frac{\\partial h_j(x)}{\\partial x_i}\\right)^2,
    \\qquad h(x) = s(x W + b).

The cost of one example is the reconstruction cross-entropy plus
:math:`\\lambda` (the *contraction level*) times that norm.  The two terms
pull apart: reconstruction wants a code that tells inputs apart; the
penalty wants a code that ignores every direction the training images do
not vary along.  What survives are features that follow the images'
manifold.

For sigmoid units the Jacobian has a closed form,
:math:`\\partial h_j / \\partial x_i = h_j (1 - h_j) W_{ij}`, and so does
its norm, which costs no more than the code itself:

.. math::

    \\|J_h(x)\\|_F^2 = \\sum_j \\left(h_j (1 - h_j)\\right)^2 \\sum_i W_{ij}^2

Run it::

    python code/cA.py                        # 20 epochs, 500 hidden units, lambda = 0.1
    python code/cA.py --contraction-level 0  # the same autoencoder without the penalty
    python code/cA.py --evaluate results/cA.npz results/dA_corruption_30.npz
    python code/cA.py --quick                # smoke test: seconds

It writes ``cA.npz`` and ``cae_filters.png`` into ``--output-dir``;
``--evaluate`` prints the reconstruction cost and the mean
Jacobian norm of saved autoencoders (cA or dA) on the test digits.

References:

- S. Rifai, P. Vincent, X. Muller, X. Glorot and Y. Bengio, "Contractive
  Auto-Encoders: Explicit Invariance During Feature Extraction", ICML 2011
- S. Rifai, G. Mesnil, P. Vincent, X. Muller, Y. Bengio, Y. Dauphin and
  X. Glorot, "Higher Order Contractive Auto-Encoder", ECML PKDD 2011
"""
import sys
import time

import numpy

# Importing dltutorials first sets the engine's defaults (BLAS, floatX) before it reads them.
from dltutorials.dA import dA
from dltutorials.data_loading import minibatch
from dltutorials.support import checks, command_line
from dltutorials.support.checkpoints import checkpoint_for
from dltutorials.support.datasets import load_arrays
from dltutorials.support.errors import ModelFileError
from dltutorials.support.models import Model, as_images, in_batches, load_model, save_model
from dltutorials.support.runs import (entry_point, epochs, output_path, run_options,
                                      save_filters, tutorial_logger)
from dltutorials.training import load_training_data, pretrain_layers
from dltutorials.updates import sgd

# Theano's names, from Theano or, on Python 3.12+, PyTensor (see dltutorials.support.engine).
from dltutorials.support.engine import T, theano

__all__ = ['cA', 'squared_jacobian_norms', 'build_cA_function', 'test_cA', 'measure_autoencoders']

logger = tutorial_logger(__name__)


def squared_jacobian_norms(hidden, W):
    """``||J_h(x)||_F^2`` of each example, from its code: shape (n_examples,).

    ``hidden`` (n_examples, n_hidden) = sigmoid(x W + b), ``W`` (n_visible,
    n_hidden).  The closed form for sigmoid units: sum_j (h_j (1 - h_j))^2
    sum_i W_ij^2; one product of the size of the code, where the Jacobian
    itself has n_visible x n_hidden values per example.
    """
    return T.dot((hidden * (1 - hidden)) ** 2, T.sum(W ** 2, axis=0))


class cA(dA):
    """A contractive autoencoder with tied weights and sigmoid units.

    Parameters
    ----------
    numpy_rng : numpy.random.RandomState
        draws the initial weights.
    input : Theano matrix (n_examples, n_visible), optional
        the symbolic input; a new floatX matrix if not given.
    n_visible, n_hidden : int
        sizes of the input and of the code.
    n_batchsize : int
        the original's minibatch size, which its Jacobian was reshaped with;
        kept for its callers, unused: the size is read from the input.
    W, bhid, bvis : shared variables, optional
        weights (n_visible, n_hidden), hidden biases (n_hidden,) and
        reconstruction biases (n_visible,), as for the dA.

    The attributes are the dA's: ``W``, ``b``, ``W_prime`` (= W.T),
    ``b_prime``, ``x`` and ``params`` = [W, b, b_prime]; and, once
    ``get_cost_updates`` has run, ``L_rec`` and ``L_jacob``.
    """

    def __init__(self, numpy_rng, input=None, n_visible=784, n_hidden=100, n_batchsize=1,
                 W=None, bhid=None, bvis=None):
        super().__init__(numpy_rng, input=input, n_visible=n_visible, n_hidden=n_hidden, W=W,
                         bhid=bhid, bvis=bvis)
        self.n_batchsize = n_batchsize

    def get_jacobian(self, hidden, W):
        """The Jacobian of the code, (n_examples, n_visible, n_hidden): dh_j / dx_i.

        For sigmoid units, h_j (1 - h_j) W_ij.  The cost does not build it
        (see :func:`squared_jacobian_norms`); it is here to be looked at.
        """
        return hidden.dimshuffle(0, 'x', 1) * (1 - hidden).dimshuffle(0, 'x', 1) \
            * W.dimshuffle('x', 0, 1)

    def get_cost_updates(self, contraction_level, learning_rate):
        """Return ``(cost, updates)`` for one SGD step on a minibatch of ``self.x``.

        ``cost`` is the minibatch's mean reconstruction cross-entropy plus
        ``contraction_level`` times its mean squared Jacobian norm.  Sets
        ``self.L_rec`` (the cross-entropy of each example, (n_examples,)) and
        ``self.L_jacob`` (the mean of ``||J_h(x)||_F^2``, a scalar), which
        the original tutorial's training function returns.
        """
        hidden = self.get_hidden_values(self.x)
        self.L_rec = self.get_reconstruction_cost(self.x, self.x)
        # A true division: the original's Python 3 port floor-divided here
        # (//), which rounds the penalty down to a whole number.
        self.L_jacob = T.mean(squared_jacobian_norms(hidden, self.W))
        cost = T.mean(self.L_rec) + contraction_level * self.L_jacob
        return cost, sgd(cost, self.params, learning_rate)

    def __repr__(self):
        return 'cA(n_visible=%d, n_hidden=%d)' % (self.n_visible, self.n_hidden)


def build_cA_function(ca, train_set_x, batch_size, contraction_level, learning_rate):
    """Compile one training step of ``ca`` on the shared training images.

    Returns ``train_fn(index)``: trains on minibatch ``index`` of
    ``train_set_x`` and returns ``[cost, reconstruction cost, Jacobian
    norm]``, the last two the minibatch's means of the cross-entropy and of
    ``||J_h(x)||_F`` (the norm, not its square).
    """
    index = T.lscalar('index')
    cost, updates = ca.get_cost_updates(contraction_level, learning_rate)
    jacobian_norm = T.mean(T.sqrt(squared_jacobian_norms(ca.get_hidden_values(ca.x), ca.W)))
    return theano.function([index], [cost, T.mean(ca.L_rec), jacobian_norm], updates=updates,
                           givens={ca.x: minibatch(train_set_x, index, batch_size)})


@entry_point(learning_rate=checks.positive, training_epochs=checks.positive_int,
             batch_size=checks.positive_int, contraction_level=checks.non_negative,
             n_hidden=checks.positive_int, seed=checks.seed)
def test_cA(learning_rate=0.01, training_epochs=20, dataset='mnist.pkl.gz', batch_size=10,
            output_folder='cA_plots', contraction_level=.1, n_hidden=500, seed=123,
            verbose=True):
    """Train a contractive autoencoder; save it and a picture of its filters.

    Each epoch's log line gives the mean cost, reconstruction cross-entropy
    and Jacobian norm over the epoch's minibatches.  ``cA.npz`` and
    ``cae_filters.png`` go to ``output_folder`` (created if absent).

    Parameters
    ----------
    learning_rate : float
        SGD step size.
    training_epochs : int
        passes over the training set.
    dataset : str
        a .pkl.gz file, a folder of IDX files, or a known name.
    batch_size : int
        examples per minibatch.
    output_folder : str
        where the model and the filter image go.
    contraction_level : float
        lambda, the weight of the squared Jacobian norm in the cost (0: a
        plain autoencoder).
    n_hidden : int
        hidden units (filters).
    seed : int
        seeds the initial weights.
    verbose : bool
        show the progress where no logging is set up (a notebook).

    Returns
    -------
    dict: ``costs``, ``reconstruction_costs`` and ``jacobian_norms`` (one
    mean per epoch), ``seconds``, ``stopped_by``, ``model_file``,
    ``filter_file`` and ``model``.  After a Ctrl-C, what was learnt is saved
    and drawn, then KeyboardInterrupt is raised again.
    """
    with run_options(output_dir=output_folder):
        datasets, n_train_batches = load_training_data(dataset, batch_size)
        train_set_x = datasets[0][0]

        architecture = dict(n_visible=28 * 28, n_hidden=n_hidden)
        ca = cA(numpy_rng=numpy.random.RandomState(seed), n_batchsize=batch_size,
                **architecture)
        train_fn = build_cA_function(ca, train_set_x, batch_size, contraction_level,
                                     learning_rate)

        logger.info('... training %r, contraction level %g', ca, contraction_level)
        start = time.perf_counter()
        result = pretrain_layers([train_fn], n_train_batches, epochs(training_epochs),
                                 labels=['Training cA'],
                                 monitor_names=('reconstruction', 'Jacobian norm'),
                                 checkpoint=checkpoint_for([train_fn], 'cA'))
        reconstruction_costs, jacobian_norms = (
            [list(values) for values in zip(*result.monitors[0])] if result.monitors[0]
            else ([], []))
        model_file = save_model(output_path('cA.npz'), ca, architecture,
                                contraction_level=contraction_level, costs=result.costs[0],
                                dataset=str(dataset))
        filter_file = save_filters(ca.W.get_value(borrow=True), 'cae_filters.png')
        logger.info('The cA ran for %.1f s', time.perf_counter() - start)
    if result.interrupted:
        raise KeyboardInterrupt
    return dict(costs=result.costs[0], reconstruction_costs=reconstruction_costs,
                jacobian_norms=jacobian_norms, seconds=result.seconds[0],
                stopped_by=result.stopped_by, model_file=str(model_file), model=Model(ca),
                filter_file=str(filter_file) if filter_file else None)


def measure_autoencoders(model_files, dataset='mnist.pkl.gz'):
    """How each saved autoencoder (a cA or a dA) codes the test images of ``dataset``.

    Prints one line per model and returns ``{model file: {'reconstruction_cost':
    mean cross-entropy per image, 'jacobian_norm': mean ||J_h(x)||_F}}``:
    the smaller the norm, the less the code moves when an image changes.
    Raises ModelFileError for a file that holds no autoencoder.
    """
    test_images = as_images(load_arrays(dataset)[2][0])
    measures = {}
    print('%-40s %15s %14s' % ('model (%d test images)' % len(test_images),
                               'cross-entropy', 'Jacobian norm'))
    for model_file in model_files:
        model = load_model(model_file)
        if not isinstance(model.network, dA):
            raise ModelFileError('%s holds a %s, not an autoencoder (a cA or a dA)'
                                 % (model_file, type(model.network).__name__))
        x = model.network.x
        # The clean images' reconstructions (no corruption): the dA's cost of x against x.
        measure = theano.function([x], [
            model.network.get_reconstruction_cost(x, x),
            T.sqrt(squared_jacobian_norms(model.network.get_hidden_values(x), model.network.W))])
        cross_entropies, norms = in_batches(measure, test_images)
        measures[str(model_file)] = dict(
            reconstruction_cost=float(cross_entropies.astype(numpy.float64).mean()),
            jacobian_norm=float(norms.astype(numpy.float64).mean()))
        print('%-40s %15.2f %14.3f' % (model_file, measures[str(model_file)]['reconstruction_cost'],
                                      measures[str(model_file)]['jacobian_norm']))
    return measures


def main(argv=None):
    parser = command_line.build_parser(test_cA, __doc__.strip().split('\n')[0],
                                       skip=['output_folder'], saved_model_flags=False)
    parser.add_argument('--evaluate', nargs='*', metavar='MODEL',
                        help='instead of training, print the reconstruction cost and the mean '
                             'Jacobian norm on the test split of --dataset of these saved cA or '
                             'dA files (none: the cA in --output-dir)')
    arguments = vars(parser.parse_args(argv))
    evaluate = arguments.pop('evaluate')
    options = {name: arguments.pop(name) for name in ('output_dir', 'quick', 'no_plot', 'quiet',
                                                      'resume')}
    arguments['output_folder'] = options['output_dir']

    def task():
        with run_options(output_dir=options['output_dir'], quick=options['quick'],
                         plot=not options['no_plot'], resume=options['resume'], script=True):
            if evaluate is not None:
                return measure_autoencoders(evaluate or [output_path('cA.npz')],
                                            arguments['dataset'])
            return test_cA(**arguments)
    return command_line.run(task, options['quiet'])


if __name__ == '__main__':
    sys.exit(main())
