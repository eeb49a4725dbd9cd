r"""A character-level language model: a recurrent network that writes Shakespeare.

A language model gives the probability of a text one piece at a time,
each piece given all the ones before it.  Here the pieces are characters:

.. math::

    P(c_1, \dots, c_N) = \prod_t P(c_{t+1} \mid c_1, \dots, c_t), \qquad
    P(c_{t+1} \mid c_1, \dots, c_t) = \mathrm{softmax}(h_t V + d)

where :math:`h_t` is the state of a recurrent layer (an LSTM by default;
see :mod:`dltutorials.recurrent`) that has read the characters up to
:math:`c_t`, each as a one-hot vector.  Training minimises the negative
log-likelihood of the next character, averaged over the text: the loss in
*nats per character* (divided by :math:`\ln 2`, in bits: a model that knew
nothing about 65 characters would need :math:`\log_2 65 = 6.0` bits).

The text is cut into ``batch_size`` consecutive streams read side by side,
``seq_length`` characters at a time.  Backpropagation runs through those
``seq_length`` steps only (*truncated* BPTT), but the state is carried from
one minibatch to the next, so the model reads each stream from its start:
the layers' states before the first step (``initial_states``) are inputs of
the graph, and their states after the last step (``final_states``) become
the next minibatch's.  The first 90 % of the characters train, the last 10 %
validate.

Once trained, the model writes: it reads a *prime* text, draws the next
character from :math:`P(c_{t+1} \mid \dots)`, reads it, and so on.  A
*temperature* :math:`\tau` sharpens (:math:`\tau < 1`) or flattens the
distribution, :math:`P^{1/\tau}` renormalised.

Run it::

    python code/char_rnn.py        # Tiny Shakespeare (downloaded, or the shipped excerpt)
    python code/char_rnn.py --dataset ../shared/data/tinyshakespeare/input.txt   # 28 minutes
    python code/char_rnn.py --sample 500 --temperature 0.8 --prime 'ROMEO:'
    python code/char_rnn.py --quick                  # seconds

References:

- J. Elman, "Finding structure in time", Cognitive Science 1990
- I. Sutskever, J. Martens, G. Hinton, "Generating text with recurrent neural
  networks", ICML 2011
- A. Graves, "Generating sequences with recurrent neural networks", arXiv:1308.0850, 2013
- A. Karpathy, "The unreasonable effectiveness of recurrent neural networks", 2015
  (char-rnn, and the Tiny Shakespeare file)
"""
import sys

import numpy

# Importing dltutorials first sets the engine's defaults (BLAS, floatX) before it reads them.
from dltutorials.logistic_sgd import LogisticRegression
from dltutorials.recurrent import ENCODERS, LOOPS
from dltutorials.support import checks, command_line
from dltutorials.support.datasets import read_text, resolve_text
from dltutorials.support.errors import DatasetError, HyperparameterError, ModelFileError
from dltutorials.support.runs import (current_run, entry_point, output_path, prepare_output_dir,
                                      run_options, tutorial_logger)
from dltutorials.training import Score, train_and_save, training_updates
from dltutorials.updates import OPTIMIZERS, SCHEDULES
# Theano's names, from Theano or, on Python 3.12+, PyTensor (see dltutorials.support.engine).
from dltutorials.support.engine import T, theano

__all__ = ['Vocabulary', 'CharLanguageModel', 'text_streams', 'compile_sampler', 'sample',
           'train_char_rnn', 'load_char_rnn', 'NATS_PER_CHARACTER']

logger = tutorial_logger(__name__)

#: The language model's score: the mean negative log-likelihood of the next character.
NATS_PER_CHARACTER = Score(name='loss', unit='nats/char', scale=1.0, decimals=4)

#: The share of the text, at its end, that validates.
VALID_FRACTION = 0.1

#: The sample logged after every epoch: its length and temperature.
EPOCH_SAMPLE = dict(length=200, temperature=0.8)


# --------------------------------------------------------------------------
# The data: characters as numbers, the text as streams
# --------------------------------------------------------------------------

class Vocabulary(object):
    """The characters of a text, numbered 0 .. n - 1 in code-point order."""

    def __init__(self, characters):
        self.characters = ''.join(sorted(set(characters)))
        self.index = {character: i for i, character in enumerate(self.characters)}

    def __len__(self):
        return len(self.characters)

    def encode(self, text):
        """The characters of ``text`` as an int32 array of their numbers (KeyError if unknown)."""
        return numpy.array([self.index[character] for character in text], dtype='int32')

    def decode(self, numbers):
        return ''.join(self.characters[k] for k in numbers)

    def __repr__(self):
        return 'Vocabulary(%d characters)' % len(self)


def text_streams(numbers, n_streams):
    """The text cut into ``n_streams`` consecutive pieces read side by side.

    ``numbers``: the text's characters as numbers, (N,).  Returns an int32
    array (N // n_streams, n_streams): column j is the j-th piece, time
    runs down the rows; the last N mod n_streams characters are left out.
    """
    length = len(numbers) // n_streams
    return numbers[:length * n_streams].reshape(n_streams, length).T.copy()


# --------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------

class CharLanguageModel(object):
    """Recurrent layers over one-hot characters, then a softmax over the next character.

    Parameters
    ----------
    rng : numpy.random.RandomState
        draws the initial weights.
    input : Theano int matrix (time, batch)
        the characters' numbers.
    vocabulary : str
        the characters the model knows, in the order of their numbers.
    n_hidden : int
        units per recurrent layer.
    n_layers : int
        recurrent layers, each reading the states of the one below.
    encoder : str
        the recurrent layer: lstm, gru or rnn.
    initial_states : list of Theano matrices (batch, n_hidden), optional
        the states before the first step, layer by layer (h, and the LSTM's
        c); default: new symbolic inputs, which the compiled functions are
        given (see ``initial_states`` below).
    loop : str
        the recurrent layers' loop over time: ``fused`` (one C op) or ``scan``
        (see :class:`~dltutorials.recurrent.RecurrentLayer`).
    """

    def __init__(self, rng, input, vocabulary, n_hidden=256, n_layers=1, encoder='lstm',
                 initial_states=None, loop='fused'):
        self.input, self.vocabulary = input, vocabulary
        self.n_hidden, self.n_layers, self.encoder = n_hidden, n_layers, encoder
        layer_class, n_chars = ENCODERS[encoder], len(vocabulary)
        if initial_states is None:
            initial_states = [T.matrix('layer%d_state%d' % (k + 1, s))
                              for k in range(n_layers) for s in range(layer_class.n_states)]
        #: The states before the first step, each (batch, n_hidden), layer by layer.
        self.initial_states = list(initial_states)

        # A one-hot row per character: (time, batch, n_chars).
        layer_input = T.eye(n_chars, dtype=theano.config.floatX)[input]
        n_in, self.layers = n_chars, []
        for k in range(n_layers):
            states = self.initial_states[k * layer_class.n_states:(k + 1) * layer_class.n_states]
            layer = layer_class(rng, layer_input, n_in, n_hidden, initial_states=states,
                                prefix='%s%d' % (encoder, k + 1), loop=loop)
            self.layers.append(layer)
            layer_input, n_in = layer.output, n_hidden
        #: The states after the last step, in the order of ``initial_states``.
        self.final_states = [state for layer in self.layers for state in layer.final_states]

        n_steps, n_batch = input.shape[0], input.shape[1]
        self.softmax = LogisticRegression(layer_input.reshape((n_steps * n_batch, n_hidden)),
                                          n_in=n_hidden, n_out=n_chars)
        #: P(next character | the text so far), (time, batch, n_chars).
        self.p_next = self.softmax.p_y_given_x.reshape((n_steps, n_batch, n_chars))
        self.params = [param for layer in self.layers for param in layer.params]
        self.params += self.softmax.params

    def negative_log_likelihood(self, next_characters):
        """Mean -log P(next character) over all steps and streams: nats per character.

        ``next_characters``: int matrix (time, batch), the input shifted by one.
        """
        return self.softmax.negative_log_likelihood(next_characters.flatten())

    def __repr__(self):
        return 'CharLanguageModel(%d characters, %d x %s(%d))' % (
            len(self.vocabulary), self.n_layers, type(self.layers[0]).__name__, self.n_hidden)


# --------------------------------------------------------------------------
# Compiling: a training step and a validation step that carry the state
# --------------------------------------------------------------------------

def carried_states(model, n_streams):
    """Shared variables for ``model``'s states between minibatches: zeros (n_streams, n_hidden)."""
    return [theano.shared(numpy.zeros((n_streams, model.n_hidden), dtype=theano.config.floatX),
                          name='carried_' + state.name) for state in model.initial_states]


def compile_stream_step(model, next_characters, cost, streams, seq_length, updates=None):
    """``step(i)``: ``cost`` on minibatch ``i`` of ``streams``, the state carried on.

    ``next_characters``: the int matrix (time, batch) of the characters to
    predict, which ``cost`` reads besides ``model.input``.
    ``streams``: shared int32 (length, n_streams) from :func:`text_streams`;
    minibatch i reads rows [i L, (i + 1) L) and predicts rows [i L + 1,
    (i + 1) L + 1), with L = ``seq_length``.  ``updates``: the parameters'
    (None to score only).  Returns ``(step, carried)``, ``carried`` the
    shared states, which the step replaces by the states it ends in.
    """
    carried = carried_states(model, streams.get_value(borrow=True).shape[1])
    index = T.lscalar('minibatch_index')
    all_updates = list((updates or {}).items()) + list(zip(carried, model.final_states))
    givens = [(model.input, streams[index * seq_length:(index + 1) * seq_length]),
              (next_characters, streams[index * seq_length + 1:(index + 1) * seq_length + 1])]
    givens += list(zip(model.initial_states, carried))
    return theano.function([index], cost, updates=all_updates, givens=givens), carried


def compile_sampler(model):
    """``step(characters, *states) -> (P(next character), *states)`` for one stream.

    ``characters``: int32 (time, 1); the probabilities (n_chars,) are those
    after its last character; the states, (1, n_hidden) each.
    """
    return theano.function([model.input] + model.initial_states,
                           [model.p_next[-1, 0]] + model.final_states)


def sample(model, length, temperature=1.0, prime='\n', rng=None, step=None):
    """``length`` characters written by ``model`` after it has read ``prime``; a str.

    Each character is drawn from P(next)^(1 / ``temperature``), renormalised.
    ``step``: the :func:`compile_sampler` function, to compile it once.
    """
    rng = rng or numpy.random.RandomState(1234)
    step = step or compile_sampler(model)
    vocabulary = Vocabulary(model.vocabulary)
    states = [numpy.zeros((1, model.n_hidden), dtype=theano.config.floatX)
              for _ in model.initial_states]
    reading = vocabulary.encode(prime).reshape(-1, 1)
    written = []
    for _ in range(length):
        p_next, *states = step(reading, *states)
        # In float64: p ** (1 / temperature) of a small float32 p would be 0.
        weights = numpy.asarray(p_next, dtype=numpy.float64) ** (1.0 / temperature)
        character = rng.choice(len(weights), p=weights / weights.sum())
        written.append(character)
        reading = numpy.array([[character]], dtype='int32')
    return vocabulary.decode(written)


# --------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------

def load_text(dataset, batch_size, seq_length):
    """``(vocabulary, train_streams, valid_streams)`` of ``dataset``, as numpy arrays.

    The first 90 % of the characters train, the last 10 % validate; each
    part is cut into ``batch_size`` streams (see :func:`text_streams`).
    Raises DatasetError for a text too short to give one minibatch of each.
    """
    path = resolve_text(dataset)
    text = read_text(path)
    vocabulary = Vocabulary(text)
    numbers = vocabulary.encode(text)
    n_train = int(round(len(numbers) * (1 - VALID_FRACTION)))
    needed = batch_size * (seq_length + 1)
    if len(numbers) - n_train < needed:
        raise DatasetError('%s: %d characters are too few: batch_size %d x (seq_length %d + 1) '
                           'characters must be left to validate, the last 10 %%, so at least '
                           '%d in all' % (path, len(numbers), batch_size, seq_length,
                                          int(needed / VALID_FRACTION) + 1))
    logger.info('%s: %d characters, %d distinct; %d train, %d validate', path, len(numbers),
                len(vocabulary), n_train, len(numbers) - n_train)
    return (vocabulary, text_streams(numbers[:n_train], batch_size),
            text_streams(numbers[n_train:], batch_size))


def n_minibatches(streams, seq_length):
    """How many minibatches of ``seq_length`` steps (and their next characters) ``streams`` give."""
    return (len(streams) - 1) // seq_length


@entry_point(encoder=checks.Choice(ENCODERS), n_hidden=checks.positive_int,
             n_layers=checks.positive_int, seq_length=checks.positive_int,
             batch_size=checks.positive_int, learning_rate=checks.positive,
             optimizer=checks.Choice(OPTIMIZERS), schedule=checks.Choice(SCHEDULES),
             max_grad_norm=checks.positive,
             n_epochs=checks.positive_int, patience=checks.positive_int,
             valid_every=checks.steps_or_epoch, seed=checks.seed, loop=checks.Choice(LOOPS))
def train_char_rnn(dataset='tinyshakespeare', encoder='lstm', n_hidden=256, n_layers=2,
                   seq_length=100, batch_size=64, learning_rate=2e-3, optimizer='adam',
                   schedule='exponential_after', max_grad_norm=5.0, n_epochs=36, patience=4,
                   valid_every=-1, saveto='char_rnn.npz', seed=1234, loop='fused',
                   verbose=True):
    """Train a :class:`CharLanguageModel` on a text; return a result dict.

    Parameters
    ----------
    dataset : str
        a UTF-8 text file, or tinyshakespeare (downloaded into data/ when online, else
        the shipped excerpt).
    encoder : str
        the recurrent layer: lstm, gru or rnn.
    n_hidden : int
        units per recurrent layer.
    n_layers : int
        recurrent layers.
    seq_length : int
        steps of backpropagation through time per minibatch (the state is carried on).
    batch_size : int
        streams of text read side by side.
    learning_rate : float
        the update rule's learning rate.
    optimizer : str
        the update rule: adam, sgd, momentum, nesterov, adagrad, rmsprop, adaptive_gains.
    schedule : str
        the learning rate over epochs: constant, exponential (x 0.95 per epoch), step
        (halved every 10), inverse_time, exponential_after (constant for 20 epochs, then
        x 0.85 per epoch).
    max_grad_norm : float
        rescale the gradient to at most this norm.
    n_epochs : int
        the most passes over the training text.
    patience : int
        stop after this many validations without a new best validation loss.
    valid_every : int
        validate (and save the checkpoint, with the carried states) every this many
        minibatches; -1: once per epoch.
    saveto : str
        the model file's name, in the output folder.
    seed : int
        seeds the initial weights and the samples.
    loop : str
        the recurrent layers' loop over time: fused (one C op, fast) or scan (the page's).
    verbose : bool
        show the progress where no logging is set up (a notebook).

    Returns
    -------
    dict: the :class:`~dltutorials.training.TrainingResult` fields (the
    scores are validation losses in nats per character; there is no test
    set), ``model_file``, ``plot_file``, ``model`` and ``sample``, text
    written by the best model.
    """
    prepare_output_dir()
    vocabulary, train_streams, valid_streams = load_text(dataset, batch_size, seq_length)
    if current_run().quick:
        train_streams, valid_streams = (streams[:seq_length + 1]
                                        for streams in (train_streams, valid_streams))
    n_train_batches = n_minibatches(train_streams, seq_length)
    validation_frequency = n_train_batches if valid_every == -1 else min(valid_every,
                                                                          n_train_batches)

    logger.info('... building the model')
    rng = numpy.random.RandomState(seed)
    network = CharLanguageModel(rng, T.imatrix('characters'), vocabulary.characters,
                                n_hidden=n_hidden, n_layers=n_layers, encoder=encoder, loop=loop)
    next_characters = T.imatrix('next_characters')
    cost = network.negative_log_likelihood(next_characters)
    updates = training_updates(network, cost, learning_rate, optimizer, schedule,
                               n_train_batches, max_grad_norm=max_grad_norm)
    train_step, train_carried = compile_stream_step(
        network, next_characters, cost, theano.shared(train_streams, name='train_streams'),
        seq_length, updates)
    valid_step, valid_carried = compile_stream_step(
        network, next_characters, cost, theano.shared(valid_streams, name='valid_streams'),
        seq_length)
    sampler = compile_sampler(network)

    def train_fn(minibatch_index):
        if minibatch_index == 0:            # every epoch reads the streams from their start
            for state in train_carried:
                state.set_value(numpy.zeros_like(state.get_value()))
        return train_step(minibatch_index)
    train_fn.compiled_functions = [train_step]

    def validate_fn():
        for state in valid_carried:
            state.set_value(numpy.zeros_like(state.get_value()))
        loss = float(numpy.mean([valid_step(i) for i in range(n_minibatches(valid_streams,
                                                                              seq_length))]))
        logger.info('sample (temperature %.1f): %r', EPOCH_SAMPLE['temperature'], sample(
            network, EPOCH_SAMPLE['length'], EPOCH_SAMPLE['temperature'],
            rng=numpy.random.RandomState(seed), step=sampler))
        return loss

    architecture = dict(vocabulary=vocabulary.characters, n_hidden=n_hidden,
                        n_layers=n_layers, encoder=encoder)
    logger.info('%d minibatches of %d streams x %d steps per epoch', n_train_batches,
                batch_size, seq_length)
    logger.info('... training %r with %s', network, optimizer)
    result = train_and_save(network, train_fn, validate_fn, None, n_train_batches, n_epochs,
                            saveto, architecture, dataset,
                            patience=patience * validation_frequency,
                            patience_window=patience * validation_frequency,
                            validation_frequency=validation_frequency,
                            checkpoint_each_validation=True, score=NATS_PER_CHARACTER)
    if result['stopped_by'] != 'interrupted':
        result['sample'] = sample(network, 500, EPOCH_SAMPLE['temperature'],
                                  rng=numpy.random.RandomState(seed), step=sampler)
        logger.info('best validation loss %.4f nats/char (%.3f bits); the best model writes:\n%s',
                    result['best_validation_error'],
                    result['best_validation_error'] / numpy.log(2), result['sample'])
    return result


def load_char_rnn(model_file):
    """The :class:`CharLanguageModel` saved in ``model_file``."""
    from dltutorials.support.models import load_network
    return load_network(model_file, 'CharLanguageModel', T.imatrix('characters'))


def write_sample(model_file, length, temperature=1.0, prime='\n', seed=1234):
    """Print and return ``length`` characters written by the model saved in ``model_file``."""
    if not model_file.exists():
        raise ModelFileError('%s: no saved model; train one first (python code/char_rnn.py, '
                             'with the same --output-dir and --saveto)' % model_file)
    model = load_char_rnn(model_file)
    unknown = sorted(set(prime) - set(model.vocabulary))
    if unknown:
        raise HyperparameterError('prime: the model knows no %s' % ', '.join(map(repr, unknown)))
    text = sample(model, length, temperature, prime, numpy.random.RandomState(seed))
    print(prime + text)
    return text


def main(argv=None):
    parser = command_line.build_parser(train_char_rnn, __doc__.strip().split('\n')[0],
                                       saved_model_flags=False)
    parser.add_argument('--sample', type=checks.positive_int.parse, metavar='N',
                        help='instead of training, write N characters with the model saved in '
                             '--output-dir')
    parser.add_argument('--temperature', type=checks.positive.parse, default=1.0,
                        help='with --sample: below 1 safer, above 1 wilder text')
    parser.add_argument('--prime', default='\n',
                        help='with --sample: the text the model reads before it writes')
    arguments = vars(parser.parse_args(argv))
    writing = {name: arguments.pop(name) for name in ('sample', 'temperature', 'prime')}
    options = {name: arguments.pop(name) for name in ('output_dir', 'quick', 'no_plot', 'quiet',
                                                      'resume')}

    def task():
        with run_options(output_dir=options['output_dir'], quick=options['quick'],
                         plot=not options['no_plot'], resume=options['resume'], script=True):
            if writing['sample'] is not None:
                return write_sample(output_path(arguments['saveto']), writing['sample'],
                                    writing['temperature'], writing['prime'], arguments['seed'])
            return train_char_rnn(**arguments)
    return command_line.run(task, options['quiet'])


if __name__ == '__main__':
    sys.exit(main())
