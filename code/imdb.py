"""The IMDB movie reviews of the original lstm.py: load them, pad a minibatch of them.

Each review is a list of word indices (1 stands for a word outside the
vocabulary, the most frequent words have the smallest indices), its label 1
for a positive review and 0 for a negative one.  The original tutorial's
``imdb.pkl`` holds 25,000 reviews for training and 25,000 for testing; it is
looked for where ``path`` says, then in ``data/``, and downloaded from the
original address when online (see :func:`dltutorials.support.datasets.resolve_imdb`).

Recurrent networks read a minibatch as one ``(time, batch)`` array, so
:func:`prepare_data` pads the sequences of a minibatch to the longest and
returns a mask that marks the real steps.
"""
import numpy

from dltutorials.support.datasets import read_imdb, resolve_imdb
# Theano's names, from Theano or, on Python 3.12+, PyTensor (see dltutorials.support.engine).
from dltutorials.support.engine import theano

__all__ = ['prepare_data', 'get_dataset_file', 'load_data']


def prepare_data(seqs, labels, maxlen=None):
    """Pad a minibatch of sequences into one array; the original tutorial's function.

    Parameters
    ----------
    seqs : list of lists of int
        the sequences (word indices).
    labels : list of int
    maxlen : int, optional
        drop the sequences of ``maxlen`` steps or more.

    Returns
    -------
    ``(x, x_mask, labels)``: x int64 (time, n_samples), the sequences
    padded with 0 to the longest; x_mask floatX (time, n_samples), 1 on
    their real steps and 0 on the padding; the labels kept.  All three are
    None if ``maxlen`` dropped every sequence.
    """
    lengths = [len(s) for s in seqs]
    if maxlen is not None:
        kept = [(s, y, n) for s, y, n in zip(seqs, labels, lengths) if n < maxlen]
        if not kept:
            return None, None, None
        seqs, labels, lengths = (list(column) for column in zip(*kept))

    n_samples = len(seqs)
    x = numpy.zeros((max(lengths), n_samples), dtype='int64')
    x_mask = numpy.zeros((max(lengths), n_samples), dtype=theano.config.floatX)
    for index, sequence in enumerate(seqs):
        x[:lengths[index], index] = sequence
        x_mask[:lengths[index], index] = 1.0
    return x, x_mask, labels


def get_dataset_file(dataset, default_dataset='imdb.pkl', origin=None):
    """The local path of the IMDB file (the original's name): found, or downloaded to ``data/``."""
    return str(resolve_imdb(dataset))


def load_data(path='imdb.pkl', n_words=100000, valid_portion=0.1, maxlen=None,
              sort_by_len=True, rng=None):
    """The IMDB reviews as ``train, valid, test``, each ``(sequences, labels)``.

    Parameters
    ----------
    path : str
        the pickle: a path, or the name looked for in ``data/``.
    n_words : int
        the vocabulary: words of index ``n_words`` or more become 1 (unknown).
    valid_portion : float
        the fraction of the training reviews held out for validation.
    maxlen : int, optional
        drop the training and validation reviews of ``maxlen`` words or more.
    sort_by_len : bool
        sort each set by length, so that a minibatch of neighbours needs
        little padding (training shuffles the minibatches, not the order
        within them).
    rng : numpy.random.RandomState, optional
        draws the validation reviews; default the global numpy generator,
        as the original.
    """
    train_set, test_set = read_imdb(resolve_imdb(path))
    if maxlen:
        train_set = tuple(list(column) for column in zip(*[
            (x, y) for x, y in zip(*train_set) if len(x) < maxlen])) or ([], [])

    # Hold out a random part of the training set for validation.
    train_x, train_y = train_set
    order = (rng or numpy.random).permutation(len(train_x))
    n_train = int(numpy.round(len(train_x) * (1.0 - valid_portion)))
    valid = ([train_x[i] for i in order[n_train:]], [train_y[i] for i in order[n_train:]])
    train = ([train_x[i] for i in order[:n_train]], [train_y[i] for i in order[:n_train]])

    def remove_unknown(sequences):
        return [[1 if w >= n_words else w for w in sequence] for sequence in sequences]

    sets = []
    for x, y in (train, valid, test_set):
        x = remove_unknown(x)
        if sort_by_len:
            by_length = sorted(range(len(x)), key=lambda i: len(x[i]))
            x, y = [x[i] for i in by_length], [y[i] for i in by_length]
        sets.append((x, list(y)))
    return tuple(sets)
