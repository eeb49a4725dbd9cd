"""Turning weight matrices into pictures: the helpers the tutorials import from ``utils``.

A hidden unit of a model on 28 x 28 images has 784 incoming weights: shown as
a 28 x 28 image, they are the pattern that unit responds to, its *filter*.
:func:`tile_raster_images` lays many such rows side by side in one grey-level
(or RGBA) array, ready to be saved as an image::

    from dltutorials.utils import tile_raster_images
    tiles = tile_raster_images(X=da.W.get_value(borrow=True).T, img_shape=(28, 28),
                               tile_shape=(10, 10), tile_spacing=(1, 1))
    PIL.Image.fromarray(tiles).save('filters.png')

Only numpy is needed here; :func:`dltutorials.support.plotting.save_filter_image`
does the above in one call.
"""
import numpy

__all__ = ['scale_to_unit_interval', 'tile_raster_images']


def scale_to_unit_interval(ndar, eps=1e-8):
    """Return ``ndar`` shifted and scaled so that its values span [0, 1].

    The minimum maps to 0 and the maximum to (just under) 1; ``eps`` keeps a
    constant array from dividing by zero (it becomes all zeros).  Returns a
    new floating-point array; ``ndar`` is left as it is.
    """
    scaled = numpy.array(ndar, dtype=numpy.result_type(ndar, numpy.float32), copy=True)
    scaled -= scaled.min()
    scaled *= 1.0 / (scaled.max() + eps)
    return scaled


def tile_raster_images(X, img_shape, tile_shape, tile_spacing=(0, 0),
                       scale_rows_to_unit_interval=True, output_pixel_vals=True):
    """Lay the rows of ``X``, each an image, out in a grid: one 2-D array to show or save.

    Parameters
    ----------
    X : array (n_images, height * width), or a tuple of 4 such arrays (or None)
        one flattened image per row, filled into the grid row by row; a
        tuple gives the red, green, blue and alpha channels of a colour
        picture, None standing for a channel of zeros (an opaque alpha).
        Rows beyond the grid are ignored; missing ones leave blank tiles.
    img_shape : (height, width)
    tile_shape : (rows, columns) of the grid
    tile_spacing : (vertical, horizontal) blank pixels between tiles
    scale_rows_to_unit_interval : bool
        scale each image on its own to [0, 1] (see
        :func:`scale_to_unit_interval`) before placing it.
    output_pixel_vals : bool
        return uint8 pixels in 0..255 (what image files hold) instead of
        values of the type of ``X``.

    Returns
    -------
    array
        of shape ``(rows * (height + vertical) - vertical, W)`` with
        ``W = columns * (width + horizontal) - horizontal``, with a
        trailing axis of 4 for a tuple ``X``.
    """
    if len(img_shape) != 2 or len(tile_shape) != 2 or len(tile_spacing) != 2:
        raise ValueError('img_shape, tile_shape and tile_spacing must be pairs, got %r, %r, %r'
                         % (img_shape, tile_shape, tile_spacing))
    height, width = img_shape
    rows, columns = tile_shape
    v_space, h_space = tile_spacing
    out_shape = (rows * (height + v_space) - v_space, columns * (width + h_space) - h_space)

    if isinstance(X, tuple):
        if len(X) != 4:
            raise ValueError('a tuple X holds 4 channels (R, G, B, A), got %d' % len(X))
        channel_dtype = 'uint8' if output_pixel_vals else next(
            (numpy.asarray(c).dtype for c in X if c is not None), numpy.dtype(float))
        out = numpy.zeros(out_shape + (4,), dtype=channel_dtype)
        for channel, values in enumerate(X):
            if values is None:
                # A missing colour is black; a missing alpha channel is opaque.
                if channel == 3:
                    out[..., channel] = 255 if output_pixel_vals else 1
            else:
                out[..., channel] = tile_raster_images(
                    values, img_shape, tile_shape, tile_spacing,
                    scale_rows_to_unit_interval, output_pixel_vals)
        return out

    X = numpy.asarray(X)
    if X.ndim != 2 or X.shape[1] != height * width:
        raise ValueError('X must hold one %d x %d image per row (shape (n, %d)), got shape %s'
                         % (height, width, height * width, X.shape))
    n_tiles = min(len(X), rows * columns)
    images = X[:n_tiles].reshape(n_tiles, height, width)
    if scale_rows_to_unit_interval:
        images = numpy.stack([scale_to_unit_interval(image) for image in images]) \
            if n_tiles else images.astype(numpy.float32)
    if output_pixel_vals:
        images = images * 255
        out = numpy.zeros(out_shape, dtype='uint8')
    else:
        out = numpy.zeros(out_shape, dtype=X.dtype)
    for tile, image in enumerate(images):
        top = (tile // columns) * (height + v_space)
        left = (tile % columns) * (width + h_space)
        out[top:top + height, left:left + width] = image
    return out
