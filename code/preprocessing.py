r"""Preparing the inputs: whitening, and more training images from the ones we have.

**Whitening.**  Neighbouring pixels are strongly correlated, so the error
surface of a network's first layer is an elongated valley, which gradient
descent crosses slowly.  Whitening decorrelates the inputs and gives every
direction the same variance: subtract the mean, rotate onto the eigenvectors
:math:`U` of the covariance matrix, divide each coordinate by the square
root of its eigenvalue :math:`\lambda` (plus a small :math:`\epsilon`, so
that the faint directions, mostly noise, are not blown up), and drop the
directions whose variance is below a threshold (for digits, the border
pixels that are always 0):

.. math::

    x_{PCA} = \mathrm{diag}\left(\frac{1}{\sqrt{\lambda + \epsilon}}\right) U^T (x - \mu),
    \qquad x_{ZCA} = U x_{PCA}

ZCA rotates the whitened data back, so it still looks like an image (of its
edges).  The mean and the rotation are fitted on the training split only,
and applied, unchanged, to every split and to new images: in the models here
they are a fixed first layer (:class:`Whitening`), saved with the model.

**Data augmentation.**  A digit shifted by a pixel or two is the same digit:
shifted copies of the training images teach the network that invariance,
and are free data.  :func:`shift_images` draws a new shift for every image
at every epoch; :func:`flip_images` mirrors images left to right, which
suits clothes (Fashion-MNIST) but not digits.
"""
import numpy

from dltutorials.data_loading import shared_storage
# Theano's names, from Theano or, on Python 3.12+, PyTensor (see dltutorials.support.engine).
from dltutorials.support.engine import T, theano

__all__ = ['fit_whitening', 'Whitening', 'build_whitened', 'shift_images', 'flip_images',
           'AUGMENTATIONS', 'WHITENINGS', 'augmented', 'data_of_each_epoch']


def fit_whitening(images, kind='pca', epsilon=0.01, min_variance=1e-4):
    """The mean and the whitening matrix of ``images`` (n, d), fitted on them.

    Parameters
    ----------
    images : array (n, d)
        the training split.
    kind : str
        ``'pca'``: project onto the principal directions, whitened;
        ``'zca'``: then rotate back into pixel space.
    epsilon : float
        added to every eigenvalue (a variance, in squared pixel units).
    min_variance : float
        directions of smaller variance are dropped.

    Returns
    -------
    (mean (d,), transform (d, k)) floatX arrays, where k is the number of
    directions kept for PCA and d for ZCA: whitened = (x - mean) @ transform.
    """
    data = numpy.asarray(images, dtype=numpy.float64)
    mean = data.mean(axis=0)
    centred = data - mean
    covariance = centred.T @ centred / len(data)
    eigenvalues, eigenvectors = numpy.linalg.eigh(covariance)    # ascending
    keep = eigenvalues > min_variance
    eigenvalues, eigenvectors = eigenvalues[keep][::-1], eigenvectors[:, keep][:, ::-1]
    transform = eigenvectors / numpy.sqrt(eigenvalues + epsilon)
    if kind == 'zca':
        transform = transform @ eigenvectors.T
    floatX = theano.config.floatX
    return mean.astype(floatX), transform.astype(floatX)


class Whitening(object):
    """A fixed linear first layer: ``output = dot(input - mean, transform)``.

    ``mean`` (n_in,) and ``transform`` (n_in, n_out) start as "no change"
    (zero mean, the first n_out coordinates) and are set from
    :func:`fit_whitening`; they are ``statistics``, saved with the model,
    not trained.
    """

    def __init__(self, input, n_in, n_out):
        floatX = theano.config.floatX
        self.mean = theano.shared(numpy.zeros(n_in, dtype=floatX), name='whitening_mean')
        self.transform = theano.shared(numpy.eye(n_in, n_out, dtype=floatX),
                                       name='whitening_transform')
        self.output = T.dot(input - self.mean, self.transform)
        self.statistics = [self.mean, self.transform]

    def set(self, mean, transform):
        """Use ``mean`` and ``transform``, as :func:`fit_whitening` returns them."""
        self.mean.set_value(mean)
        self.transform.set_value(transform)


def build_whitened(make_network, architecture, training_images, kind):
    """``make_network(**architecture)``, its inputs whitened first if ``kind`` ('pca', 'zca').

    The whitening is fitted on ``training_images`` (the training split only);
    ``architecture['whitening_components']`` records the number of
    directions kept, so that the saved architecture rebuilds the same network.
    """
    if not kind:
        return make_network(**architecture)
    mean, transform = fit_whitening(training_images, kind)
    architecture['whitening_components'] = transform.shape[1]
    network = make_network(**architecture)
    network.whitening.set(mean, transform)
    return network


def shift_images(images, rng, max_shift=2, side=28):
    """Each image (a row of ``images``, side x side) moved by up to ``max_shift`` pixels each way.

    The shift of every image is drawn from ``rng``; pixels moved in at the
    border are 0 (the background).  Returns a new array.
    """
    n = len(images)
    square = images.reshape(n, side, side)
    padded = numpy.pad(square, ((0, 0), (max_shift, max_shift), (max_shift, max_shift)))
    rows, columns = rng.randint(0, 2 * max_shift + 1, size=(2, n))
    # The window of each image: rows[i] .. rows[i] + side in the padded image.
    window = numpy.arange(side)
    shifted = padded[numpy.arange(n)[:, None, None],
                     (rows[:, None] + window)[:, :, None],
                     (columns[:, None] + window)[:, None, :]]
    return shifted.reshape(n, side * side)


def flip_images(images, rng, side=28):
    """Half of the images (drawn from ``rng``) mirrored left to right.  Returns a new array."""
    flipped = images.reshape(len(images), side, side).copy()
    mirror = rng.rand(len(images)) < 0.5
    flipped[mirror] = flipped[mirror, :, ::-1]
    return flipped.reshape(len(images), side * side)


#: Augmentations by name (``--augment shift flip``).
AUGMENTATIONS = {'shift': shift_images, 'flip': flip_images}

def augmented(images, names, rng):
    """``images`` (n, 784) with the augmentations ``names`` applied in turn, drawn from ``rng``."""
    for name in names or ():
        images = AUGMENTATIONS[name](images, rng)
    return images


#: Whitenings by name (``--whiten pca``).
WHITENINGS = ('pca', 'zca')


def data_of_each_epoch(train_set, seed, shuffle=False, augmentations=()):
    """A function of the epoch that puts that epoch's training set in the shared ``train_set``.

    ``train_set``: (images, labels) as :func:`~dltutorials.data_loading.load_data`
    gives them.  With ``shuffle``, the examples come in a new random order
    every epoch (so the minibatches differ); with ``augmentations`` (names
    of :data:`AUGMENTATIONS`) the images are new random copies of the
    originals.  The originals are kept on the host and the epoch's set
    replaces the shared values once, before its first minibatch: the
    training step still takes its minibatches from the device.  Epoch e's
    draws come from a generator seeded by (seed, e), so a resumed run sees
    the same data.  Returns None when there is nothing to do.
    """
    if not shuffle and not augmentations:
        return None
    shared_images, shared_labels = (shared_storage(data) for data in train_set)
    images, labels = shared_images.get_value().copy(), shared_labels.get_value().copy()

    def prepare(epoch):
        rng = numpy.random.RandomState([seed, epoch])
        order = rng.permutation(len(images)) if shuffle else slice(None)
        epoch_images = augmented(images[order], augmentations, rng)
        shared_images.set_value(epoch_images.astype(images.dtype), borrow=True)
        shared_labels.set_value(labels[order], borrow=True)
    return prepare
