"""The RNN-RBM: polyphonic music as a sequence of RBMs that a recurrent network conditions.

A piano roll is a sequence of binary vectors :math:`v^{(t)}`, one per time
step, saying which of 88 pitches sound.  The notes of one step depend on
each other (they form chords) and on the steps before (they form
progressions).  The RNN-RBM (Boulanger-Lewandowski, Bengio and Vincent,
2012) models the first with an RBM per step and the second with a
recurrent network whose state :math:`u^{(t-1)}` sets that RBM's biases:

.. math::

    b_v^{(t)} = b_v + W_{uv} u^{(t-1)}, \\qquad
    b_h^{(t)} = b_h + W_{uh} u^{(t-1)}, \\qquad
    u^{(t)} = \\tanh(b_u + W_{uu} u^{(t-1)} + W_{vu} v^{(t)})

The RBMs share their weights :math:`W`; only their biases move with time.
Training takes each step's RBM through contrastive divergence (CD-15) and
lets the gradient of that cost flow into the recurrent weights through the
biases.  Generating runs the recurrence forward, sampling each step's
notes from its RBM by Gibbs sampling.

Run it::

    pip install -e '.[music]'                 # music21 (the chorales) and mido (MIDI files)
    python code/rnnrbm.py                     # Bach's chorales, 200 epochs
    python code/rnnrbm.py --dataset ~/Nottingham   # a folder of MIDI files (train/ valid/ test/)
    python code/rnnrbm.py --quick             # smoke test

It writes ``rnnrbm.npz`` and two generated pieces, ``sample1.mid`` and
``sample2.mid``, with their piano rolls (``.png``) into ``--output-dir``.

References:

- N. Boulanger-Lewandowski, Y. Bengio and P. Vincent, "Modeling Temporal
  Dependencies in High-Dimensional Sequences: Application to Polyphonic
  Music Generation and Transcription", ICML 2012
- I. Sutskever, G. Hinton and G. Taylor, "The Recurrent Temporal
  Restricted Boltzmann Machine", NIPS 2008
"""
import functools
import sys
from collections import OrderedDict
from pathlib import Path

import numpy

# Importing dltutorials first sets the engine's defaults (BLAS, floatX) before it reads them.
from dltutorials.support import checks, command_line
from dltutorials.support.checkpoints import checkpoint_for
from dltutorials.support.errors import DatasetError
from dltutorials.support.models import save_model
from dltutorials.support.music import CHORALES, load_music, midiwrite
from dltutorials.support.runs import (current_run, entry_point, epochs, output_path,
                                      prepare_output_dir, tutorial_logger)
from dltutorials.training import pretrain_layers

# Theano's names, from Theano or, on Python 3.12+, PyTensor (see dltutorials.support.engine).
from dltutorials.support.engine import MRG_RandomStreams, T, theano

__all__ = ['build_rbm', 'build_rnnrbm', 'RnnRbm', 'test_rnnrbm', 'frame_log_likelihood',
           'pitch_frequency_log_likelihood', 'prediction_accuracy']

logger = tutorial_logger(__name__)


def build_rbm(v, W, bv, bh, k, theano_rng=None):
    """Gibbs sampling of an RBM from ``v``, its CD cost and the original's monitor.

    Parameters
    ----------
    v : Theano matrix (n_steps, n_visible) or vector (n_visible,)
        the visible units the chain starts from (the data, in training).
    W : shared variable (n_visible, n_hidden)
        the weights.
    bv, bh : Theano expressions (n_steps, n_visible) and (n_steps, n_hidden), or vectors
        the visible and hidden biases: one row per time step in the RNN-RBM.
    k : int
        Gibbs steps.
    theano_rng : MRG_RandomStreams, optional
        draws the samples.

    Returns
    -------
    ``(v_sample, cost, monitor, updates)``: the chain's last sample; the
    contrastive divergence cost, (F(v) - F(v_sample)) per step, whose
    gradient (``v_sample`` held constant) is CD-k's; the monitor, the mean
    log-probability per step of ``v`` under the chain's last visible
    means (a reconstruction log-likelihood, in nats); the random streams'
    updates.
    """
    if theano_rng is None:
        theano_rng = MRG_RandomStreams(1234)

    def gibbs_step(v):
        mean_h = T.nnet.sigmoid(T.dot(v, W) + bh)
        h = theano_rng.binomial(size=mean_h.shape, n=1, p=mean_h, dtype=theano.config.floatX)
        activation_v = T.dot(h, W.T) + bv
        v = theano_rng.binomial(size=activation_v.shape, n=1, p=T.nnet.sigmoid(activation_v),
                                dtype=theano.config.floatX)
        return activation_v, v

    chain, updates = theano.scan(lambda v: gibbs_step(v)[1], outputs_info=[v], n_steps=k)
    v_sample = chain[-1]
    activation_v = gibbs_step(v_sample)[0]
    # log P(v | mean) = v log s(a) + (1 - v) log(1 - s(a)) = v a - softplus(a):
    # the original's xlogy0 terms, written so that no log(0) is taken.
    monitor = T.sum(v * activation_v - T.nnet.softplus(activation_v)) / v.shape[0]

    def free_energy(v):
        return -(v * bv).sum() - T.nnet.softplus(T.dot(v, W) + bh).sum()

    cost = (free_energy(v) - free_energy(v_sample)) / v.shape[0]
    return v_sample, cost, monitor, updates


def shared_normal(rng, num_rows, num_cols, scale=1):
    """A floatX shared matrix of N(0, scale^2) values."""
    return theano.shared(rng.normal(scale=scale, size=(num_rows, num_cols))
                         .astype(theano.config.floatX))


def shared_zeros(*shape):
    """A floatX shared array of zeros."""
    return theano.shared(numpy.zeros(shape, dtype=theano.config.floatX))


def build_rnnrbm(n_visible, n_hidden, n_hidden_recurrent, rng=None, theano_rng=None,
                 n_steps=200):
    """The RNN-RBM's training graph and its generating graph.

    ``rng`` (numpy.random.RandomState) draws the initial weights,
    ``theano_rng`` the Gibbs samples; ``n_steps`` steps are generated.

    Returns ``(v, v_sample, cost, monitor, params, updates_train, v_t,
    updates_generate)``: the input piano roll ``v`` (n_steps, n_visible),
    the CD-15 sample, cost and monitor of its RBMs (see :func:`build_rbm`),
    the parameters ``W, bv, bh, Wuh, Wuv, Wvu, Wuu, bu``, the training
    graph's random updates, and the generated roll ``v_t`` with its updates.
    """
    rng = numpy.random.RandomState(1234) if rng is None else rng
    theano_rng = MRG_RandomStreams(1234) if theano_rng is None else theano_rng
    W = shared_normal(rng, n_visible, n_hidden, 0.01)
    bv = shared_zeros(n_visible)
    bh = shared_zeros(n_hidden)
    Wuh = shared_normal(rng, n_hidden_recurrent, n_hidden, 0.0001)
    Wuv = shared_normal(rng, n_hidden_recurrent, n_visible, 0.0001)
    Wvu = shared_normal(rng, n_visible, n_hidden_recurrent, 0.0001)
    Wuu = shared_normal(rng, n_hidden_recurrent, n_hidden_recurrent, 0.0001)
    bu = shared_zeros(n_hidden_recurrent)
    params = W, bv, bh, Wuh, Wuv, Wvu, Wuu, bu
    for param, name in zip(params, ('W', 'bv', 'bh', 'Wuh', 'Wuv', 'Wvu', 'Wuu', 'bu')):
        param.name = name

    v = T.matrix('v')                       # a piano roll: one row per time step
    u0 = T.zeros((n_hidden_recurrent,))     # the recurrent state before the first step

    def recurrence(v_t, u_tm1):
        # The step's RBM biases, from the state the steps before left.
        bv_t = bv + T.dot(u_tm1, Wuv)
        bh_t = bh + T.dot(u_tm1, Wuh)
        generate = v_t is None
        if generate:
            v_t, _, _, updates = build_rbm(T.zeros((n_visible,)), W, bv_t, bh_t, k=25,
                                           theano_rng=theano_rng)
        u_t = T.tanh(bu + T.dot(v_t, Wvu) + T.dot(u_tm1, Wuu))
        return ([v_t, u_t], updates) if generate else [u_t, bv_t, bh_t]

    # Training: the biases of every step from the data, then all the RBMs at
    # once (their Gibbs chains are independent given the biases).
    (u_t, bv_t, bh_t), updates_train = theano.scan(
        lambda v_t, u_tm1, *_: recurrence(v_t, u_tm1), sequences=v,
        outputs_info=[u0, None, None], non_sequences=params)
    v_sample, cost, monitor, updates_rbm = build_rbm(v, W, bv_t[:], bh_t[:], k=15,
                                                     theano_rng=theano_rng)
    updates_train.update(updates_rbm)

    # Generating: each step's notes sampled from its RBM, then fed back.
    (v_t, u_t), updates_generate = theano.scan(
        lambda u_tm1, *_: recurrence(None, u_tm1), outputs_info=[None, u0],
        non_sequences=params, n_steps=n_steps)
    return (v, v_sample, cost, monitor, params, updates_train, v_t, updates_generate)


class RnnRbm(object):
    """An RNN-RBM, its training step and its generator.

    Parameters
    ----------
    n_hidden : int
        hidden units of each step's RBM.
    n_hidden_recurrent : int
        units of the recurrent state u.
    lr : float
        SGD step size.
    r : (int, int)
        the MIDI pitches modelled, from r[0] to r[1] - 1 (21-108: a piano's 88 keys).
    dt : float
        seconds per time step when MIDI files are read and generated pieces written.
    seed : int
        seeds the initial weights and the Gibbs samples.

    ``params``, ``v`` (the input roll, (n_steps, r[1] - r[0])), and the
    compiled ``train_function(roll)`` (one CD-15 step on ``roll``; returns
    the monitor), ``generate_function()`` (a generated roll, (200, r[1] -
    r[0])) and ``monitor_function(roll)`` (the monitor, no training).
    """

    def __init__(self, n_hidden=150, n_hidden_recurrent=100, lr=0.001, r=(21, 109), dt=0.3,
                 seed=1234):
        self.n_hidden, self.n_hidden_recurrent, self.lr = n_hidden, n_hidden_recurrent, lr
        self.r, self.dt = tuple(r), dt
        rng = numpy.random.RandomState(seed)
        self.theano_rng = MRG_RandomStreams(rng.randint(2 ** 30))
        (self.v, v_sample, cost, self.monitor, self.params, updates_train, self.v_t,
         self.updates_generate) = build_rnnrbm(self.r[1] - self.r[0], n_hidden,
                                               n_hidden_recurrent, rng=rng,
                                               theano_rng=self.theano_rng)
        self.input = self.v
        # CD: the sample is a constant of the gradient, not a function of the weights.
        gradient = T.grad(cost, self.params, consider_constant=[v_sample])
        self.updates_monitor = OrderedDict(updates_train)
        updates_train.update((p, p - lr * g) for p, g in zip(self.params, gradient))
        self.updates_train = updates_train

    # Each function is compiled when first used: a loaded model that only
    # generates never compiles the training step.
    @functools.cached_property
    def train_function(self):
        return theano.function([self.v], self.monitor, updates=self.updates_train)

    @functools.cached_property
    def generate_function(self):
        return theano.function([], self.v_t, updates=self.updates_generate)

    @functools.cached_property
    def predict_function(self):
        """Each step's notes sampled given the true steps before it: (n_steps, n_pitches).

        The recurrence runs over the given roll; each step's RBM then draws
        its notes as generation does (25 Gibbs steps from silence).
        """
        W, bv, bh, Wuh, Wuv, Wvu, Wuu, bu = self.params

        def biases(v_t, u_tm1):
            return [T.tanh(bu + T.dot(v_t, Wvu) + T.dot(u_tm1, Wuu)),
                    bv + T.dot(u_tm1, Wuv), bh + T.dot(u_tm1, Wuh)]
        (_, bv_t, bh_t), _ = theano.scan(
            biases, sequences=self.v, outputs_info=[T.zeros((self.n_hidden_recurrent,)),
                                                    None, None])
        notes, _, _, updates = build_rbm(T.zeros_like(self.v), W, bv_t, bh_t, k=25,
                                         theano_rng=self.theano_rng)
        return theano.function([self.v], notes, updates=updates)

    @functools.cached_property
    def monitor_function(self):
        return theano.function([self.v], self.monitor, updates=self.updates_monitor)

    def train(self, files, batch_size=100, num_epochs=200, checkpoint=None, seed=1234):
        """Train on ``files`` for ``num_epochs``: returns the loop's result (see pretrain_layers).

        ``files``: MIDI file paths (read at ``dt`` seconds per step) or
        piano rolls.  Each epoch visits the pieces in a new order (drawn
        from ``seed`` and the epoch), each in chunks of ``batch_size``
        steps, the recurrent state starting afresh at each chunk, as the
        original did.  The cost of an epoch is minus the mean monitor of its
        chunks (a cross-entropy per step, in nats).  ``checkpoint``: a name
        under which the state is saved at each epoch's end (a run's
        ``--resume`` goes on from it).
        """
        from dltutorials.support.music import midiread
        dataset = [numpy.asarray(midiread(f, self.r, self.dt) if isinstance(f, (str, Path))
                                 else f, dtype=theano.config.floatX) for f in files]
        if not any(len(sequence) for sequence in dataset):
            raise DatasetError('the training set is empty: no pieces, or pieces of no steps')
        chunks_of = [list(range(0, len(sequence), batch_size)) for sequence in dataset]
        n_chunks = sum(len(starts) for starts in chunks_of)
        order = []

        def shuffle(layer, epoch):
            pieces = numpy.random.RandomState([seed, epoch]).permutation(len(dataset))
            order[:] = [(s, start) for s in pieces for start in chunks_of[s]]

        def train_chunk(index):
            s, start = order[index]
            return -self.train_function(dataset[s][start:start + batch_size])
        train_chunk.compiled_functions = [self.train_function]

        return pretrain_layers(
            [train_chunk], n_chunks, epochs(num_epochs), labels=['Training RNN-RBM'],
            on_epoch_start=shuffle,
            checkpoint=checkpoint_for([train_chunk], checkpoint) if checkpoint else None)

    def generate(self, filename, show=True):
        """Generate a piece: write it as the MIDI file ``filename``; return its roll.

        ``show``: also draw its piano roll into ``filename`` with the suffix
        ``.png`` (the original opened a window; here the picture is a file).
        """
        piano_roll = self.generate_function()
        midiwrite(filename, piano_roll, self.r, self.dt)
        logger.info('generated %d steps: %s', len(piano_roll), filename)
        if show and current_run().plot:
            from dltutorials.support.plotting import plot_piano_roll
            plot_piano_roll(piano_roll, self.r, self.dt, Path(filename).with_suffix('.png'),
                            title='generated piano roll (%s)' % Path(filename).name)
        return piano_roll

    def __repr__(self):
        return 'RnnRbm(n_hidden=%d, n_hidden_recurrent=%d, r=%s)' % (
            self.n_hidden, self.n_hidden_recurrent, self.r)


def frame_log_likelihood(model, rolls):
    """The monitor over whole pieces: the mean log-probability of a step, in nats.

    Each piece runs through the recurrence from its start; the mean is
    over all the steps of all the pieces.
    """
    total = sum(float(model.monitor_function(numpy.asarray(roll, dtype=theano.config.floatX)))
                * len(roll) for roll in rolls)
    return total / sum(len(roll) for roll in rolls)


def pitch_frequency_log_likelihood(train_rolls, rolls):
    """The same measure for a model that knows only how often each pitch sounds.

    Each pitch is an independent coin, its probability the fraction of
    training steps it sounds in (at least 1e-4, at most 1 - 1e-4): the
    yardstick a model of chords and progressions has to beat.
    """
    p = numpy.clip(numpy.vstack(train_rolls).mean(axis=0), 1e-4, 1 - 1e-4)
    steps = numpy.vstack(rolls)
    return float(numpy.mean(steps @ numpy.log(p) + (1 - steps) @ numpy.log(1 - p)))


def accuracy(predicted, true):
    """Frame-level accuracy of notes: true positives / (true + false positives + false negatives)."""
    hits = numpy.sum(predicted * true)
    return float(hits / (numpy.sum(predicted) + numpy.sum(true) - hits))


def prediction_accuracy(model, rolls):
    """The accuracy of each step's notes drawn given the steps before, and of repeating the last step."""
    true = numpy.vstack(rolls)
    predicted = numpy.vstack([model.predict_function(numpy.asarray(roll, theano.config.floatX))
                              for roll in rolls])
    repeated = numpy.vstack([numpy.vstack([numpy.zeros_like(roll[:1]), roll[:-1]])
                             for roll in rolls])
    return accuracy(predicted, true), accuracy(repeated, true)


@entry_point(batch_size=checks.positive_int, num_epochs=checks.positive_int,
             n_hidden=checks.positive_int, n_hidden_recurrent=checks.positive_int,
             lr=checks.positive, dt=checks.positive, n_samples=checks.non_negative_int,
             seed=checks.seed)
def test_rnnrbm(batch_size=100, num_epochs=200, dataset=CHORALES, n_hidden=150,
                n_hidden_recurrent=100, lr=0.001, dt=0.3, n_samples=2, seed=1234,
                verbose=True):
    """Train an RNN-RBM on ``dataset``, save it, and generate ``n_samples`` pieces.

    Parameters
    ----------
    batch_size : int
        time steps per training chunk.
    num_epochs : int
        passes over the training pieces.
    dataset : str
        ``bach-chorales`` (music21's corpus, one step per quarter note), or
        a folder of MIDI files (with train/, valid/ and test/ subfolders, or
        all of it to train).
    n_hidden : int
        hidden units of each step's RBM.
    n_hidden_recurrent : int
        units of the recurrent state.
    lr : float
        SGD step size.
    dt : float
        seconds per step of MIDI files read and written.
    n_samples : int
        pieces generated at the end (sample1.mid ...).
    seed : int
        seeds the weights, the samples and the order of the pieces.
    verbose : bool
        show the progress where no logging is set up (a notebook).

    Returns
    -------
    The trained :class:`RnnRbm`, as the original did, with ``result``: a
    dict of ``costs`` (per epoch), ``seconds``, ``stopped_by``,
    ``valid_log_likelihood`` and ``test_log_likelihood`` (where the dataset
    has those splits), ``model_file`` and ``sample_files``.
    """
    prepare_output_dir()
    r = (21, 109)
    splits = load_music(dataset, r, dt)
    if current_run().quick:
        splits = {kind: rolls[:2] for kind, rolls in splits.items()}
    model = RnnRbm(n_hidden, n_hidden_recurrent, lr, r, dt, seed)
    logger.info('... training %r on %d pieces (%d steps)', model, len(splits['train']),
                sum(len(roll) for roll in splits['train']))
    result = model.train(splits['train'], batch_size, num_epochs, checkpoint='rnnrbm',
                         seed=seed)
    architecture = dict(n_hidden=n_hidden, n_hidden_recurrent=n_hidden_recurrent, r=list(r),
                        dt=dt)
    summary = dict(costs=result.costs[0], seconds=result.seconds[0],
                   stopped_by=result.stopped_by)
    for kind in ('valid', 'test'):
        if splits[kind] and not result.interrupted:
            summary[kind + '_log_likelihood'] = frame_log_likelihood(model, splits[kind])
            summary[kind + '_accuracy'], repeated = prediction_accuracy(model, splits[kind])
            logger.info('%s pieces (%d): frame log-likelihood %.4f nats (pitch frequencies '
                        'alone: %.4f); accuracy of the next step %.1f %% (repeating the last '
                        'step: %.1f %%)', kind, len(splits[kind]),
                        summary[kind + '_log_likelihood'],
                        pitch_frequency_log_likelihood(splits['train'], splits[kind]),
                        100 * summary[kind + '_accuracy'], 100 * repeated)
    # (The seconds stay out of the file: the same run writes the same bytes.)
    summary['model_file'] = str(save_model(
        output_path('rnnrbm.npz'), model, architecture, dataset=str(dataset),
        **{name: value for name, value in summary.items() if name != 'seconds'}))
    summary['sample_files'] = []
    for k in range(0 if result.interrupted else n_samples):
        sample_file = output_path('sample%d.mid' % (k + 1))
        model.generate(sample_file)
        summary['sample_files'].append(str(sample_file))
    model.result = summary
    if result.interrupted:
        raise KeyboardInterrupt
    return model


def main(argv=None):
    return command_line.main(test_rnnrbm, None, __doc__, argv)


if __name__ == '__main__':
    sys.exit(main())
