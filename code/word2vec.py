"""Word embeddings: skip-gram with negative sampling on the words of Tiny Shakespeare.

A word embedding gives every word of a vocabulary a vector, learnt so that
words used in the same contexts get nearby vectors.  The skip-gram model
(Mikolov et al., 2013) learns them by predicting, from each word of a text,
the words around it.  Each word ``w`` has two vectors: ``v_w`` when it is
the centre, ``u_w`` when it is a context.  For a pair (centre ``c``,
context ``o``) seen in the text, and ``k`` *negative* words ``n_1 ... n_k``
drawn at random, the loss is

.. math::

    -\\log \\sigma(u_o^T v_c) - \\sum_{i=1}^{k} \\log \\sigma(-u_{n_i}^T v_c)

a logistic regression telling the true context from the noise.  The
negative words are drawn from the unigram distribution raised to the power
3/4, which draws rare words more often than their frequency.  Frequent
words (``the``, ``and``) are dropped from the text at random, the more
the more frequent, so that training spends its steps on the rest.

Only a few rows of the two matrices take part in a minibatch, so the
updates change those rows alone (``inc_subtensor``), not the whole matrices.

Run it::

    python code/word2vec.py --dataset ../shared/data/tinyshakespeare/input.txt
    python code/word2vec.py --neighbours king love night   # words to show the neighbours of
    python code/word2vec.py --quick                        # smoke test: seconds

It writes ``word2vec.npz`` (the model), ``embeddings.txt`` (the vectors in
word2vec's text format, which other tools read) and ``word2vec_map.png``
(the 300 most frequent words projected on their first two principal
components) into ``--output-dir``.

References:

- T. Mikolov, I. Sutskever, K. Chen, G. Corrado and J. Dean, "Distributed
  Representations of Words and Phrases and their Compositionality", NIPS 2013
- T. Mikolov, K. Chen, G. Corrado and J. Dean, "Efficient Estimation of
  Word Representations in Vector Space", ICLR workshop 2013
"""
import collections
import re
import sys

import numpy

# Importing dltutorials first sets the engine's defaults (BLAS, floatX) before it reads them.
from dltutorials.support import checks, command_line
from dltutorials.support.checkpoints import checkpoint_for
from dltutorials.support.datasets import read_text, resolve_text
from dltutorials.support.errors import DatasetError, ModelFileError
from dltutorials.support.models import load_model, save_model
from dltutorials.support.runs import (current_run, entry_point, epochs, output_path,
                                      prepare_output_dir, run_options, tutorial_logger)
from dltutorials.training import pretrain_layers

# Theano's names, from Theano or, on Python 3.12+, PyTensor (see dltutorials.support.engine).
from dltutorials.support.engine import T, theano

__all__ = ['tokenize', 'WordVocabulary', 'unigram_table', 'keep_probabilities',
           'skipgram_pairs', 'SkipGram', 'build_word2vec_function', 'Embeddings',
           'train_word2vec', 'load_word2vec']

logger = tutorial_logger(__name__)

#: The words whose neighbours the script shows, unless told others.
DEFAULT_NEIGHBOURS = ('king', 'love', 'death', 'night', 'sword', 'father', 'thou', 'good')


# --------------------------------------------------------------------------
# The text: words, a vocabulary, and the pairs an epoch trains on
# --------------------------------------------------------------------------

def tokenize(text):
    """The words of ``text``, lower-cased, as a list: runs of letters, with inner apostrophes.

    ``"Thou art a king, I'll warrant."`` gives ``['thou', 'art', 'a', 'king', "i'll", 'warrant']``.
    """
    return re.findall(r"[a-z]+(?:'[a-z]+)*", text.lower())


class WordVocabulary(object):
    """The words seen at least ``min_count`` times, most frequent first.

    ``words`` (list of str), ``counts`` (int64 array, the same order) and
    ``index`` ({word: its number}).
    """

    def __init__(self, tokens, min_count=5):
        frequent = [(word, count) for word, count in collections.Counter(tokens).most_common()
                    if count >= min_count]
        self.words = [word for word, _ in frequent]
        self.counts = numpy.array([count for _, count in frequent], dtype=numpy.int64)
        self.index = {word: number for number, word in enumerate(self.words)}

    def __len__(self):
        return len(self.words)

    def encode(self, tokens):
        """The numbers of ``tokens`` in the vocabulary (int32); words not in it are left out."""
        return numpy.array([self.index[token] for token in tokens if token in self.index],
                           dtype=numpy.int32)

    def __repr__(self):
        return 'WordVocabulary(%d words)' % len(self)


def unigram_table(counts, power=0.75, table_size=10 ** 6):
    """A table of word numbers in which word w fills a share count_w^power / sum of the table.

    Drawing a uniform position in it draws a word from the unigram
    distribution raised to ``power`` (word2vec's way, one lookup per draw).
    int32, (table_size,).
    """
    weights = counts.astype(numpy.float64) ** power
    ends = numpy.round(numpy.cumsum(weights) / weights.sum() * table_size).astype(numpy.int64)
    return numpy.repeat(numpy.arange(len(counts), dtype=numpy.int32),
                        numpy.diff(numpy.concatenate([[0], ends])))


def keep_probabilities(counts, subsample):
    """The probability of keeping each occurrence of a word: sqrt(t / f) + t / f, at most 1.

    ``f`` is the word's frequency in the text and ``t`` = ``subsample``
    (word2vec's formula); 0 keeps every word.
    """
    if subsample == 0:
        return numpy.ones(len(counts))
    ratio = subsample / (counts / counts.sum())
    return numpy.minimum(1.0, numpy.sqrt(ratio) + ratio)


def skipgram_pairs(ids, window, keep, rng):
    """The (centre, context) pairs of one pass over the text ``ids``, shuffled: int32 (n, 2).

    Each occurrence of a word is kept with its probability in ``keep``;
    then each kept word takes as contexts the kept words at most ``b`` places
    away, ``b`` drawn uniformly in 1 ... ``window`` for each centre (nearer
    words are contexts more often).
    """
    ids = ids[rng.uniform(size=len(ids)) < keep[ids]]
    reach = rng.randint(1, window + 1, size=len(ids))
    pairs = []
    for distance in range(1, window + 1):
        centres = numpy.flatnonzero(reach[:len(ids) - distance] >= distance)
        pairs.append(numpy.stack([ids[centres], ids[centres + distance]], axis=1))
        centres = numpy.flatnonzero(reach[distance:] >= distance) + distance
        pairs.append(numpy.stack([ids[centres], ids[centres - distance]], axis=1))
    pairs = numpy.concatenate(pairs).astype(numpy.int32)
    return pairs[rng.permutation(len(pairs))]


# --------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------

class SkipGram(object):
    """Two embedding matrices and the negative-sampling loss of a minibatch of pairs.

    Parameters
    ----------
    rng : numpy.random.RandomState
        draws the initial centre vectors.
    n_words : int
        the vocabulary's size.
    n_dims : int
        the embeddings' size.

    ``W_in`` (n_words, n_dims): the centre vectors v, uniform in
    +-0.5 / n_dims at first (the embeddings); ``W_out`` (n_words, n_dims):
    the context vectors u, zeros at first.  ``params`` = [W_in, W_out].
    The symbolic minibatch: ``centres`` and ``contexts`` (int32 vectors,
    (batch,)) and ``negatives`` (int32 matrix, (batch, k)).
    """

    def __init__(self, rng, n_words, n_dims=100):
        self.n_words, self.n_dims = n_words, n_dims
        floatX = theano.config.floatX
        self.W_in = theano.shared(rng.uniform(-0.5 / n_dims, 0.5 / n_dims, (n_words, n_dims))
                                  .astype(floatX), name='W_in', borrow=True)
        self.W_out = theano.shared(numpy.zeros((n_words, n_dims), dtype=floatX), name='W_out',
                                   borrow=True)
        self.params = [self.W_in, self.W_out]
        self.centres = T.ivector('centres')
        self.contexts = T.ivector('contexts')
        self.negatives = T.imatrix('negatives')
        self.input = self.centres

    def get_cost_updates(self, learning_rate):
        """Return ``(cost, updates)``: the minibatch's summed loss, and a step on its rows.

        Only the rows of the minibatch's words take part: the gradient is
        taken with respect to those rows (``W_in[centres]`` ...), and each is
        added back into its matrix with ``inc_subtensor``, which sums the
        steps of a word that appears several times in the minibatch.  The
        loss is summed over the pairs, so ``learning_rate`` is the step of
        one pair, as in word2vec.
        """
        v = self.W_in[self.centres]                                   # (batch, dims)
        targets = T.concatenate([self.contexts.dimshuffle(0, 'x'), self.negatives], axis=1)
        u = self.W_out[targets]                                       # (batch, 1 + k, dims)
        scores = T.sum(u * v.dimshuffle(0, 'x', 1), axis=2)           # (batch, 1 + k)
        # log sigmoid(s) = -softplus(-s): +s for the true context, -s for the noise.
        signs = T.concatenate([T.ones((1,)), -T.ones((self.negatives.shape[1],))])
        cost = T.sum(T.nnet.softplus(-scores * signs.dimshuffle('x', 0)))
        grad_v, grad_u = T.grad(cost, [v, u])
        updates = [(self.W_in, T.inc_subtensor(v, -learning_rate * grad_v)),
                   (self.W_out, T.inc_subtensor(u, -learning_rate * grad_u))]
        return cost, updates

    def __repr__(self):
        return 'SkipGram(n_words=%d, n_dims=%d)' % (self.n_words, self.n_dims)


def build_word2vec_function(model, pairs, negatives, batch_size, learning_rate, total_steps):
    """Compile one training step on minibatch ``index`` of the shared ``pairs`` and ``negatives``.

    ``pairs``: shared int32 (n, 2), ``negatives``: shared int32 (n, k).
    The step size falls linearly from ``learning_rate`` to 0.0001 of it
    over ``total_steps`` steps, counted in the shared ``step`` the function
    carries (so a resumed run goes on with the right one).  Returns
    ``train_fn(index)`` -> the mean loss of a pair in the minibatch.
    """
    index = T.lscalar('index')
    step = theano.shared(numpy.asarray(0.0, dtype=theano.config.floatX), name='step')
    rate = learning_rate * T.maximum(1e-4, 1 - step / total_steps)
    cost, updates = model.get_cost_updates(rate.astype(theano.config.floatX))
    window = slice(index * batch_size, (index + 1) * batch_size)
    return theano.function(
        [index], cost / batch_size, updates=updates + [(step, step + 1)],
        givens={model.centres: pairs[window, 0], model.contexts: pairs[window, 1],
                model.negatives: negatives[window]})


# --------------------------------------------------------------------------
# What the embeddings say
# --------------------------------------------------------------------------

class Embeddings(object):
    """Trained word vectors: ``words`` (list of str) and ``vectors`` (n_words, n_dims)."""

    def __init__(self, words, vectors):
        self.words, self.vectors = list(words), numpy.asarray(vectors)
        self.index = {word: number for number, word in enumerate(self.words)}
        self.unit = self.vectors / numpy.maximum(
            numpy.linalg.norm(self.vectors, axis=1, keepdims=True), 1e-12)

    def __contains__(self, word):
        return word in self.index

    def nearest(self, word, n=8):
        """The ``n`` words of highest cosine similarity to ``word``: [(word, cosine), ...].

        Raises KeyError for a word not in the vocabulary.
        """
        similarity = self.unit @ self.unit[self.index[word]]
        similarity[self.index[word]] = -numpy.inf
        best = numpy.argsort(-similarity)[:n]
        return [(self.words[k], float(similarity[k])) for k in best]

    def projection(self, n_words=300):
        """The ``n_words`` most frequent words' vectors on their first two principal axes.

        Returns (words, (n_words, 2) array).
        """
        vectors = self.vectors[:n_words] - self.vectors[:n_words].mean(axis=0)
        _, _, axes = numpy.linalg.svd(vectors, full_matrices=False)
        return self.words[:n_words], vectors @ axes[:2].T

    def write_text(self, path):
        """Write the vectors in word2vec's text format: 'n_words n_dims', then one word per line."""
        with open(path, 'w', encoding='utf-8') as out:
            out.write('%d %d\n' % self.vectors.shape)
            for word, vector in zip(self.words, self.vectors):
                out.write(word + ' ' + ' '.join('%.6f' % value for value in vector) + '\n')
        return path

    def __repr__(self):
        return 'Embeddings(%d words x %d dims)' % self.vectors.shape


# --------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------

def load_words(dataset, min_count):
    """The text of ``dataset`` as word numbers (int32) and its vocabulary."""
    path = resolve_text(dataset)
    tokens = tokenize(read_text(path))
    vocabulary = WordVocabulary(tokens, min_count)
    if len(vocabulary) < 2:
        raise DatasetError('%s: %d words, %d of them seen %d times or more: too few to learn '
                           'embeddings (a smaller --min-count, or a longer text)'
                           % (path, len(tokens), len(vocabulary), min_count))
    ids = vocabulary.encode(tokens)
    logger.info('%s: %d words, %d distinct; %d of them seen %d times or more (%d%% of the text)',
                path, len(tokens), len(set(tokens)), len(vocabulary), min_count,
                round(100 * len(ids) / len(tokens)))
    return ids, vocabulary


@entry_point(n_dims=checks.positive_int, window=checks.positive_int,
             n_negative=checks.positive_int, min_count=checks.positive_int,
             subsample=checks.non_negative, learning_rate=checks.positive,
             batch_size=checks.positive_int, n_epochs=checks.positive_int, seed=checks.seed)
def train_word2vec(dataset='tinyshakespeare', n_dims=100, window=5, n_negative=5, min_count=5,
                   subsample=1e-3, learning_rate=0.025, batch_size=256, n_epochs=10,
                   neighbours=DEFAULT_NEIGHBOURS, seed=1234, verbose=True):
    """Learn word embeddings with skip-gram and negative sampling; save and show them.

    Parameters
    ----------
    dataset : str
        a UTF-8 text file, or ``tinyshakespeare``.
    n_dims : int
        size of the embeddings.
    window : int
        largest distance between a word and its contexts.
    n_negative : int
        noise words per pair.
    min_count : int
        words seen fewer times are left out.
    subsample : float
        t of the frequent words' subsampling (0: keep every word).
    learning_rate : float
        the first step size of a pair; it falls linearly to 0.
    batch_size : int
        pairs per minibatch.
    n_epochs : int
        passes over the text.
    neighbours : sequence of str
        words whose nearest neighbours are logged at the end.
    seed : int
        seeds the initial vectors, the windows, the subsampling and the noise.
    verbose : bool
        show the progress where no logging is set up (a notebook).

    Returns
    -------
    dict: ``costs`` (the mean loss of a pair, per epoch), ``seconds``,
    ``stopped_by``, ``embeddings`` (an :class:`Embeddings`),
    ``neighbours`` ({word: its nearest words}), ``model_file``,
    ``vectors_file`` and ``map_file``.
    """
    prepare_output_dir()
    ids, vocabulary = load_words(dataset, min_count)
    if current_run().quick:
        ids = ids[:20 * batch_size]
    keep = keep_probabilities(vocabulary.counts, subsample)
    table = unigram_table(vocabulary.counts)

    def epoch_data(epoch):
        """The shuffled pairs and the noise words of ``epoch``: the same whenever drawn."""
        rng = numpy.random.RandomState([seed, epoch])
        pairs = skipgram_pairs(ids, window, keep, rng)
        if len(pairs) < n_pairs:          # the shuffled list wraps around (rarely needed)
            pairs = numpy.resize(pairs, (n_pairs, 2))
        return pairs[:n_pairs], table[rng.randint(len(table), size=(n_pairs, n_negative))]

    # An epoch is as many minibatches as the first epoch's pairs fill.
    n_pairs = len(skipgram_pairs(ids, window, keep, numpy.random.RandomState([seed, 1])))
    n_batches = n_pairs // batch_size
    if n_batches == 0:
        raise DatasetError('%s: %d pairs of words, fewer than one minibatch of %d'
                           % (dataset, n_pairs, batch_size))
    n_pairs = n_batches * batch_size
    pairs = theano.shared(numpy.zeros((n_pairs, 2), dtype=numpy.int32), name='pairs')
    noise = theano.shared(numpy.zeros((n_pairs, n_negative), dtype=numpy.int32), name='noise')

    def start_epoch(layer, epoch):
        epoch_pairs, epoch_noise = epoch_data(epoch)
        pairs.set_value(epoch_pairs)
        noise.set_value(epoch_noise)

    model = SkipGram(numpy.random.RandomState(seed), len(vocabulary), n_dims)
    n_epochs = epochs(n_epochs)
    train_fn = build_word2vec_function(model, pairs, noise, batch_size, learning_rate,
                                       n_batches * n_epochs)
    logger.info('... training %r: %d pairs of words per epoch, %d noise words each, minibatches '
                'of %d', model, n_pairs, n_negative, batch_size)
    result = pretrain_layers([train_fn], n_batches, n_epochs, labels=['Training word2vec'],
                             checkpoint=checkpoint_for([train_fn], 'word2vec'),
                             on_epoch_start=start_epoch)

    embeddings = Embeddings(vocabulary.words, model.W_in.get_value())
    model_file = save_model(output_path('word2vec.npz'), model,
                            dict(n_words=len(vocabulary), n_dims=n_dims),
                            words=vocabulary.words, counts=vocabulary.counts.tolist(),
                            costs=result.costs[0], dataset=str(dataset))
    vectors_file = embeddings.write_text(output_path('embeddings.txt'))
    logger.info('embeddings written to %s and %s', model_file, vectors_file)
    found = {}
    for word in neighbours:
        if word not in embeddings:
            logger.info('%s: not in the vocabulary', word)
            continue
        found[word] = embeddings.nearest(word)
        logger.info('%-8s %s', word, ', '.join('%s %.2f' % pair for pair in found[word]))
    map_file = None
    if current_run().plot:
        from dltutorials.support.plotting import plot_word_map
        map_file = plot_word_map(*embeddings.projection(), output_path('word2vec_map.png'))
    if result.interrupted:
        raise KeyboardInterrupt
    return dict(costs=result.costs[0], seconds=result.seconds[0], stopped_by=result.stopped_by,
                embeddings=embeddings, neighbours=found, model_file=str(model_file),
                vectors_file=str(vectors_file), map_file=str(map_file) if map_file else None)


def load_word2vec(model_file):
    """The :class:`Embeddings` saved in ``model_file`` by :func:`train_word2vec`."""
    model = load_model(model_file)
    if not isinstance(model.network, SkipGram):
        raise ModelFileError('%s holds a %s, not word embeddings'
                             % (model_file, type(model.network).__name__))
    return Embeddings(model.meta['words'], model.network.W_in.get_value())


def main(argv=None):
    parser = command_line.build_parser(train_word2vec, __doc__.strip().split('\n')[0],
                                       skip=['neighbours'], saved_model_flags=False)
    parser.add_argument('--neighbours', nargs='+', metavar='WORD', default=DEFAULT_NEIGHBOURS,
                        help='words whose nearest neighbours are shown at the end')
    arguments = vars(parser.parse_args(argv))
    options = {name: arguments.pop(name) for name in ('output_dir', 'quick', 'no_plot', 'quiet',
                                                      'resume')}

    def task():
        with run_options(output_dir=options['output_dir'], quick=options['quick'],
                         plot=not options['no_plot'], resume=options['resume'], script=True):
            return train_word2vec(**arguments)
    return command_line.run(task, options['quiet'])


if __name__ == '__main__':
    sys.exit(main())
