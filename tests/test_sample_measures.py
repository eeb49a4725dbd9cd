"""The measures of generated images, on cases whose answers are known independently."""
import numpy
import pytest
import scipy.linalg
from scipy.stats import multivariate_normal

from dltutorials.sample_measures import (choose_parzen_width, class_view, frechet_distance,
                                         frechet_distance_of_features, parzen_log_likelihood)


def random_covariance(rng, dimensions):
    factor = rng.randn(dimensions, dimensions)
    return factor @ factor.T / dimensions + 0.1 * numpy.eye(dimensions)


def test_a_set_is_at_distance_zero_from_itself():
    features = numpy.random.RandomState(0).randn(500, 12) * 3 + 1
    assert frechet_distance_of_features(features, features) == pytest.approx(0, abs=1e-8)


def test_gaussians_with_diagonal_covariances_follow_the_closed_form():
    # Diagonal covariances commute: d^2 = |mu1 - mu2|^2 + sum (sqrt(a) - sqrt(b))^2.
    rng = numpy.random.RandomState(1)
    mean_1, mean_2 = rng.randn(6), rng.randn(6)
    variances_1, variances_2 = rng.rand(6) + 0.1, rng.rand(6) + 0.1
    expected = (((mean_1 - mean_2) ** 2).sum()
                + ((numpy.sqrt(variances_1) - numpy.sqrt(variances_2)) ** 2).sum())
    assert frechet_distance(mean_1, numpy.diag(variances_1), mean_2,
                            numpy.diag(variances_2)) == pytest.approx(expected, rel=1e-10)


def test_general_covariances_agree_with_the_usual_statement():
    # The usual statement: Tr(S1 + S2 - 2 (S1 S2)^1/2), with scipy's general square root.
    rng = numpy.random.RandomState(2)
    covariance_1, covariance_2 = random_covariance(rng, 8), random_covariance(rng, 8)
    mean_1, mean_2 = rng.randn(8), rng.randn(8)
    usual = (((mean_1 - mean_2) ** 2).sum() + numpy.trace(covariance_1 + covariance_2)
             - 2 * numpy.trace(scipy.linalg.sqrtm(covariance_1 @ covariance_2)).real)
    assert frechet_distance(mean_1, covariance_1, mean_2,
                            covariance_2) == pytest.approx(usual, rel=1e-8)


def test_samples_of_a_shifted_gaussian_are_the_shift_squared_apart():
    rng = numpy.random.RandomState(3)
    covariance = random_covariance(rng, 5)
    shift = numpy.array([0.5, -1.0, 0.0, 2.0, 0.25])
    first = rng.multivariate_normal(numpy.zeros(5), covariance, size=200000)
    second = rng.multivariate_normal(shift, covariance, size=200000)
    assert frechet_distance_of_features(first, second) == pytest.approx((shift ** 2).sum(),
                                                                        abs=0.02)


def test_collapsed_samples_are_far_even_with_the_right_mean():
    # Mode collapse: every sample near the mean has the right mean and no spread.
    rng = numpy.random.RandomState(4)
    real = rng.randn(5000, 4) * 2
    collapsed = real.mean(axis=0) + 0.01 * rng.randn(5000, 4)
    # Expected: Tr(S_real) ~ 4 dimensions x variance 4.
    assert frechet_distance_of_features(real, collapsed) == pytest.approx(16, rel=0.1)


def test_the_class_view_counts_the_classes_given_and_their_confidence():
    probabilities = numpy.array([[0.9, 0.05, 0.05], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1],
                                 [0.1, 0.1, 0.8]])
    shares, confidence = class_view(probabilities)
    numpy.testing.assert_allclose(shares, [0.5, 0.25, 0.25])
    assert confidence == pytest.approx((0.9 + 0.7 + 0.6 + 0.8) / 4)


def mixture_log_density(points, centres, width):
    """An independent reference: scipy's Gaussian densities, averaged over the centres."""
    densities = numpy.stack([multivariate_normal(centre, width ** 2).pdf(points)
                             for centre in centres])
    return numpy.log(densities.mean(axis=0))


def test_the_parzen_estimate_on_the_centres_is_the_mixtures_density():
    rng = numpy.random.RandomState(5)
    centres = rng.rand(7, 3)
    points = rng.rand(50, 3)
    mean, standard_error = parzen_log_likelihood(points, centres, 0.3, batch_size=8)
    expected = mixture_log_density(points, centres, 0.3)
    assert mean == pytest.approx(expected.mean(), rel=1e-10)
    assert standard_error == pytest.approx(expected.std() / numpy.sqrt(50), rel=1e-8)


def test_the_chosen_width_is_the_width_the_validation_images_were_drawn_with():
    rng = numpy.random.RandomState(6)
    centres = rng.rand(5, 2) * 10
    drawn = centres[rng.randint(5, size=20000)] + 0.4 * rng.randn(20000, 2)
    width, scores = choose_parzen_width(drawn, centres, widths=[0.1, 0.2, 0.4, 0.8, 1.6])
    assert width == 0.4
    assert scores[0.4] > scores[0.2] and scores[0.4] > scores[0.8]
