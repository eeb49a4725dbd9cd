"""The patience-based early-stopping loop every supervised model trains with.

From the Getting Started chapter: train on minibatches, look at the error on
the validation set every ``validation_frequency`` minibatches, and stop when
``patience`` minibatches have passed without a significant improvement.  A
new best validation score that beats the old one by more than the
``improvement_threshold`` ratio extends patience to ``iteration *
patience_increase``.  The test error is measured only for the best model so
far, so that the test set never steers training.

The loop itself knows nothing of Theano: it calls ``train_fn(minibatch_index)``
and two scorers that return an error rate over a whole set (see
:func:`set_scorer`), so it can be tested with scripted numbers.  Beside it,
:func:`build_minibatch_functions` compiles those three functions for a
supervised model the tutorial's way.

The unsupervised models (denoising autoencoders, RBMs) and the deep networks
built from them are first trained without labels, one layer after the other:
:func:`pretrain_layers` is that greedy layer-wise loop.

A script's run wraps the loop: :func:`load_training_data` loads the
dataset and counts the minibatches (one of each split with ``--quick``),
:func:`train_and_save` runs the early-stopping loop with its checkpoint,
saving each new best model and drawing the learning curve.
"""
import dataclasses
import math
import time
from collections import OrderedDict
from pathlib import Path

import numpy

from dltutorials.data_loading import (load_data, minibatch_givens, n_examples, shared_dataset,
                                      shared_storage)
from dltutorials.support.checkpoints import checkpoint_for
from dltutorials.support.errors import DivergenceError, HyperparameterError
from dltutorials.support.models import Model, model_variables, save_model
from dltutorials.support.runs import (current_run, epochs, output_path, prepare_output_dir,
                                      stop_requests, tutorial_logger)
from dltutorials.updates import OPTIMIZERS, clip_grad_norm, scheduled_learning_rate
from dltutorials.updates import max_norm as constrain_max_norm
# Theano's names, from Theano or, on Python 3.12+, PyTensor (see dltutorials.support.engine).
from dltutorials.support.engine import T, theano

logger = tutorial_logger(__name__)

#: The smallest minibatch the validation and test sets are scored in.
SCORING_BATCH_SIZE = 1000


@dataclasses.dataclass
class TrainingResult:
    """What :func:`early_stopping` did.  Errors are fractions in [0, 1]."""

    best_validation_error: float
    test_error: float          # of the model with the best validation error
    best_iteration: int        # 0-based minibatch count at which that model was seen
    epochs: int                # epochs started
    iterations: int            # minibatches trained
    seconds: float
    stopped_by: str            # 'patience', 'n_epochs' or 'interrupted'
    history: list = dataclasses.field(default_factory=list)  # per validation: dict

    def as_dict(self):
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Score:
    """What the validation and test scores are, for the log lines and the learning curve.

    The loop keeps the model of the *lowest* score; by default the score is
    an error rate (a fraction, shown in percent).  A language model's is a
    loss in nats per character (:data:`NATS_PER_CHARACTER` in char_rnn).
    """

    name: str = 'error'        # 'validation error', 'test error of best model'
    unit: str = '%'
    scale: float = 100.0       # shown as value * scale
    decimals: int = 2

    def describe(self, value):
        return '%.*f %s' % (self.decimals, value * self.scale, self.unit)


#: The score of the classifiers: an error rate.
ERROR_RATE = Score()


def set_scorer(batch_error, n_examples, batch_size):
    """Return a function giving the error rate over all ``n_examples`` of a set.

    ``batch_error(i)`` is the mean error on minibatch ``i``; the last batch may
    be partial, so the means are weighted by batch length.  (The original
    tutorial averaged full batches only: with batches of 600 it scored 600 of
    1,000 validation digits.)
    """
    n_batches = int(math.ceil(n_examples / float(batch_size)))

    def score():
        total = 0.0
        for index in range(n_batches):
            length = min(batch_size, n_examples - index * batch_size)
            total += float(batch_error(index)) * length
        return total / n_examples

    return score


def compile_set_scorer(x, y, errors, set_x, set_y, batch_size):
    """Compile ``errors`` (the mean 0-1 loss of x, y) into a scorer over a whole shared set.

    Returns a function of no argument giving the error rate over every
    example of (set_x, set_y), computed in minibatches of ``batch_size``.
    """
    index = T.lscalar('index')
    batch_error = theano.function(
        [index], errors, givens=minibatch_givens(x, y, set_x, set_y, index, batch_size))
    return set_scorer(batch_error, n_examples(set_x), batch_size)


def build_minibatch_functions(x, y, cost, errors, updates, datasets, batch_size):
    """Compile a supervised model's training step and its two scorers.

    ``x`` and ``y`` are the model's symbolic input and labels; ``cost`` and
    ``errors`` (the mean 0-1 loss) are expressions of them; ``datasets`` is
    what :func:`~dltutorials.data_loading.load_data` returns.  Minibatches
    are taken by index from the shared data through ``givens``, so no data
    crosses from host to device in the loop.

    Returns ``(train_fn, validate_fn, test_fn)``: ``train_fn(i)`` applies
    ``updates`` on training minibatch ``i`` and returns its cost; the scorers
    return the error rate over every example of the validation / test set,
    in minibatches of at least ``SCORING_BATCH_SIZE``.
    """
    index = T.lscalar('index')
    (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = datasets
    train_fn = theano.function(
        [index], cost, updates=updates,
        givens=minibatch_givens(x, y, train_x, train_y, index, batch_size))
    # Scoring changes no parameter, so it can take bigger minibatches than
    # training: far fewer calls (for the MLP's batches of 20, 20 times fewer).
    scoring_batch_size = max(batch_size, SCORING_BATCH_SIZE)
    return (train_fn,
            compile_set_scorer(x, y, errors, valid_x, valid_y, scoring_batch_size),
            compile_set_scorer(x, y, errors, test_x, test_y, scoring_batch_size))


def training_updates(network, cost, learning_rate, optimizer='sgd', schedule='constant',
                     n_train_batches=1, max_norm=None, constrained=(), max_grad_norm=None):
    """All that one training step changes: ``network.params``, and the state of what changes them.

    The update rule ``optimizer`` (a name of
    :data:`~dltutorials.updates.OPTIMIZERS`) on the parameters, at a
    learning rate that follows ``schedule`` (over epochs of
    ``n_train_batches`` minibatches; see
    :func:`~dltutorials.updates.scheduled_learning_rate`); with
    ``max_norm``, the weight matrices ``constrained`` kept within it; and
    the network's own ``updates`` (batch normalization's running averages).
    With ``max_grad_norm``, the gradient is first rescaled to at most that
    norm (:func:`~dltutorials.updates.clip_grad_norm`).
    """
    schedule_updates = OrderedDict()
    if schedule != 'constant':
        learning_rate, schedule_updates = scheduled_learning_rate(schedule, learning_rate,
                                                                  n_train_batches)
    gradients = cost if max_grad_norm is None else \
        clip_grad_norm(cost, network.params, max_grad_norm)
    updates = OPTIMIZERS[optimizer](gradients, network.params, learning_rate)
    if max_norm is not None:
        updates = constrain_max_norm(updates, constrained, max_norm)
    updates.update(schedule_updates)
    updates.update(getattr(network, 'updates', {}))
    return updates


def record_validation(result, validation_error, test_fn, epoch, iteration, where='',
                      score=ERROR_RATE):
    """Add one validation to ``result``; on a new best, score the test set.  True if new best.

    ``where`` says in the log where in the epoch it happened
    (e.g. ``', minibatch 5/100'``).  ``test_fn`` None: there is no test set
    (the test score stays NaN).  Shared by every loop that keeps the model
    of the best validation error (early stopping, conjugate gradients).
    """
    record = {'epoch': epoch, 'iteration': iteration,
              'validation_error': validation_error, 'test_error': None}
    result.history.append(record)
    if validation_error >= result.best_validation_error:
        return False
    result.best_validation_error = validation_error
    result.best_iteration = iteration
    if test_fn is not None:
        result.test_error = record['test_error'] = float(test_fn())
        logger.info('     epoch %i%s, test %s of best model %s',
                    epoch, where, score.name, score.describe(result.test_error))
    return True


def log_summary(result, score=ERROR_RATE):
    """The loop's last two log lines: best scores, and where the time went."""
    logger.info('Optimization complete with best validation score of %s, %s',
                score.describe(result.best_validation_error),
                'no test set' if math.isnan(result.test_error)
                else 'with test performance %s' % score.describe(result.test_error))
    logger.info('The code ran for %d epochs (%d minibatches, stopped by %s) in %.1f s, '
                '%.2f s per epoch', result.epochs, result.iterations, result.stopped_by,
                result.seconds, result.seconds / max(result.epochs, 1))


#: A minibatch cost this many times the first one (or 1, if larger) means training diverged.
DIVERGENCE_FACTOR = 1000


def check_cost(cost, first_cost, epoch, minibatch_index, n_train_batches, what='training'):
    """Raise DivergenceError if ``cost`` is not a finite number, or exploded since ``first_cost``.

    Once the cost is NaN or infinite, every later step is too: the
    parameters are lost, so there is no point going on.  A cost a thousand
    times its first value is lost as surely, though it may stay finite (a
    softmax regression's weights grow without bound at a huge learning rate,
    and its cost with them).  The usual cause is a learning rate too large
    for the model.
    """
    if math.isfinite(cost) and cost <= DIVERGENCE_FACTOR * max(first_cost, 1.0):
        return
    change = ('became %s' % cost if not math.isfinite(cost)
              else 'rose from %.3g to %.3g' % (first_cost, cost))
    raise DivergenceError('%s diverged: the cost %s in epoch %d, minibatch %d/%d; '
                          'try a smaller learning rate'
                          % (what, change, epoch, minibatch_index + 1, n_train_batches))


def new_result():
    """A :class:`TrainingResult` before any training: no best model yet."""
    return TrainingResult(best_validation_error=math.inf, test_error=math.nan,
                          best_iteration=-1, epochs=0, iterations=0, seconds=0.0,
                          stopped_by='n_epochs')


@dataclasses.dataclass
class LoopState:
    """Where :func:`early_stopping` is: all a checkpoint needs, besides the parameters, to go on."""

    result: TrainingResult
    patience: int
    epoch: int = 1             # the epoch in progress, 1-based
    minibatch: int = 0         # the next minibatch of that epoch
    first_cost: float = None   # the first minibatch's cost: the yardstick of divergence
    finished: bool = False

    def as_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, saved):
        state = cls(**dict(saved, result=TrainingResult(**saved['result'])))
        if not state.finished:
            state.result.stopped_by = 'n_epochs'    # not 'interrupted': it goes on
        return state


def early_stopping(train_fn, validate_fn, test_fn, n_train_batches, n_epochs,
                   patience=10000, patience_increase=2, improvement_threshold=0.995,
                   validation_frequency=None, on_new_best=None, on_epoch_start=None,
                   checkpoint=None, patience_window=None, checkpoint_each_validation=False,
                   score=ERROR_RATE, clock=time.perf_counter):
    """Train until patience runs out or ``n_epochs`` have passed; return a :class:`TrainingResult`.

    A cost that is not finite, or a thousand times the first, raises
    DivergenceError (see :func:`check_cost`).  A Ctrl-C stops training after
    the current minibatch: the state is saved, and the result so far is
    returned with ``stopped_by='interrupted'``; a second Ctrl-C stops at once.

    Parameters
    ----------
    train_fn : callable(int) -> float
        trains on one minibatch, given its index, and returns its cost.
    validate_fn, test_fn : callable() -> float
        the error rate (or ``score``) over the whole validation / test set;
        ``test_fn`` None: no test set.
    n_train_batches : int
        minibatches per epoch.
    n_epochs : int
        the most epochs to run.
    patience : int
        look at this many minibatches at least, whatever happens.
    patience_increase : float
        on a significant improvement, wait until ``iteration * patience_increase``.
    improvement_threshold : float
        a relative improvement counts as significant below this ratio.
    validation_frequency : int, optional
        validate every this many minibatches; default
        ``min(n_train_batches, patience // 2)``: at least twice before giving up.
    on_new_best : callable(TrainingResult), optional
        called with the result so far on each new best validation error,
        for instance to save the parameters.
    on_epoch_start : callable(int), optional
        called with the epoch's number (from 1) before its first minibatch,
        also when a resumed run goes on in the middle of it: to prepare the
        epoch's training data, say (see :func:`~dltutorials.preprocessing.data_of_each_epoch`).
    checkpoint : Checkpoint, optional
        saves the loop's state (a :class:`LoopState`) with the parameters
        at the end of every epoch and when stopped; if it holds the state
        of an interrupted run (``checkpoint.saved``), training goes on from
        there (see :mod:`dltutorials.support.checkpoints`).
    patience_window : int, optional
        instead of the rule above, stop once this many minibatches have
        passed since the best validation error (the original lstm.py's
        rule: ``patience`` validations without a new best).
    checkpoint_each_validation : bool
        save the checkpoint after every validation too, not only at the
        end of each epoch (for epochs of many minutes).
    score : Score
        what the scores are, for the log: an error rate by default.
    """
    if validation_frequency is None:
        validation_frequency = min(n_train_batches, max(patience // 2, 1))
    max_iterations = n_epochs * n_train_batches

    if checkpoint is not None and checkpoint.saved is not None:
        state = LoopState.from_dict(checkpoint.saved)
    else:
        state = LoopState(result=new_result(), patience=patience)
    result = state.result
    start = clock() - result.seconds

    def save_state(where):
        if checkpoint is not None:
            result.seconds = clock() - start
            checkpoint.save(state.as_dict(), where)

    try:
        with stop_requests() as stop:
            while not state.finished and state.epoch <= n_epochs:
                epoch = result.epochs = state.epoch
                if on_epoch_start is not None:
                    on_epoch_start(epoch)
                for minibatch_index in range(state.minibatch, n_train_batches):
                    cost = float(train_fn(minibatch_index))
                    if state.first_cost is None:
                        state.first_cost = cost
                    check_cost(cost, state.first_cost, epoch, minibatch_index, n_train_batches)
                    iteration = (epoch - 1) * n_train_batches + minibatch_index
                    result.iterations = iteration + 1
                    state.minibatch = minibatch_index + 1

                    if (iteration + 1) % validation_frequency == 0:
                        validation_error = float(validate_fn())
                        elapsed = clock() - start
                        left = elapsed / (iteration + 1) * (
                            min(max_iterations, state.patience + 1) - iteration - 1)
                        where = ', minibatch %i/%i' % (minibatch_index + 1, n_train_batches)
                        logger.info('epoch %i%s, validation %s %s '
                                    '(%.1f s elapsed, about %.0f s left)',
                                    epoch, where, score.name, score.describe(validation_error),
                                    elapsed, max(left, 0.0))
                        # A significant improvement extends patience (before the
                        # best score is replaced by this one).
                        if patience_window is None and validation_error < (
                                result.best_validation_error * improvement_threshold):
                            state.patience = max(state.patience, iteration * patience_increase)
                        if record_validation(result, validation_error, test_fn, epoch,
                                             iteration, where, score):
                            result.seconds = clock() - start
                            if patience_window is not None:
                                state.patience = max(state.patience,
                                                     iteration + patience_window)
                            if on_new_best is not None:
                                on_new_best(result)
                        if checkpoint_each_validation and minibatch_index + 1 < n_train_batches:
                            save_state('epoch %d%s' % (epoch, where))

                    if state.patience <= iteration:
                        result.stopped_by = 'patience'
                        state.finished = True
                        break
                    if stop.requested:
                        result.stopped_by = 'interrupted'
                        break
                else:               # the epoch ran to its end
                    state.epoch, state.minibatch = epoch + 1, 0
                    state.finished = state.epoch > n_epochs
                save_state('epoch %d, minibatch %d/%d'
                           % (epoch, state.minibatch or n_train_batches, n_train_batches))
                if stop.requested and not state.finished:   # (maybe pressed while saving)
                    result.stopped_by = 'interrupted'
                    break
    except KeyboardInterrupt:
        result.stopped_by = 'interrupted'
        logger.warning('stopped at once in epoch %i; the state at the end of the last epoch '
                       'is kept', result.epochs)
    result.seconds = clock() - start
    log_summary(result, score)
    return result


@dataclasses.dataclass
class PretrainingResult:
    """What :func:`pretrain_layers` did."""

    costs: list                # per layer trained: the mean cost of each epoch
    seconds: list              # per layer trained
    stopped_by: str = 'n_epochs'   # or 'interrupted'
    # Per layer trained, per epoch: the means of the values the function
    # returned after its cost (none for a function that returns its cost alone).
    monitors: list = dataclasses.field(default_factory=list)

    @property
    def interrupted(self):
        return self.stopped_by == 'interrupted'

    def as_dict(self):
        return dataclasses.asdict(self)


@dataclasses.dataclass
class PretrainingState:
    """Where :func:`pretrain_layers` is: all a checkpoint needs, besides the parameters, to go on."""

    result: PretrainingResult
    layer: int = 0             # the layer in training
    epoch: int = 1             # its epoch in progress, 1-based
    minibatch: int = 0         # the next minibatch of that epoch
    total: float = 0.0         # the sum of the epoch's costs so far
    monitor_totals: list = dataclasses.field(default_factory=list)   # and of its monitors
    first_cost: float = None   # the layer's first cost: the yardstick of divergence
    finished: bool = False

    def as_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, saved):
        state = cls(**dict(saved, result=PretrainingResult(**saved['result'])))
        state.result.stopped_by = 'n_epochs'
        return state


def pretrain_layers(pretraining_fns, n_train_batches, pretraining_epochs, layer_arguments=None,
                    labels=None, checkpoint=None, on_epoch_start=None, on_epoch_end=None,
                    monitor_names=(), clock=time.perf_counter):
    """Greedy layer-wise training: each layer in turn, ``pretraining_epochs`` epochs each.

    Parameters
    ----------
    pretraining_fns : list of functions (index, keyword arguments) -> float
        ``pretraining_fns[k]`` trains layer ``k`` on training minibatch
        ``index`` and returns its cost (for an autoencoder, the reconstruction
        cost), or a list: the cost, then values to watch (see
        ``monitor_names``); layer ``k`` sees the data through the layers
        below it, which stay fixed while it trains.
    n_train_batches : int
        minibatches per epoch.
    pretraining_epochs : int
        epochs per layer; 0 skips pre-training.
    layer_arguments : list of dict, optional
        keyword arguments for each layer's function (corruption level,
        learning rate ...).
    labels : list of str, optional
        how the log names each layer; default ``'Pre-training layer k'``.
    checkpoint : Checkpoint, optional
        saves the state (a :class:`PretrainingState`) with the parameters
        at the end of every epoch and when stopped; goes on from the state
        it holds, if any (see :mod:`dltutorials.support.checkpoints`).
    on_epoch_start : function (layer, epoch), optional
        called before each epoch's first minibatch, and before the rest of
        an epoch resumed from a checkpoint (to draw the epoch's order of
        the examples, the same again when resumed).
    on_epoch_end : function (layer, epoch), optional
        called after each epoch that ran to its end (to draw filters ...).
    monitor_names : sequence of str
        the names the log gives the values returned after the cost; each
        is averaged over the epoch, as the cost is.

    Returns
    -------
    PretrainingResult: the mean cost (and monitors) of every epoch of every layer trained.
    A cost that is not finite or explodes raises DivergenceError (see
    :func:`check_cost`).  A Ctrl-C ends pre-training after the current
    minibatch with ``stopped_by='interrupted'``, the state saved; what the
    layers learnt so far is kept in their parameters.
    """
    n_layers = len(pretraining_fns)
    layer_arguments = [{}] * n_layers if layer_arguments is None else list(layer_arguments)
    labels = ['Pre-training layer %d' % k for k in range(n_layers)] if labels is None \
        else list(labels)
    if not len(layer_arguments) == len(labels) == n_layers:
        raise ValueError('got %d pre-training functions, %d argument sets and %d labels'
                         % (n_layers, len(layer_arguments), len(labels)))

    if checkpoint is not None and checkpoint.saved is not None:
        state = PretrainingState.from_dict(checkpoint.saved)
    else:
        state = PretrainingState(result=PretrainingResult(costs=[], seconds=[]))
    result = state.result
    if pretraining_epochs == 0:
        return result

    def save_state(where):
        if checkpoint is not None:
            checkpoint.save(state.as_dict(), where)

    try:
        with stop_requests() as stop:
            for layer in range(state.layer, n_layers):
                train_fn, arguments, label = (pretraining_fns[layer], layer_arguments[layer],
                                              labels[layer])
                if len(result.costs) == layer:
                    result.costs.append([])
                    result.monitors.append([])
                    result.seconds.append(0.0)
                start = clock() - result.seconds[layer]
                while state.epoch <= pretraining_epochs:
                    epoch = state.epoch
                    if on_epoch_start is not None:
                        on_epoch_start(layer, epoch)
                    for batch_index in range(state.minibatch, n_train_batches):
                        cost, *monitors = numpy.ravel(train_fn(batch_index, **arguments))
                        cost = float(cost)
                        if state.first_cost is None:
                            state.first_cost = cost
                        check_cost(cost, state.first_cost, epoch, batch_index,
                                   n_train_batches, label)
                        state.total += cost
                        state.monitor_totals = [
                            total + float(value) for total, value in zip(
                                state.monitor_totals or [0.0] * len(monitors), monitors)]
                        state.minibatch = batch_index + 1
                        if stop.requested:
                            break
                    else:           # the epoch ran to its end
                        result.costs[layer].append(state.total / n_train_batches)
                        result.monitors[layer].append(
                            [total / n_train_batches for total in state.monitor_totals])
                        logger.info('%s, epoch %d, cost %.4f%s (%.1f s)', label, epoch,
                                    result.costs[layer][-1], ''.join(
                                        ', %s %.4f' % named for named in zip(
                                            monitor_names, result.monitors[layer][-1])),
                                    clock() - start)
                        state.epoch, state.minibatch, state.total = epoch + 1, 0, 0.0
                        state.monitor_totals = []
                        if on_epoch_end is not None:
                            on_epoch_end(layer, epoch)
                    result.seconds[layer] = clock() - start
                    save_state('%s, epoch %d, minibatch %d/%d' % (
                        label, epoch, state.minibatch or n_train_batches, n_train_batches))
                    if stop.requested:
                        result.stopped_by = 'interrupted'
                        logger.warning('interrupted while pre-training: keeping what the '
                                       'layers learnt so far')
                        return result
                state.layer, state.epoch, state.first_cost = layer + 1, 1, None
            state.finished = True
            save_state('the end of pre-training')
    except KeyboardInterrupt:
        result.stopped_by = 'interrupted'
        logger.warning('stopped at once while pre-training: keeping what the layers learnt '
                       'so far; the state at the end of the last epoch is kept')
    return result


# --------------------------------------------------------------------------
# A script's training run: its data, its loop, its saved model
# --------------------------------------------------------------------------

def load_training_data(dataset, batch_size, overfit=None):
    """``load_data(dataset)`` and the number of full training minibatches per epoch.

    In a quick run each split keeps one minibatch.  With ``overfit`` (a
    number of examples), the lecture's first debugging step: training keeps
    that many examples, and they are also the validation and test sets, so
    the scores are training errors.  Raises HyperparameterError when
    ``batch_size`` exceeds the training set, and OutputFolderError when the
    output folder cannot take the results.
    """
    prepare_output_dir()
    datasets = load_data(dataset, limit=batch_size if current_run().quick else None)
    if overfit:
        train_x, train_y = datasets[0]
        if overfit > n_examples(train_x):
            raise HyperparameterError('overfit %d is more than the %d training examples'
                                      % (overfit, n_examples(train_x)))
        few = shared_dataset((train_x.get_value()[:overfit],
                              shared_storage(train_y).get_value()[:overfit]))
        datasets = [few, few, few]
    n_train = n_examples(datasets[0][0])
    if n_train < batch_size:
        raise HyperparameterError('batch_size %d is larger than the %d training examples'
                                  % (batch_size, n_train))
    return datasets, n_train // batch_size


def train_and_save(network, train_fn, validate_fn, test_fn, n_train_batches, n_epochs,
                   model_file, architecture, dataset, overfit=None, **loop_options):
    """Train ``network`` with early stopping; save each new best model; return a result dict.

    The loop's state is checkpointed to ``<model>.checkpoint.npz`` (see
    :mod:`dltutorials.support.checkpoints`).  The best parameters go to
    ``model_file`` in the run's output folder, with ``architecture`` (the
    keyword arguments that rebuild ``network``) and the scores; at the end
    they are put back into ``network``, so the returned model is the best
    one, not the last.  With plots on, the
    learning curve goes beside it as ``<model>_curve.png``.

    With ``overfit`` (see :func:`load_training_data`) no model file and no
    plot are written (they would replace a real run's) and the last line
    says whether the training error reached 0.

    Returns the :class:`~dltutorials.training.TrainingResult` fields plus
    ``model_file``, ``plot_file`` (None without a plot) and ``model`` (a
    :class:`~dltutorials.support.models.Model` of ``network``).
    """
    model_file = output_path(model_file)
    best_values = []
    checkpoint = checkpoint_for([train_fn], Path(model_file).stem, kept=best_values)

    def save_best(result):
        best_values[:] = [variable.get_value() for variable in model_variables(network)]
        if not overfit:
            save_model(model_file, network, architecture, dataset=str(dataset),
                       best_validation_error=result.best_validation_error,
                       test_error=result.test_error)

    result = early_stopping(train_fn, validate_fn, test_fn, n_train_batches, epochs(n_epochs),
                            on_new_best=save_best, checkpoint=checkpoint, **loop_options)
    score = loop_options.get('score')
    for variable, value in zip(model_variables(network), best_values):
        variable.set_value(value)
    if overfit:
        report_overfit(result, overfit)
        best_values = []        # (no file)
    elif best_values:
        logger.info('best model saved to %s', model_file)
    plot_file = None
    if current_run().plot and result.history and not overfit:
        from dltutorials.support.plotting import plot_learning_curve  # (matplotlib: on demand)
        plot_file = plot_learning_curve(
            result.history, n_train_batches, model_file.with_name(model_file.stem + '_curve.png'),
            title='%s on %s' % (type(network).__name__, Path(str(dataset)).name),
            **(dict(score_name=score.name, unit=score.unit, scale=score.scale) if score else {}))
    return dict(result.as_dict(), model_file=str(model_file) if best_values else None,
                plot_file=str(plot_file) if plot_file else None, model=Model(network))


def report_overfit(result, n_examples):
    """Say whether training on ``n_examples`` drove their error to 0, and what else to suspect."""
    if result.best_validation_error == 0:
        first = next(record for record in result.history if record['validation_error'] == 0)
        logger.info('overfit: the training error on %d examples reached 0 in epoch %d: the model '
                    'can learn; now train on all the data', n_examples, first['epoch'])
    else:
        logger.warning('overfit: the training error on %d examples is still %.2f %% after %d '
                       'epochs: a model that cannot fit a few examples has a bug, a learning '
                       'rate far off, or too few epochs', n_examples,
                       100 * result.best_validation_error, result.epochs)
