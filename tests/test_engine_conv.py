"""The engine's convolutions with padding and strides, and the transposed convolution.

On Theano these are Theano's own ops; on PyTensor, the project's (see
``dltutorials.support.engine``).  Both are held to the same direct loops
over pixels, to each other's adjoint, and to finite differences.
"""
import numpy
import pytest

from dltutorials.support.engine import T, change_flags, conv2d, conv2d_grad_wrt_inputs, theano

# (input rows, cols, filter rows, cols, border_mode, subsample): the DCGAN's
# 4 x 4 stride-2 layers, and odd cases (a row left over by the stride, 'full').
CASES = [(6, 5, 3, 2, 'valid', (1, 1)),
         (8, 8, 4, 4, (1, 1), (2, 2)),
         (7, 8, 3, 3, 'half', (2, 2)),
         (8, 6, 3, 3, (1, 0), (2, 1)),
         (5, 4, 2, 3, 'full', (1, 1))]


def padding(border_mode, kh, kw):
    return {'valid': (0, 0), 'full': (kh - 1, kw - 1),
            'half': (kh // 2, kw // 2)}.get(border_mode, border_mode)


def direct_conv(images, filters, border_mode, subsample):
    """Theano's conv2d as a loop over output pixels: flipped filters on zero-padded images."""
    n_filters, channels, kh, kw = filters.shape
    pad_rows, pad_cols = padding(border_mode, kh, kw)
    padded = numpy.pad(images, ((0, 0), (0, 0), (pad_rows, pad_rows), (pad_cols, pad_cols)))
    flipped = filters[:, :, ::-1, ::-1]
    sh, sw = subsample
    out_rows = (padded.shape[2] - kh) // sh + 1
    out_cols = (padded.shape[3] - kw) // sw + 1
    out = numpy.zeros((len(images), n_filters, out_rows, out_cols))
    for r in range(out_rows):
        for s in range(out_cols):
            patch = padded[:, :, r * sh:r * sh + kh, s * sw:s * sw + kw]
            out[:, :, r, s] = numpy.einsum('bcij,fcij->bf', patch, flipped)
    return out


def direct_transposed_conv(output_grad, filters, input_shape, border_mode, subsample):
    """Each output pixel's value spread back over the input pixels its patch read."""
    n_filters, channels, kh, kw = filters.shape
    pad_rows, pad_cols = padding(border_mode, kh, kw)
    rows, cols = input_shape[2:]
    padded = numpy.zeros((len(output_grad), channels, rows + 2 * pad_rows, cols + 2 * pad_cols))
    flipped = filters[:, :, ::-1, ::-1]
    sh, sw = subsample
    for r in range(output_grad.shape[2]):
        for s in range(output_grad.shape[3]):
            padded[:, :, r * sh:r * sh + kh, s * sw:s * sw + kw] += numpy.einsum(
                'bf,fcij->bcij', output_grad[:, :, r, s], flipped)
    return padded[:, :, pad_rows:pad_rows + rows, pad_cols:pad_cols + cols]


def compiled(rows, cols, kh, kw, border_mode, subsample, channels=2, n_filters=3):
    images, grads, filters = T.tensor4('images'), T.tensor4('grads'), T.tensor4('filters')
    filter_shape = (n_filters, channels, kh, kw)
    convolve = theano.function([images, filters], conv2d(
        images, filters, filter_shape=filter_shape, border_mode=border_mode,
        subsample=subsample))
    transpose = theano.function([grads, filters], conv2d_grad_wrt_inputs(
        grads, filters, input_shape=(None, channels, rows, cols), filter_shape=filter_shape,
        border_mode=border_mode, subsample=subsample))
    return convolve, transpose, filter_shape


@pytest.mark.parametrize('case', CASES, ids=str)
def test_the_convolution_and_its_transpose_match_direct_loops(case):
    rows, cols, kh, kw, border_mode, subsample = case
    with change_flags(floatX='float64'):
        convolve, transpose, filter_shape = compiled(*case)
        rng = numpy.random.RandomState(0)
        images = rng.normal(size=(3, 2, rows, cols))
        filters = rng.normal(size=filter_shape)
        expected = direct_conv(images, filters, border_mode, subsample)
        out = convolve(images, filters)
        numpy.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-12)

        output_grad = rng.normal(size=expected.shape)
        spread = transpose(output_grad, filters)
        assert spread.shape == images.shape
        numpy.testing.assert_allclose(
            spread, direct_transposed_conv(output_grad, filters, images.shape, border_mode,
                                           subsample), rtol=1e-10, atol=1e-12)
        # The adjoint: <conv(x), g> = <x, conv^T(g)>.
        assert (out * output_grad).sum() == pytest.approx((images * spread).sum(), rel=1e-10)


def test_a_stride_2_transposed_convolution_doubles_the_size_as_a_generator_needs():
    # The DCGAN's upsampling: 7 x 7 -> 14 x 14 -> 28 x 28, 4 x 4 filters, padding 1.
    grads, filters = T.tensor4('grads'), T.tensor4('filters')
    upsampled = conv2d_grad_wrt_inputs(grads, filters, input_shape=(None, 4, 14, 14),
                                       filter_shape=(8, 4, 4, 4), border_mode=(1, 1),
                                       subsample=(2, 2))
    out = theano.function([grads, filters], upsampled)(
        numpy.ones((5, 8, 7, 7), dtype=theano.config.floatX),
        numpy.ones((8, 4, 4, 4), dtype=theano.config.floatX))
    assert out.shape == (5, 4, 14, 14) and out.dtype == theano.config.floatX
    # An inner pixel is read by 2 x 2 output positions of each of 8 filters.
    assert out[0, 0, 6, 6] == 2 * 2 * 8


@pytest.mark.parametrize('case', [CASES[1], CASES[2]], ids=str)
def test_gradients_through_the_transposed_convolution_match_finite_differences(case):
    rows, cols, kh, kw, border_mode, subsample = case
    rng = numpy.random.RandomState(1)
    filter_shape = (3, 2, kh, kw)
    out_shape = direct_conv(numpy.zeros((2, 2, rows, cols)), numpy.zeros(filter_shape),
                            border_mode, subsample).shape

    def generator_layer(output_grad, filters):
        # A stand-in for a generator's layer: transposed conv, then a nonlinearity.
        return T.tanh(conv2d_grad_wrt_inputs(output_grad, filters,
                                             input_shape=(None, 2, rows, cols),
                                             filter_shape=filter_shape,
                                             border_mode=border_mode, subsample=subsample))

    with change_flags(floatX='float64'):
        theano.gradient.verify_grad(generator_layer,
                                    [rng.normal(size=out_shape), rng.normal(size=filter_shape)],
                                    rng=rng)
