"""tile_raster_images and scale_to_unit_interval: shapes, placement, scaling, colour."""
import numpy
import pytest

from dltutorials.utils import scale_to_unit_interval, tile_raster_images


def test_scale_to_unit_interval_spans_zero_to_one_and_leaves_its_input_alone():
    values = numpy.array([[-2.0, 0.0], [1.0, 6.0]], dtype='float32')
    scaled = scale_to_unit_interval(values)
    assert scaled.min() == 0 and 0.999999 < scaled.max() <= 1
    numpy.testing.assert_allclose(scaled, (values + 2) / 8, rtol=1e-6)
    assert values[0, 0] == -2.0
    assert numpy.all(scale_to_unit_interval(numpy.full((3, 3), 5.0)) == 0)
    assert scale_to_unit_interval(numpy.arange(4)).dtype.kind == 'f'


def test_tiles_are_placed_row_by_row_with_spacing():
    # Six 2 x 3 images, each constant, scaled to [0, 1] row by row.
    X = numpy.repeat(numpy.arange(6.0)[:, None], 6, axis=1)
    X[:, 0] = -1.0           # so that every image spans a range
    out = tile_raster_images(X, img_shape=(2, 3), tile_shape=(2, 3), tile_spacing=(1, 2),
                             output_pixel_vals=False)
    assert out.shape == (2 * 3 - 1, 3 * 5 - 2)
    assert out.dtype == X.dtype
    tile = scale_to_unit_interval(X[4].reshape(2, 3))
    # image 4 is in grid row 1, column 1
    numpy.testing.assert_allclose(out[3:5, 5:8], tile)
    assert numpy.all(out[2, :] == 0) and numpy.all(out[:, 3:5] == 0)   # the gaps


def test_pixel_values_unscaled_rows_and_missing_tiles():
    X = numpy.linspace(0, 1, 2 * 16).reshape(2, 16)
    pixels = tile_raster_images(X, (4, 4), (2, 2))
    assert pixels.dtype == numpy.uint8 and pixels.shape == (8, 8)
    assert pixels[:4, :4].max() == 254 and pixels[:4, :4].min() == 0   # each row scaled alone
    assert numpy.all(pixels[4:, :] == 0)                               # only 2 of 4 tiles used
    raw = tile_raster_images(X, (4, 4), (1, 2), scale_rows_to_unit_interval=False,
                             output_pixel_vals=False)
    numpy.testing.assert_allclose(raw[:, 4:], X[1].reshape(4, 4))


def test_a_tuple_makes_an_rgba_picture():
    X = numpy.random.RandomState(0).uniform(size=(4, 9))
    out = tile_raster_images((X, None, X, None), (3, 3), (2, 2), tile_spacing=(1, 1))
    assert out.shape == (7, 7, 4) and out.dtype == numpy.uint8
    numpy.testing.assert_array_equal(out[..., 0], out[..., 2])
    assert numpy.all(out[..., 1] == 0) and numpy.all(out[..., 3] == 255)


def test_wrong_shapes_are_refused():
    with pytest.raises(ValueError, match=r'one 28 x 28 image per row .* got shape \(3, 100\)'):
        tile_raster_images(numpy.zeros((3, 100)), (28, 28), (2, 2))
    with pytest.raises(ValueError, match='4 channels'):
        tile_raster_images((numpy.zeros((1, 4)),), (2, 2), (1, 1))
