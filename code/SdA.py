"""Stacked denoising autoencoders: a deep network pre-trained one layer at a time.

Denoising autoencoders (see ``dA.py``) can be stacked: the code of one is
the input of the next.  An SdA is an MLP of sigmoid layers in which hidden
layer :math:`k` shares its weights and biases with the encoder of dA
:math:`k`.  Training has two phases:

1. **pre-training**, without labels, greedily: dA 0 learns to denoise the
   images, then dA 1 learns to denoise the codes of dA 0, and so on, each
   layer's corruption level its own;
2. **fine-tuning**: a logistic regression layer is put on top, and the whole
   network is trained as an MLP on the labels, with minibatch SGD and early
   stopping, starting from the pre-trained weights.

Pre-training puts the weights in a region from which fine-tuning finds a
better solution than from a random start (Erhan et al., 2010); on the
digits here it lowers the test error by about a sixth at equal budget.

Run it::

    python code/SdA.py                            # practical settings (see below)
    python code/SdA.py --pretraining-epochs 0     # the same network, no pre-training
    python code/SdA.py --dataset fashion-mnist --pretraining-epochs 3 --training-epochs 30
    python code/SdA.py --quick                    # smoke test: seconds
    python code/SdA.py --predict                  # first 10 test digits

The script's defaults (layers of 500 and 500 units, corruption 0.1 and 0.2,
minibatches of 20, pre-training rate 0.01) run in minutes; the original
tutorial's settings, kept as the defaults of :func:`test_SdA` (three layers
of 1000, minibatches of 1), take many hours on a CPU.

References:

- P. Vincent, H. Larochelle, I. Lajoie, Y. Bengio and P.-A. Manzagol,
  "Stacked Denoising Autoencoders", JMLR 11, 2010
- D. Erhan, Y. Bengio, A. Courville, P.-A. Manzagol, P. Vincent and
  S. Bengio, "Why Does Unsupervised Pre-training Help Deep Learning?",
  JMLR 11, 2010
"""
import sys

import numpy

# Importing dltutorials first sets the engine's defaults (BLAS, floatX) before it reads them.
from dltutorials.dA import dA
from dltutorials.data_loading import minibatch
from dltutorials.logistic_sgd import LogisticRegression
from dltutorials.mlp import HiddenLayer
from dltutorials.support import checks, command_line
from dltutorials.support.checkpoints import checkpoint_for
from dltutorials.support.models import load_network, save_model
from dltutorials.support.runs import (entry_point, epochs, output_path, save_filters,
                                      tutorial_logger)
from dltutorials.training import (PretrainingResult, build_minibatch_functions, load_training_data,
                                  pretrain_layers, train_and_save)
from dltutorials.updates import sgd

# Theano's names, from Theano or, on Python 3.12+, PyTensor (see dltutorials.support.engine).
from dltutorials.support.engine import MRG_RandomStreams, T, theano

__all__ = ['SdA', 'train_sda', 'test_SdA', 'load_sda']

logger = tutorial_logger(__name__)

MODEL_FILE = 'SdA.npz'
PRETRAINED_FILE = 'SdA_pretrained.npz'


class SdA(object):
    """A stack of denoising autoencoders, read as an MLP of sigmoid layers.

    Attributes: ``sigmoid_layers`` (the MLP's :class:`HiddenLayer`\\ s),
    ``dA_layers`` (the dAs sharing their ``W`` and ``b``), ``logLayer``,
    ``params`` (the MLP's, for fine-tuning), ``x`` (images, floatX matrix),
    ``y`` (labels, int32 vector), ``finetune_cost``, ``errors``, ``y_pred``.

    Parameters
    ----------
    numpy_rng : numpy.random.RandomState
        draws the initial weights (and seeds ``theano_rng`` if not given).
    theano_rng : MRG_RandomStreams, optional
        draws the corruption masks of every dA.
    n_ins : int
        input size (784 pixels).
    hidden_layers_sizes : sequence of int
        one hidden layer per size, bottom first; at least one.
    n_outs : int
        number of classes.
    corruption_levels : sequence of float in [0, 1)
        each layer's corruption level in pre-training (one per layer).
    """

    def __init__(self, numpy_rng, theano_rng=None, n_ins=784, hidden_layers_sizes=(500, 500),
                 n_outs=10, corruption_levels=(0.1, 0.1)):
        sizes, levels = list(hidden_layers_sizes), list(corruption_levels)
        if len(levels) != len(sizes):
            raise ValueError('got %d corruption levels for %d hidden layers'
                             % (len(levels), len(sizes)))
        if theano_rng is None:
            theano_rng = MRG_RandomStreams(numpy_rng.randint(2 ** 30))

        self.n_ins, self.hidden_layers_sizes, self.n_outs = n_ins, sizes, n_outs
        self.corruption_levels = levels
        self.n_layers = len(sizes)
        self.x = T.matrix('x')
        self.y = T.ivector('y')    # labels: int32, see load_data

        self.sigmoid_layers = []
        self.dA_layers = []
        layer_input, layer_n_in = self.x, n_ins
        for size in sizes:
            sigmoid_layer = HiddenLayer(rng=numpy_rng, input=layer_input, n_in=layer_n_in,
                                        n_out=size, activation=T.nnet.sigmoid)
            # The dA trains the very same W and b (shared variables, not copies):
            # pre-training it sets up the MLP's layer.  Its own reconstruction
            # bias is used in pre-training only.
            dA_layer = dA(numpy_rng=numpy_rng, theano_rng=theano_rng, input=layer_input,
                          n_visible=layer_n_in, n_hidden=size,
                          W=sigmoid_layer.W, bhid=sigmoid_layer.b)
            self.sigmoid_layers.append(sigmoid_layer)
            self.dA_layers.append(dA_layer)
            layer_input, layer_n_in = sigmoid_layer.output, size

        self.logLayer = LogisticRegression(input=layer_input, n_in=layer_n_in, n_out=n_outs)
        self.params = sum((layer.params for layer in self.sigmoid_layers), []) + \
            self.logLayer.params
        self.finetune_cost = self.logLayer.negative_log_likelihood(self.y)
        self.errors = self.logLayer.errors(self.y)
        self.y_pred = self.logLayer.y_pred

    def pretraining_functions(self, train_set_x, batch_size):
        """Compile one training step per dA, on the shared training images.

        Returns a list: ``fns[k](index, corruption=0.2, lr=0.1)`` trains dA
        ``k`` on minibatch ``index`` (seen through the layers below, which it
        leaves unchanged) and returns its mean reconstruction cost.
        """
        index = T.lscalar('index')
        corruption_level = T.scalar('corruption')
        learning_rate = T.scalar('lr')
        fns = []
        for dA_layer in self.dA_layers:
            cost, updates = dA_layer.get_cost_updates(corruption_level, learning_rate)
            train_step = theano.function(
                [index, corruption_level, learning_rate], cost, updates=updates,
                givens={self.x: minibatch(train_set_x, index, batch_size)})
            fns.append(with_pretraining_defaults(train_step))
        return fns

    def build_finetune_functions(self, datasets, batch_size, learning_rate):
        """Compile fine-tuning: one SGD step on the labels, and the two scorers.

        ``datasets`` is what :func:`~dltutorials.data_loading.load_data`
        returns.  Returns ``(train_fn, valid_score, test_score)``:
        ``train_fn(index)`` trains on minibatch ``index`` and returns its cost;
        ``valid_score()`` and ``test_score()`` return the error rate over the
        whole validation / test set (the original returned per-batch errors;
        ``numpy.mean`` of either is the same number).
        """
        updates = sgd(self.finetune_cost, self.params, learning_rate)
        return build_minibatch_functions(self.x, self.y, self.finetune_cost, self.errors,
                                         updates, datasets, batch_size)

    def __repr__(self):
        return 'SdA(n_ins=%d, hidden_layers_sizes=%s, n_outs=%d, corruption_levels=%s)' % (
            self.n_ins, self.hidden_layers_sizes, self.n_outs, self.corruption_levels)


def with_pretraining_defaults(train_step):
    """``train_step(index, corruption, lr)`` callable as ``(index, corruption=0.2, lr=0.1)``.

    The original tutorial gave these defaults with ``theano.In(..., value=)``,
    which PyTensor no longer accepts; a Python function gives them on both engines.
    """
    def pretrain(index, corruption=0.2, lr=0.1):
        return train_step(index, corruption, lr)
    pretrain.__wrapped__ = train_step    # where a checkpoint finds what the step updates
    return pretrain


@entry_point(finetune_lr=checks.positive, pretraining_epochs=checks.non_negative_int,
             pretrain_lr=checks.positive, training_epochs=checks.positive_int,
             batch_size=checks.positive_int, hidden_layers_sizes=checks.sizes,
             corruption_levels=checks.fractions, patience=checks.positive_int,
             seed=checks.seed)
def train_sda(finetune_lr=0.1, pretraining_epochs=15, pretrain_lr=0.01, training_epochs=1000,
              dataset='mnist.pkl.gz', batch_size=20, hidden_layers_sizes=(500, 500),
              corruption_levels=(0.1, 0.2), patience=None, seed=89677, verbose=True):
    """Pre-train an SdA layer by layer, then fine-tune it with early stopping.

    Parameters
    ----------
    finetune_lr : float
        SGD step size of fine-tuning.
    pretraining_epochs : int
        epochs per layer of pre-training; 0 trains from random initialisation.
    pretrain_lr : float
        SGD step size of pre-training.
    training_epochs : int
        the most epochs of fine-tuning.
    dataset : str
        a .pkl.gz file, a folder of IDX files, or a known name.
    batch_size : int
        examples per minibatch.
    hidden_layers_sizes : sequence of int
        hidden layer sizes, bottom first.
    corruption_levels : sequence of float
        each layer's corruption level in pre-training: the fraction of its
        inputs set to 0.
    patience : int, optional
        minibatches to look at before stopping; default 10 epochs' worth.
    seed : int
        seeds the weights and the corruption: the same seed gives the same
        initial network with or without pre-training.
    verbose : bool
        show the progress where no logging is set up (a notebook).

    Returns
    -------
    dict: the :class:`~dltutorials.training.TrainingResult` fields of
    fine-tuning, ``model_file`` (``SdA.npz`` in the output folder, beside
    ``SdA_pretrained.npz``, the learning curve and the first layer's
    filters), ``plot_file``, ``model`` and ``pretraining`` (the
    :class:`~dltutorials.training.PretrainingResult` as a dict).
    """
    checks.check_same_length(hidden_layers_sizes=hidden_layers_sizes,
                             corruption_levels=corruption_levels)
    datasets, n_train_batches = load_training_data(dataset, batch_size)
    numpy_rng = numpy.random.RandomState(seed)
    architecture = dict(n_ins=28 * 28, hidden_layers_sizes=hidden_layers_sizes, n_outs=10,
                        corruption_levels=corruption_levels)
    sda = SdA(numpy_rng=numpy_rng, **architecture)

    pretraining = PretrainingResult(costs=[], seconds=[])
    if pretraining_epochs > 0:
        logger.info('... getting the pretraining functions of %r', sda)
        pretraining_fns = sda.pretraining_functions(datasets[0][0], batch_size)
        logger.info('... pre-training the model')
        pretraining = pretrain_layers(
            pretraining_fns, n_train_batches, epochs(pretraining_epochs),
            layer_arguments=[dict(corruption=level, lr=pretrain_lr)
                             for level in sda.corruption_levels],
            checkpoint=checkpoint_for(pretraining_fns, PRETRAINED_FILE[:-len('.npz')]))
        logger.info('Pre-training ran for %.1f s', sum(pretraining.seconds))
        # Pre-training can take hours: keep it, whatever happens next.
        pretrained_file = save_model(output_path(PRETRAINED_FILE), sda, architecture,
                                     pretraining_costs=pretraining.costs, dataset=str(dataset))
        logger.info('pre-trained parameters saved to %s', pretrained_file)
        save_filters(sda.sigmoid_layers[0].W.get_value(borrow=True), 'SdA_layer0_filters.png')
        if pretraining.interrupted:
            raise KeyboardInterrupt

    logger.info('... getting the finetuning functions')
    train_fn, validate_fn, test_fn = sda.build_finetune_functions(datasets, batch_size,
                                                                  finetune_lr)
    logger.info('... finetuning the model')
    result = train_and_save(
        sda, train_fn, validate_fn, test_fn, n_train_batches, training_epochs, MODEL_FILE,
        architecture, dataset, patience=10 * n_train_batches if patience is None else patience)
    result['pretraining'] = pretraining.as_dict()
    return result


def test_SdA(finetune_lr=0.1, pretraining_epochs=15, pretrain_lr=0.001, training_epochs=1000,
             dataset='mnist.pkl.gz', batch_size=1, hidden_layers_sizes=(1000, 1000, 1000),
             corruption_levels=(0.1, 0.2, 0.3), **options):
    """The original tutorial's entry point and settings: :func:`train_sda` under its old name.

    Three layers of 1000 units with minibatches of one example: many hours
    on a CPU.  ``options`` go to :func:`train_sda`.
    """
    return train_sda(finetune_lr, pretraining_epochs, pretrain_lr, training_epochs, dataset,
                     batch_size, hidden_layers_sizes, corruption_levels, **options)


def load_sda(model_file):
    """Build the :class:`SdA` saved in ``model_file`` and load it.

    Returns the SdA; compile ``theano.function([sda.x], sda.y_pred)`` to
    classify, or use :func:`dltutorials.load_model`, which gives ``predict``.
    Raises ModelFileError for a file of another model.
    """
    return load_network(model_file, 'SdA')


def main(argv=None):
    return command_line.main(train_sda, MODEL_FILE, __doc__, argv)


if __name__ == '__main__':
    sys.exit(main())
