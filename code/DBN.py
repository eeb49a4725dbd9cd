"""Deep belief networks: RBMs stacked, pre-trained one layer at a time, then fine-tuned.

A DBN (Hinton, Osindero and Teh, 2006) models the images with a stack of
RBMs (see ``rbm.py``): the hidden units of RBM :math:`k` are the visible
units of RBM :math:`k + 1`.  Read upwards, it is an MLP of sigmoid layers in
which hidden layer :math:`k` shares its weights and hidden biases with RBM
:math:`k`.  Training has two phases, as the SdA's:

1. **pre-training**, without labels, greedily: RBM 0 learns the images with
   CD-k, then RBM 1 learns the hidden probabilities of RBM 0 given the
   images, and so on (each layer trained adds to a lower bound on the
   log-likelihood of the whole stack);
2. **fine-tuning**: a logistic regression layer is put on top and the whole
   network is trained as an MLP on the labels, with minibatch SGD and early
   stopping, from the pre-trained weights.

Run it::

    python code/DBN.py                            # practical settings (see below)
    python code/DBN.py --pretraining-epochs 0     # the same network, no pre-training
    python code/DBN.py --dataset fashion-mnist --pretraining-epochs 3 --training-epochs 30
    python code/DBN.py --quick                    # smoke test: seconds
    python code/DBN.py --predict                  # first 10 test digits

The script's defaults (layers of 500 and 500 units, CD-1, minibatches of
20, 10 pre-training epochs per layer) run in minutes; the original
tutorial's settings, kept as the defaults of :func:`test_DBN` (three layers
of 1000, minibatches of 10, 100 pre-training epochs per layer), take hours.

References:

- G. E. Hinton, S. Osindero and Y.-W. Teh, "A Fast Learning Algorithm for
  Deep Belief Nets", Neural Computation 18, 2006
- Y. Bengio, P. Lamblin, D. Popovici and H. Larochelle, "Greedy Layer-Wise
  Training of Deep Networks", NIPS 2006
"""
import sys

import numpy

# Importing dltutorials first sets the engine's defaults (BLAS, floatX) before it reads them.
from dltutorials.data_loading import minibatch
from dltutorials.logistic_sgd import LogisticRegression
from dltutorials.mlp import HiddenLayer
from dltutorials.rbm import RBM
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

__all__ = ['DBN', 'train_dbn', 'test_DBN', 'load_dbn']

logger = tutorial_logger(__name__)

MODEL_FILE = 'DBN.npz'
PRETRAINED_FILE = 'DBN_pretrained.npz'


class DBN(object):
    """A stack of RBMs, read as an MLP of sigmoid layers with a logistic regression on top.

    Attributes: ``sigmoid_layers`` (the MLP's :class:`HiddenLayer`\\ s),
    ``rbm_layers`` (the RBMs sharing their ``W`` and hidden biases),
    ``logLayer``, ``params`` (the MLP's, for fine-tuning; the RBMs' visible
    biases are used in pre-training only), ``x`` (images, floatX matrix),
    ``y`` (labels, int32 vector), ``finetune_cost``, ``errors``, ``y_pred``.

    Parameters
    ----------
    numpy_rng : numpy.random.RandomState
        draws the initial weights (and seeds ``theano_rng`` if not given).
    theano_rng : MRG_RandomStreams, optional
        draws the Gibbs samples of every RBM.
    n_ins : int
        input size (784 pixels).
    hidden_layers_sizes : sequence of int
        one hidden layer per size, bottom first; at least one.
    n_outs : int
        number of classes.
    """

    def __init__(self, numpy_rng, theano_rng=None, n_ins=784, hidden_layers_sizes=(500, 500),
                 n_outs=10):
        sizes = list(hidden_layers_sizes)
        if theano_rng is None:
            theano_rng = MRG_RandomStreams(numpy_rng.randint(2 ** 30))

        self.n_ins, self.hidden_layers_sizes, self.n_outs = n_ins, sizes, n_outs
        self.n_layers = len(sizes)
        self.x = T.matrix('x')
        self.y = T.ivector('y')    # labels: int32, see load_data

        self.sigmoid_layers = []
        self.rbm_layers = []
        layer_input, layer_n_in = self.x, n_ins
        for size in sizes:
            sigmoid_layer = HiddenLayer(rng=numpy_rng, input=layer_input, n_in=layer_n_in,
                                        n_out=size, activation=T.nnet.sigmoid)
            # The RBM trains the very same W and hidden biases (shared variables,
            # not copies): its P(h = 1 | v) is the layer's output.  Its visible
            # biases are its own, used in pre-training only.
            rbm_layer = RBM(numpy_rng=numpy_rng, theano_rng=theano_rng, input=layer_input,
                            n_visible=layer_n_in, n_hidden=size,
                            W=sigmoid_layer.W, hbias=sigmoid_layer.b)
            self.sigmoid_layers.append(sigmoid_layer)
            self.rbm_layers.append(rbm_layer)
            layer_input, layer_n_in = sigmoid_layer.output, size

        self.logLayer = LogisticRegression(input=layer_input, n_in=layer_n_in, n_out=n_outs)
        self.params = sum((layer.params for layer in self.sigmoid_layers), []) + \
            self.logLayer.params
        self.finetune_cost = self.logLayer.negative_log_likelihood(self.y)
        self.errors = self.logLayer.errors(self.y)
        self.y_pred = self.logLayer.y_pred

    def pretraining_functions(self, train_set_x, batch_size, k):
        """Compile one CD-k step per RBM, on the shared training images.

        Returns a list: ``fns[i](index, lr=0.1)`` trains RBM ``i`` on
        minibatch ``index`` (seen through the layers below, which it leaves
        unchanged) and returns its reconstruction cost.
        """
        index = T.lscalar('index')
        learning_rate = T.scalar('lr')
        fns = []
        for rbm in self.rbm_layers:
            cost, updates = rbm.get_cost_updates(learning_rate, persistent=None, k=k)
            train_step = theano.function(
                [index, learning_rate], cost, updates=updates,
                givens={self.x: minibatch(train_set_x, index, batch_size)})
            fns.append(with_learning_rate_default(train_step))
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
        return 'DBN(n_ins=%d, hidden_layers_sizes=%s, n_outs=%d)' % (
            self.n_ins, self.hidden_layers_sizes, self.n_outs)


def with_learning_rate_default(train_step):
    """``train_step(index, lr)`` callable as ``(index, lr=0.1)``, also by keyword.

    The original gave the default with ``theano.In(lr, value=0.1)``, which
    PyTensor no longer accepts; a Python function gives it on both engines.
    """
    def pretrain(index, lr=0.1):
        return train_step(index, lr)
    pretrain.__wrapped__ = train_step    # where a checkpoint finds what the step updates
    return pretrain


@entry_point(finetune_lr=checks.positive, pretraining_epochs=checks.non_negative_int,
             pretrain_lr=checks.positive, k=checks.positive_int,
             training_epochs=checks.positive_int, batch_size=checks.positive_int,
             hidden_layers_sizes=checks.sizes, patience=checks.positive_int, seed=checks.seed)
def train_dbn(finetune_lr=0.1, pretraining_epochs=10, pretrain_lr=0.01, k=1,
              training_epochs=1000, dataset='mnist.pkl.gz', batch_size=20,
              hidden_layers_sizes=(500, 500), patience=None, seed=123, verbose=True):
    """Pre-train a DBN layer by layer with CD-k, then fine-tune it with early stopping.

    Parameters
    ----------
    finetune_lr : float
        SGD step size of fine-tuning.
    pretraining_epochs : int
        epochs per layer of pre-training; 0 trains from random initialisation.
    pretrain_lr : float
        SGD step size of pre-training.
    k : int
        Gibbs steps of CD-k in pre-training.
    training_epochs : int
        the most epochs of fine-tuning.
    dataset : str
        a .pkl.gz file, a folder of IDX files, or a known name.
    batch_size : int
        examples per minibatch.
    hidden_layers_sizes : sequence of int
        hidden layer sizes, bottom first.
    patience : int, optional
        minibatches to look at before stopping; default 10 epochs' worth.
    seed : int
        seeds the weights and the Gibbs sampling: the same seed gives the
        same initial network with or without pre-training.
    verbose : bool
        show the progress where no logging is set up (a notebook).

    Returns
    -------
    dict: the :class:`~dltutorials.training.TrainingResult` fields of
    fine-tuning, ``model_file`` (``DBN.npz`` in the output folder, beside
    ``DBN_pretrained.npz``, the learning curve and the first layer's
    filters), ``plot_file``, ``model`` and ``pretraining`` (the
    :class:`~dltutorials.training.PretrainingResult` as a dict).
    """
    datasets, n_train_batches = load_training_data(dataset, batch_size)
    numpy_rng = numpy.random.RandomState(seed)
    architecture = dict(n_ins=28 * 28, hidden_layers_sizes=hidden_layers_sizes, n_outs=10)
    dbn = DBN(numpy_rng=numpy_rng, **architecture)

    pretraining = PretrainingResult(costs=[], seconds=[])
    if pretraining_epochs > 0:
        logger.info('... getting the pretraining functions of %r', dbn)
        pretraining_fns = dbn.pretraining_functions(datasets[0][0], batch_size, k)
        logger.info('... pre-training the model with CD-%d', k)
        pretraining = pretrain_layers(
            pretraining_fns, n_train_batches, epochs(pretraining_epochs),
            layer_arguments=[dict(lr=pretrain_lr)] * dbn.n_layers,
            checkpoint=checkpoint_for(pretraining_fns, PRETRAINED_FILE[:-len('.npz')]))
        logger.info('Pre-training ran for %.1f s', sum(pretraining.seconds))
        # Pre-training can take hours: keep it, whatever happens next.
        pretrained_file = save_model(output_path(PRETRAINED_FILE), dbn, architecture,
                                     pretraining_costs=pretraining.costs, dataset=str(dataset))
        logger.info('pre-trained parameters saved to %s', pretrained_file)
        save_filters(dbn.sigmoid_layers[0].W.get_value(borrow=True), 'DBN_layer0_filters.png')
        if pretraining.interrupted:
            raise KeyboardInterrupt

    logger.info('... getting the finetuning functions')
    train_fn, validate_fn, test_fn = dbn.build_finetune_functions(datasets, batch_size,
                                                                  finetune_lr)
    logger.info('... finetuning the model')
    result = train_and_save(
        dbn, train_fn, validate_fn, test_fn, n_train_batches, training_epochs, MODEL_FILE,
        architecture, dataset, patience=10 * n_train_batches if patience is None else patience)
    result['pretraining'] = pretraining.as_dict()
    return result


def test_DBN(finetune_lr=0.1, pretraining_epochs=100, pretrain_lr=0.01, k=1,
             training_epochs=1000, dataset='mnist.pkl.gz', batch_size=10,
             hidden_layers_sizes=(1000, 1000, 1000), **options):
    """The original tutorial's entry point and settings: :func:`train_dbn` under its old name.

    Three layers of 1000 units, 100 pre-training epochs per layer with
    minibatches of 10: hours on a CPU.  ``options`` go to :func:`train_dbn`.
    """
    return train_dbn(finetune_lr, pretraining_epochs, pretrain_lr, k, training_epochs, dataset,
                     batch_size, hidden_layers_sizes, **options)


def load_dbn(model_file):
    """Build the :class:`DBN` saved in ``model_file`` and load it.

    Returns the DBN; compile ``theano.function([dbn.x], dbn.y_pred)`` to
    classify, or use :func:`dltutorials.load_model`, which gives ``predict``.
    Raises ModelFileError for a file of another model.
    """
    return load_network(model_file, 'DBN')


def main(argv=None):
    return command_line.main(train_dbn, MODEL_FILE, __doc__, argv)


if __name__ == '__main__':
    sys.exit(main())
