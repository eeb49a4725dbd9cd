"""Getting the data to Theano: load the splits, share them, slice minibatches.

Every model reads its data through :func:`load_data`, which returns the
tutorial's three splits as Theano shared variables::

    [(train_set_x, train_set_y), (valid_set_x, valid_set_y), (test_set_x, test_set_y)]

``x`` is a floatX matrix, one image of 28 x 28 = 784 pixels in [0, 1] per row;
``y`` holds the labels 0..9.  ``dataset`` may be a tutorial-format
``.pkl.gz`` file, a folder of IDX files, or one of the names ``mnist.pkl.gz``,
``mnist`` and ``fashion-mnist`` (found, or downloaded and verified, by
:mod:`dltutorials.support.datasets`, which also checks every split).

A training step then works on one minibatch, taken from the shared data by
its index (:func:`minibatch`), so on a GPU the data is copied to the device
once, not once per step.
"""
import numpy

from dltutorials.support.datasets import load_arrays
# Theano's names, from Theano or, on Python 3.12+, PyTensor (see dltutorials.support.engine).
from dltutorials.support.engine import T, theano

__all__ = ['load_data', 'load_arrays', 'shared_dataset', 'minibatch', 'minibatch_givens',
           'n_examples', 'shared_storage']


def shared_dataset(data_xy, borrow=True):
    """Put one (x, y) split into Theano shared variables; return ``(shared_x, int32 y)``.

    Data lives in shared variables so that, on a GPU, it is copied to the
    device once instead of once per minibatch.  The GPU stores only floats,
    so ``y`` is kept as floatX too and cast back to int32 symbolically: the
    labels are used as indices, which must be integers.
    """
    data_x, data_y = data_xy
    shared_x = theano.shared(numpy.asarray(data_x, dtype=theano.config.floatX), borrow=borrow)
    shared_y = theano.shared(numpy.asarray(data_y, dtype=theano.config.floatX), borrow=borrow)
    return shared_x, T.cast(shared_y, 'int32')


def load_data(dataset, data_dir=None, limit=None):
    """Load ``dataset`` into Theano shared variables (the tutorial's ``load_data``).

    Returns ``[(train_set_x, train_set_y), (valid_set_x, valid_set_y),
    (test_set_x, test_set_y)]``: x floatX shared matrices (n, 784), y int32
    symbolic vectors over floatX shared storage.  With ``limit``, only the
    first ``limit`` examples of each split are kept (the scripts' ``--quick``
    mode: one minibatch per phase).
    """
    splits = load_arrays(dataset, data_dir)
    if limit is not None:
        splits = [(x[:limit], y[:limit]) for x, y in splits]
    return [shared_dataset(split) for split in splits]


def shared_storage(data):
    """The shared variable holding ``data``: itself, or for labels the one under the int32 cast."""
    return data if hasattr(data, 'get_value') else data.owner.inputs[0]


def n_examples(shared_x):
    """Number of rows in the shared matrix ``shared_x``."""
    return shared_x.get_value(borrow=True).shape[0]


def minibatch(data, index, batch_size):
    """The ``index``-th minibatch of ``data`` (shared or symbolic); the last may be shorter."""
    return data[index * batch_size:(index + 1) * batch_size]


def minibatch_givens(x, y, data_x, data_y, index, batch_size):
    """``givens`` that feed minibatch ``index`` of (data_x, data_y) to the model's x and y."""
    return {x: minibatch(data_x, index, batch_size), y: minibatch(data_y, index, batch_size)}
