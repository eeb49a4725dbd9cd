"""How good are generated images?  Three measures a reader can check.

A generative model (a GAN, an RBM's chain) gives images, not a likelihood,
so its drawings are judged by comparing them with real images:

**The Fréchet distance** (Heusel et al., 2017) between the features a
classifier computes for the generated images and for real ones.  Each set
of feature vectors is summarised by its mean :math:`\\mu` and covariance
:math:`\\Sigma`, as if it were Gaussian, and the distance between the two
Gaussians is

.. math::

    d^2 = \\lVert \\mu_1 - \\mu_2 \\rVert^2
          + \\operatorname{Tr}\\left(\\Sigma_1 + \\Sigma_2
          - 2 (\\Sigma_1^{1/2} \\Sigma_2 \\Sigma_1^{1/2})^{1/2}\\right).

It is 0 for two sets with the same statistics, grows when the generated
images look unlike the real ones (their mean moves) and when they are too
alike each other (their covariance shrinks: mode collapse).  The classifier
here is one this project trains (the LeNet of
:mod:`~dltutorials.convolutional_mlp`), so the numbers are on its own scale:
compare them with the distance of real images to real images (the floor)
and of bad generators (the ceiling), never with published FIDs, which use
an ImageNet network.

**The classifier's view**: the share of the generated images that the
classifier puts in each class, and its mean confidence.  A good generator
of digits draws all ten, each about a tenth of the time, and draws them
clearly.

**The Parzen-window log-likelihood** (Goodfellow et al., 2014, Table 1):
put a Gaussian of width :math:`\\sigma` on every generated image and ask how
likely the test images are under that mixture,

.. math::

    \\log p(x) = \\log \\frac{1}{N} \\sum_{i=1}^{N}
        \\mathcal{N}(x;\\, s_i,\\, \\sigma^2 I),

with :math:`\\sigma` chosen on the validation images.  The paper itself
warns that this estimate is poor in high dimensions (it rewards blurry
samples and needs very many of them); it is here to compare with their
table, not to rank models.

References: M. Heusel et al., *GANs trained by a two time-scale update rule
converge to a local Nash equilibrium*, NIPS 2017; I. Goodfellow et al.,
*Generative adversarial nets*, NIPS 2014; L. Theis et al., *A note on the
evaluation of generative models*, ICLR 2016.
"""
import numpy
from scipy.special import logsumexp

__all__ = ['feature_statistics', 'frechet_distance', 'frechet_distance_of_features',
           'class_view', 'parzen_log_likelihood', 'parzen_log_densities', 'choose_parzen_width']


def feature_statistics(features):
    """The mean (d,) and covariance (d, d) of ``features`` (n, d), in float64."""
    features = numpy.asarray(features, dtype='float64')
    return features.mean(axis=0), numpy.cov(features, rowvar=False)


def _symmetric_sqrt(matrix):
    """The square root of a symmetric positive semi-definite matrix, by its eigenvectors."""
    eigenvalues, eigenvectors = numpy.linalg.eigh(matrix)
    # Round-off makes the smallest eigenvalues of a singular covariance
    # slightly negative; they are zero.
    return (eigenvectors * numpy.sqrt(numpy.clip(eigenvalues, 0, None))) @ eigenvectors.T


def frechet_distance(mean_1, covariance_1, mean_2, covariance_2):
    """The squared Fréchet distance between two Gaussians (see the module's formula).

    ``(Sigma_1^1/2 Sigma_2 Sigma_1^1/2)^1/2`` is symmetric, unlike the
    ``(Sigma_1 Sigma_2)^1/2`` of the usual statement (they have the same
    trace), so its square root comes from a symmetric eigendecomposition:
    real, with no imaginary round-off to discard.
    """
    root_1 = _symmetric_sqrt(covariance_1)
    cross = _symmetric_sqrt(root_1 @ covariance_2 @ root_1)
    difference = numpy.asarray(mean_1) - numpy.asarray(mean_2)
    return float(difference @ difference + numpy.trace(covariance_1) + numpy.trace(covariance_2)
                 - 2 * numpy.trace(cross))


def frechet_distance_of_features(features_1, features_2):
    """The Fréchet distance between two sets of feature vectors, (n1, d) and (n2, d)."""
    return frechet_distance(*feature_statistics(features_1), *feature_statistics(features_2))


def class_view(class_probabilities):
    """What a classifier sees in a set of images.

    ``class_probabilities``: (n, classes), each row the classifier's
    probabilities for one image.  Returns ``(shares, confidence)``: the
    fraction of the images given to each class (classes,), summing to 1, and
    the mean probability of the class given (a float in [1/classes, 1]).
    """
    class_probabilities = numpy.asarray(class_probabilities, dtype='float64')
    predicted = class_probabilities.argmax(axis=1)
    shares = numpy.bincount(predicted, minlength=class_probabilities.shape[1]) / len(predicted)
    return shares, float(class_probabilities.max(axis=1).mean())


def parzen_log_likelihood(images, samples, width, batch_size=100):
    """Mean log-density of ``images`` (n, d) under Gaussians of ``width`` on ``samples`` (m, d).

    In nats per image.  Returns ``(mean, standard error)`` over the images.
    """
    log_densities = parzen_log_densities(images, samples, [width], batch_size)[:, 0]
    return float(log_densities.mean()), float(log_densities.std() / numpy.sqrt(len(images)))


def parzen_log_densities(images, samples, widths, batch_size=100):
    """The log-density of each of ``images`` (n, d) for each window width: (n, len(widths)).

    Computed in float64 and in batches of ``batch_size`` images (an (n, m)
    table of distances would not fit for 10,000 x 10,000), each batch's
    distances once for all the widths, with the log of the sum of
    exponentials taken stably.
    """
    samples = numpy.asarray(samples, dtype='float64')
    images = numpy.asarray(images, dtype='float64')
    widths = numpy.asarray(widths, dtype='float64')
    n_samples, dimensions = samples.shape
    samples_squared = (samples ** 2).sum(axis=1)
    normalisers = numpy.log(n_samples) + dimensions / 2 * numpy.log(2 * numpy.pi * widths ** 2)
    log_densities = []
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size]
        squared_distances = ((batch ** 2).sum(axis=1)[:, None] + samples_squared[None, :]
                             - 2 * batch @ samples.T)
        log_densities.append(numpy.stack(
            [logsumexp(-squared_distances / (2 * width ** 2), axis=1) for width in widths],
            axis=1) - normalisers)
    return numpy.concatenate(log_densities)


def choose_parzen_width(validation_images, samples, widths=numpy.logspace(-1, 0, 10)):
    """The window width among ``widths`` under which ``validation_images`` are most likely.

    The grid is Goodfellow et al.'s range (0.1 to 1, for pixels in [0, 1]).
    Returns ``(width, {width: mean log-likelihood})``.
    """
    means = parzen_log_densities(validation_images, samples, widths).mean(axis=0)
    scores = {float(width): float(mean) for width, mean in zip(widths, means)}
    return max(scores, key=scores.get), scores
