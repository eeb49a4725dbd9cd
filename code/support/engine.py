"""The engine the tutorials run on: Theano 1.0.5, or PyTensor, its maintained continuation.

Every tutorial imports its symbolic machinery from here::

    from dltutorials.support.engine import theano, T, conv2d, pool_2d, MRG_RandomStreams

and then reads exactly like the original tutorials: ``theano.shared``,
``theano.function(..., givens=..., updates=...)``, ``T.grad``,
``T.nnet.sigmoid``.  On Theano these are Theano's own modules.  Theano 1.0.5
does not install on Python 3.12 and newer; there, the same names come from
PyTensor (``theano`` is the ``pytensor`` module, ``T`` is
``pytensor.tensor`` seen with Theano's ``T.nnet`` namespace), plus three
pieces PyTensor no longer has, written here:

``conv2d``
    Theano's convolution (filters flipped; zero padding and strides), as one
    matrix product of the filters with the image patches (im2col + GEMM, as
    Theano's CorrMM does in C); two small ops gather the patches and, for the
    gradient, add them back; ``conv2d_grad_wrt_inputs``, the transposed
    convolution, is that gradient;
``pool_2d``
    max-pooling over non-overlapping windows with ``ignore_border=True``, as a
    reshape and a max;
``MRG_RandomStreams``
    symbolic random numbers with Theano's method signatures, drawn by
    PyTensor's ``RandomStream`` (a different generator: the same seed gives
    other numbers than on Theano).

Which engine: ``DLTUTORIALS_ENGINE=theano`` or ``pytensor`` in the
environment, else Theano where it is installed and PyTensor elsewhere (see
:func:`dltutorials.support.engine_setup.engine_name`).  ``ENGINE`` names the one in use.
"""
import importlib.util
import os
import types
import warnings

from dltutorials.support.engine_setup import ENGINE_VARIABLE, engine_name

__all__ = ['ENGINE', 'theano', 'T', 'conv2d', 'conv2d_grad_wrt_inputs', 'pool_2d',
           'MRG_RandomStreams', 'change_flags']

ENGINE = engine_name()

if importlib.util.find_spec(ENGINE) is None:
    raise ImportError('the engine is %s (%s), but it is not installed in this Python: %s' % (
        ENGINE, 'set by %s' % ENGINE_VARIABLE if os.environ.get(ENGINE_VARIABLE) else 'the default',
        'Theano 1.0.5 installs on Python 3.8 to 3.11' if ENGINE == 'theano' else
        'install it in a virtualenv of its own with DLTUTORIALS_ENGINE=pytensor pip install -e .'))

if ENGINE == 'theano':
    from dltutorials.support.engine_setup import scipy_deferred
    with scipy_deferred():
        import theano
    import theano.tensor as T
    from theano import change_flags
    from theano.sandbox.rng_mrg import MRG_RandomStreams
    from theano.tensor.nnet import conv2d
    from theano.tensor.nnet.abstract_conv import conv2d_grad_wrt_inputs
    from theano.tensor.signal.pool import pool_2d

    # Registers a faster max-pooling gradient.
    from dltutorials.support import fast_pooling  # noqa: F401
    # ... and a faster sum of each feature map (batch normalisation after a convolution).
    from dltutorials.support import fast_sums  # noqa: F401
    # Compiled code of ops without properties is reused, not rebuilt by every process.
    from dltutorials.support import compile_cache  # noqa: F401
    # ... and compiled faster the first time, the common headers precompiled.
    from dltutorials.support import precompiled_headers  # noqa: F401
    # The MRG generator's numbers drawn several streams at a time.
    from dltutorials.support import fast_random  # noqa: F401
    # ... and the float32 sigmoid's loops vectorised, its values unchanged.
    from dltutorials.support import fast_sigmoid
    fast_sigmoid.install()
    # (set up for both engines at the end of this module)
    from theano.compile.function_module import Function as _CompiledFunction
    from theano.tensor import elemwise as _elemwise, elemwise_cgen as _elemwise_cgen
    from dltutorials.support.engine_setup import refuse_unsafe_openmp
    refuse_unsafe_openmp(theano.config)

else:
    import numpy
    import pytensor as theano
    import pytensor.tensor as _pt
    from pytensor.graph.basic import Apply as _Apply
    from pytensor.graph.op import Op as _Op
    from pytensor.tensor import special as _special
    from pytensor.tensor.random.utils import RandomStream as _RandomStream

    change_flags = theano.config.change_flags

    # PyTensor 3.3 deprecates the implicit updates of random streams that the
    # original tutorials rely on (the dA's corruption is drawn inside the
    # graph and its generator advanced by every call); they work throughout
    # PyTensor 3 (setup.py asks for <4), so the notices are noise to a learner.
    # So is the notice that scan will stop returning its updates: the RBM's
    # Gibbs chain takes the random streams' updates from it, as in Theano.
    for _message in ('RandomStream is deprecated', 'RandomVariable Ops will stop hiding',
                     'Setting default_update is deprecated', 'Scan return signature will change'):
        warnings.filterwarnings('ignore', message=_message)
    # With the Numba backend, the two convolution ops below run their numpy
    # code as they are (Numba's "object mode"), which is what they are for.
    warnings.filterwarnings('ignore',
                            message=r"Numba will use object mode to run (Im2Col|Col2Im)")
    # The C backend's modules compile faster the first time, the common headers precompiled.
    from dltutorials.support import precompiled_headers  # noqa: F401
    # ... and a faster sum of each feature map (batch normalisation after a convolution).
    from dltutorials.support import fast_sums  # noqa: F401
    # (set up for both engines at the end of this module)
    from pytensor.compile.executor import Function as _CompiledFunction
    from pytensor.tensor import elemwise as _elemwise, elemwise_cgen as _elemwise_cgen

    def _softmax(x):
        """Softmax of each row (Theano's ``T.nnet.softmax``)."""
        return _special.softmax(x, axis=-1)

    def _relu(x, alpha=0):
        """Theano's ``T.nnet.relu``: x where x > 0, else alpha * x."""
        return _pt.switch(x > 0, x, alpha * x)

    class _TensorModule(types.ModuleType):
        """``pytensor.tensor`` seen with Theano's ``nnet`` namespace (PyTensor is untouched)."""

        nnet = types.SimpleNamespace(sigmoid=_pt.sigmoid, softplus=_pt.softplus,
                                     softmax=_softmax, relu=_relu)

        def __getattr__(self, name):
            return getattr(_pt, name)

    T = _TensorModule('T', _pt.__doc__)

    class _PatchOp(_Op):
        """An op over the kh x kw patches of (batch, C, H, W) images, every sh rows and sw columns."""
        __props__ = ('kh', 'kw', 'sh', 'sw')

        def __init__(self, kh, kw, sh=1, sw=1):
            self.kh, self.kw, self.sh, self.sw = kh, kw, sh, sw

        def patch_grid(self, images):
            """(batch, channels, rows, cols, out_rows, out_cols) of ``images``."""
            batch, channels, rows, cols = images.shape
            return (batch, channels, rows, cols, (rows - self.kh) // self.sh + 1,
                    (cols - self.kw) // self.sw + 1)

        def window(self, i, j, out_rows, out_cols):
            """The pixels that offset (i, j) of the patches at all positions cover."""
            return (slice(i, i + self.sh * (out_rows - 1) + 1, self.sh),
                    slice(j, j + self.sw * (out_cols - 1) + 1, self.sw))

    class Im2Col(_PatchOp):
        """Image patches as columns: (batch, C, H, W) -> (C * kh * kw, out_rows * out_cols * batch).

        Row (c, i, j) holds pixel (sh r + i, sw s + j) of map c for every
        output position (r, s) and image: the right operand of the
        convolution's one matrix product.  Built with kh * kw strided copies
        from the images laid out pixel by pixel, (C, H, W, batch), so that
        each copies runs of ``batch`` contiguous values (copying from the
        transposed view instead, one value per image, took 2.4 times as long:
        39.4 -> 16.7 ms for LeNet's second layer, batch 500); its gradient,
        :class:`Col2Im`, adds them back the same way (autodiff of slicing
        would build kh * kw image-sized arrays and sum them).
        """

        def make_node(self, images):
            images = _pt.as_tensor_variable(images)
            return _Apply(self, [images], [_pt.matrix(dtype=images.dtype)])

        def perform(self, node, inputs, output_storage):
            (images,) = inputs
            batch, channels, rows, cols, out_rows, out_cols = self.patch_grid(images)
            by_pixel = numpy.ascontiguousarray(images.transpose(1, 2, 3, 0))  # (C, H, W, batch)
            columns = numpy.empty((channels, self.kh, self.kw, out_rows, out_cols, batch),
                                  dtype=images.dtype)
            for i in range(self.kh):
                for j in range(self.kw):
                    columns[:, i, j] = by_pixel[(slice(None),)
                                                + self.window(i, j, out_rows, out_cols)]
            output_storage[0][0] = columns.reshape(channels * self.kh * self.kw, -1)

        def pullback(self, inputs, outputs, cotangents):
            return [Col2Im(self.kh, self.kw, self.sh, self.sw)(cotangents[0], inputs[0])]

        L_op = pullback   # the name of this method before PyTensor 3.3

    class Col2Im(_PatchOp):
        """The gradient of :class:`Im2Col`: each column entry added back to its pixel.

        ``images`` gives only the shape of the result.
        """

        def make_node(self, columns, images):
            columns, images = _pt.as_tensor_variable(columns), _pt.as_tensor_variable(images)
            return _Apply(self, [columns, images], [images.type()])

        def perform(self, node, inputs, output_storage):
            columns, images = inputs
            batch, channels, rows, cols, out_rows, out_cols = self.patch_grid(images)
            columns = columns.reshape(channels, self.kh, self.kw, out_rows, out_cols, batch)
            by_pixel = numpy.zeros((channels, rows, cols, batch), dtype=columns.dtype)
            for i in range(self.kh):
                for j in range(self.kw):
                    by_pixel[(slice(None),) + self.window(i, j, out_rows, out_cols)] += \
                        columns[:, i, j]
            output_storage[0][0] = numpy.ascontiguousarray(by_pixel.transpose(3, 0, 1, 2))

        def connection_pattern(self, node):
            return [[True], [False]]

        def pullback(self, inputs, outputs, cotangents):
            # Linear in the columns: its gradient gathers the patches again.
            return [Im2Col(self.kh, self.kw, self.sh, self.sw)(cotangents[0]),
                    theano.gradient.disconnected_type()]

        L_op = pullback

    def _padding(border_mode, kh, kw):
        """Rows and columns of zeros around the image that ``border_mode`` asks for."""
        if border_mode == 'valid':
            return 0, 0
        if border_mode == 'full':
            return kh - 1, kw - 1
        if border_mode == 'half':
            return kh // 2, kw // 2
        if isinstance(border_mode, int):
            return border_mode, border_mode
        return tuple(int(b) for b in border_mode)

    def _filter_shape(filters, filter_shape):
        shape = filter_shape if filter_shape is not None else filters.type.shape
        if shape is None or any(s is None for s in shape):
            raise ValueError('conv2d on PyTensor needs filter_shape')
        return tuple(int(s) for s in shape)

    def conv2d(input, filters, input_shape=None, filter_shape=None, border_mode='valid',
               subsample=(1, 1), filter_flip=True):
        """Theano's ``conv2d``: (batch, channels, rows, cols) * (filters, channels, kh, kw).

        Each output pixel is the dot product of one image patch with a
        flipped filter, so the whole convolution is one matrix product:
        filters (n_filters, channels * kh * kw) times patches
        (channels * kh * kw, out_rows * out_cols * batch), as Theano's CorrMM
        does in C.  ``border_mode``: 'valid', 'full', 'half', or the rows and
        columns of zeros added around the image; ``subsample``: the strides.
        """
        n_filters, n_channels, kh, kw = _filter_shape(filters, filter_shape)
        pad_rows, pad_cols = _padding(border_mode, kh, kw)
        sh, sw = (int(s) for s in subsample)
        if pad_rows or pad_cols:
            padded = _pt.zeros((input.shape[0], input.shape[1], input.shape[2] + 2 * pad_rows,
                                input.shape[3] + 2 * pad_cols), dtype=input.dtype)
            input = _pt.set_subtensor(padded[:, :, pad_rows:padded.shape[2] - pad_rows,
                                             pad_cols:padded.shape[3] - pad_cols], input)
        if filter_flip:
            filters = filters[:, :, ::-1, ::-1]
        out_rows = (input.shape[2] - kh) // sh + 1
        out_cols = (input.shape[3] - kw) // sw + 1
        out = _pt.dot(filters.reshape((n_filters, n_channels * kh * kw)),
                      Im2Col(kh, kw, sh, sw)(input))
        return out.reshape((n_filters, out_rows, out_cols, input.shape[0])).dimshuffle(3, 0, 1, 2)

    def conv2d_grad_wrt_inputs(output_grad, filters, input_shape, filter_shape=None,
                               border_mode='valid', subsample=(1, 1), filter_flip=True):
        """The transposed convolution: the gradient of :func:`conv2d` with respect to its input.

        ``output_grad`` (batch, filters, out_rows, out_cols) is spread back
        onto images of ``input_shape`` (batch, channels, rows, cols; the batch
        may be None) through the same filters: what a generator uses to
        upsample.  Built as the gradient of the convolution, so it is the
        convolution's adjoint by construction.
        """
        batch = output_grad.shape[0] if input_shape[0] is None else input_shape[0]
        placeholder = _pt.zeros((batch,) + tuple(input_shape[1:]), dtype=output_grad.dtype)
        convolved = conv2d(placeholder, filters, filter_shape=filter_shape,
                           border_mode=border_mode, subsample=subsample,
                           filter_flip=filter_flip)
        return theano.grad(None, placeholder, known_grads={convolved: output_grad})

    def pool_2d(input, ws=None, ignore_border=True, stride=None, pad=(0, 0), mode='max'):
        """Max-pooling over non-overlapping ``ws`` windows of the last two axes.

        Rows and columns left over by the windows are dropped
        (``ignore_border=True``).  Where several elements share a window's
        maximum, each receives the gradient, as in Theano.
        """
        if (mode != 'max' or not ignore_border or tuple(pad) != (0, 0)
                or (stride is not None and tuple(stride) != tuple(ws))):
            raise NotImplementedError("pool_2d on PyTensor: only mode='max', "
                                      "ignore_border=True, stride=ws, no padding")
        r, s = (int(v) for v in ws)
        n, c = input.shape[0], input.shape[1]
        h, w = input.shape[2] // r, input.shape[3] // s
        windows = input[:, :, :h * r, :w * s].reshape((n, c, h, r, w, s))
        return windows.max(axis=(3, 5))

    class MRG_RandomStreams:
        """Theano's symbolic random streams, drawn by PyTensor's ``RandomStream``.

        Each draw is a symbolic variable whose generator state is a shared
        variable that every compiled function using it advances.
        """

        def __init__(self, seed=12345):
            self.streams = _RandomStream(int(seed))

        def binomial(self, size=None, n=1, p=0.5, dtype='int64'):
            if isinstance(n, int) and n == 1:
                # A coin flip per element, as Theano's MRG draws it: uniform < p
                # (numpy's general binomial sampler is several times slower).
                return _pt.cast(self.streams.uniform(0.0, 1.0, size=size) < p, dtype)
            return _pt.cast(self.streams.binomial(n, p, size=size), dtype)

        def uniform(self, size=None, low=0.0, high=1.0, dtype=None):
            draw = self.streams.uniform(low, high, size=size)
            return _pt.cast(draw, dtype or theano.config.floatX)

        def normal(self, size=None, avg=0.0, std=1.0, dtype=None):
            draw = self.streams.normal(avg, std, size=size)
            return _pt.cast(draw, dtype or theano.config.floatX)

        def __repr__(self):
            return 'MRG_RandomStreams(PyTensor RandomStream)'


# Both engines: elementwise loops vectorised (glibc's vector math; see vector_math),
# subnormal numbers flushed to zero while a compiled function runs (see denormals), and each
# module compiled once for all compile folders (see object_cache) and linked with less work
# (see fast_linking).
from dltutorials.support import denormals, fast_linking, object_cache, vector_math  # noqa: E402

# (On Theano a comparison cast to float32 stays a byte: with it vectorised, its sampling's
# sigmoid would call glibc's vector expf and draw other samples; fast_sigmoid rewrites both.)
vector_math.install(_elemwise_cgen, _elemwise, comparisons_as_floats=ENGINE == 'pytensor')
denormals.install(_CompiledFunction)
object_cache.install(precompiled_headers.cmodule, precompiled_headers.config)
fast_linking.install(precompiled_headers.cmodule)
