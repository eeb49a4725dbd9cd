"""A faster max-pooling and max-pooling gradient for Theano on the CPU.

Theano 1.0.5's ``Pool`` and ``MaxPoolGrad`` walk every window through
general index arithmetic, and ``MaxPoolGrad`` finds each window's maximum
again before comparing element by element.  For the non-overlapping windows
LeNet uses (``ws == stride``, no padding, ``ignore_border=True``), the two
ops here read each image row by row as it lies in memory, and compute the
same results: the same maximum (NaN only where the window's first element
is NaN, as in Theano), and the gradient passed to every element equal to
its window's maximum, ties included.

Measured here (2-core AMD EPYC, float32, one op at a time, Theano's ops
against these, OpenMP off / on):

============================  ==============  ========================
LeNet's layer                 pooling, ms     pooling and gradient, ms
============================  ==============  ========================
first, 500 x 20 x 24 x 24     7.58 / 4.81 ->  38.04 / 21.42 ->
                              2.84 / 1.74     7.58 / 4.14
second, 500 x 50 x 8 x 8      1.91 / 1.75 ->  12.97 / 7.68 ->
                              1.35 / 0.88     3.33 / 1.95
============================  ==============  ========================

An earlier version of this module rewrote only the gradient, into one
elementwise loop over the windows (Theano's loops over axes of length 2
were its limit).  Against it, in ``benchmarks/benchmark_epoch.py --engine
theano --models lenet lenet_bn --dtypes float32 --rounds 3``, run twice
each way, interleaved: LeNet's epoch 10.57-10.72 s -> 9.67-9.76 s, the
conv net with batch norm 20.24-21.81 s -> 17.08-17.74 s.

The rewrites are registered with Theano's ``fast_run`` optimisations when
this module is imported (:mod:`dltutorials.support.engine` does, on Theano)
and apply on the CPU only: on a GPU, cuDNN's pooling is the better choice.
"""
import numpy
import theano
import theano.tensor as T
from theano import gof
from theano.tensor.opt import register_specialize
from theano.tensor.signal.pool import MaxPoolGrad, Pool


class _WindowOp(gof.OpenMPOp):
    """An op over the non-overlapping ``ws`` windows of (batch, maps, rows, columns) images.

    Windows with ``stride == ws``, no padding, ``ignore_border=True``: the
    pooled image has ``rows // ws[0]`` rows and ``columns // ws[1]`` columns.
    The C code reads each image row by row, the way it lies in memory, and
    shares the images among Theano's OpenMP threads where ``openmp`` is on
    (by default, as the ``openmp`` flag is when the op is made: inside
    :func:`~dltutorials.support.engine_setup.convolution_openmp` for the
    convolutional models).
    """
    __props__ = ('ws', 'openmp')

    def __init__(self, ws, openmp=None):
        super().__init__(openmp=openmp)
        self.ws = tuple(int(v) for v in ws)

    def c_code_cache_version(self):
        return (4,)

    def _pooled_shape(self, shape):
        return tuple(shape[:2]) + (shape[2] // self.ws[0], shape[3] // self.ws[1])


class MaxPoolByWindows(_WindowOp):
    """Max-pooling over non-overlapping windows: Theano's ``Pool(mode='max')`` for them.

    As in Theano, a window's maximum starts from its first element and takes
    each later one that is greater: a NaN in the first place is the maximum,
    a NaN elsewhere is passed over.
    """

    def make_node(self, x):
        x = T.as_tensor_variable(x)
        if x.ndim != 4:
            raise TypeError('MaxPoolByWindows takes 4-D images, not %d-D' % x.ndim)
        return gof.Apply(self, [x], [x.type()])

    def infer_shape(self, node, shapes):
        (n, c, rows, cols), = shapes
        return [(n, c, rows // self.ws[0], cols // self.ws[1])]

    def perform(self, node, inputs, output_storage):
        x, = inputs
        r, s = self.ws
        n, c, h, w = self._pooled_shape(x.shape)
        windows = x[:, :, :h * r, :w * s].reshape(n, c, h, r, w, s)
        pooled = windows[:, :, :, 0, :, 0].copy()
        for a in range(r):
            for b in range(s):
                value = windows[:, :, :, a, :, b]
                pooled = numpy.where(value > pooled, value, pooled)
        output_storage[0][0] = pooled

    def grad(self, inputs, output_gradients):
        x, = inputs
        return [MaxPoolGradByWindows(self.ws, self.openmp)(x, self(x), output_gradients[0])]

    def c_code(self, node, name, inputs, outputs, sub):
        """The pooling in C: each image's rows, one window row at a time."""
        x, = inputs
        z, = outputs
        r, s = self.ws
        return """
        {
            PyArrayObject* images = PyArray_GETCONTIGUOUS(%(x)s);
            if (!images) %(fail)s
            const npy_intp* dims = PyArray_DIMS(images);
            const npy_intp rows = dims[2], cols = dims[3];
            npy_intp pooled_dims[4] = {dims[0], dims[1], rows / %(r)d, cols / %(s)d};
            if (!%(z)s || !PyArray_IS_C_CONTIGUOUS(%(z)s)
                    || !PyArray_CompareLists(PyArray_DIMS(%(z)s), pooled_dims, 4)) {
                Py_XDECREF(%(z)s);
                %(z)s = (PyArrayObject*)PyArray_EMPTY(4, pooled_dims,
                                                      PyArray_TYPE(images), 0);
                if (!%(z)s) { Py_DECREF(images); %(fail)s }
            }
            const npy_intp h = pooled_dims[2], w = pooled_dims[3];
            const npy_intp planes = dims[0] * dims[1];
            const dtype_%(x)s* in = (const dtype_%(x)s*)PyArray_DATA(images);
            dtype_%(z)s* out = (dtype_%(z)s*)PyArray_DATA(%(z)s);
            #pragma omp parallel for schedule(static)
            for (npy_intp p = 0; p < planes; ++p) {
                const dtype_%(x)s* plane = in + p * rows * cols;
                dtype_%(z)s* pooled = out + p * h * w;
                for (npy_intp i = 0; i < h; ++i) {
                    const dtype_%(x)s* first = plane + i * %(r)d * cols;
                    dtype_%(z)s* row = pooled + i * w;
                    for (npy_intp j = 0; j < w; ++j)
                        row[j] = first[j * %(s)d];
                    for (int a = 0; a < %(r)d; ++a) {
                        const dtype_%(x)s* line = first + a * cols;
                        for (int b = (a == 0); b < %(s)d; ++b)
                            for (npy_intp j = 0; j < w; ++j) {
                                const dtype_%(x)s v = line[j * %(s)d + b];
                                row[j] = v > row[j] ? v : row[j];
                            }
                    }
                }
            }
            Py_DECREF(images);
        }
        """ % dict(x=x, z=z, r=r, s=s, fail=sub['fail'])


class MaxPoolGradByWindows(_WindowOp):
    """The gradient of :class:`MaxPoolByWindows`: Theano's ``MaxPoolGrad`` for these windows.

    ``x`` (batch, maps, rows, columns) is the pooling's input, ``maxout``
    its output and ``gz`` the gradient arriving there.  Every element equal
    to its window's maximum gets the window's gradient (ties included, as in
    Theano); the others, and the rows and columns the windows leave over, get
    zero.
    """

    def make_node(self, x, maxout, gz):
        x, maxout, gz = (T.as_tensor_variable(v) for v in (x, maxout, gz))
        if not x.ndim == maxout.ndim == gz.ndim == 4 or not x.dtype == maxout.dtype == gz.dtype:
            raise TypeError('MaxPoolGradByWindows takes three 4-D tensors of one dtype')
        return gof.Apply(self, [x, maxout, gz], [x.type()])

    def infer_shape(self, node, shapes):
        return [shapes[0]]

    def perform(self, node, inputs, output_storage):
        x, maxout, gz = inputs
        r, s = self.ws
        n, c, h, w = self._pooled_shape(x.shape)
        windows = x[:, :, :h * r, :w * s].reshape(n, c, h, r, w, s)
        is_max = windows == maxout[:, :, :, None, :, None]
        grad = numpy.zeros_like(x)
        grad[:, :, :h * r, :w * s] = numpy.where(
            is_max, 0 + gz[:, :, :, None, :, None], 0).reshape(n, c, h * r, w * s)
        output_storage[0][0] = grad

    def c_code(self, node, name, inputs, outputs, sub):
        """The gradient in C: each image's rows against their windows' maxima."""
        x, maxout, gz = inputs
        gx, = outputs
        r, s = self.ws
        return """
        {
            PyArrayObject* images = PyArray_GETCONTIGUOUS(%(x)s);
            PyArrayObject* pooled = PyArray_GETCONTIGUOUS(%(maxout)s);
            PyArrayObject* incoming = PyArray_GETCONTIGUOUS(%(gz)s);
            if (!images || !pooled || !incoming) {
                Py_XDECREF(images); Py_XDECREF(pooled); Py_XDECREF(incoming);
                %(fail)s
            }
            const npy_intp* dims = PyArray_DIMS(images);
            const npy_intp rows = dims[2], cols = dims[3];
            npy_intp pooled_dims[4] = {dims[0], dims[1], rows / %(r)d, cols / %(s)d};
            if (!PyArray_CompareLists(PyArray_DIMS(pooled), pooled_dims, 4)
                    || !PyArray_CompareLists(PyArray_DIMS(incoming), pooled_dims, 4)) {
                PyErr_SetString(PyExc_ValueError,
                                "MaxPoolGradByWindows: the pooled output or its gradient "
                                "does not have the pooled shape of the images");
                Py_DECREF(images); Py_DECREF(pooled); Py_DECREF(incoming);
                %(fail)s
            }
            if (!%(gx)s || !PyArray_IS_C_CONTIGUOUS(%(gx)s)
                    || !PyArray_CompareLists(PyArray_DIMS(%(gx)s), dims, 4)) {
                Py_XDECREF(%(gx)s);
                %(gx)s = (PyArrayObject*)PyArray_EMPTY(4, dims, PyArray_TYPE(images), 0);
                if (!%(gx)s) {
                    Py_DECREF(images); Py_DECREF(pooled); Py_DECREF(incoming);
                    %(fail)s
                }
            }
            const npy_intp h = pooled_dims[2], w = pooled_dims[3];
            const npy_intp planes = dims[0] * dims[1], width = w * %(s)d;
            // A window row's maximum and gradient, repeated for each of its
            // columns: then the comparison runs over three contiguous rows, a
            // select the compiler vectorises (element by element, which one is
            // the maximum is a branch no predictor guesses: 6 times slower).
            #ifdef _OPENMP
            const int n_threads = omp_get_max_threads();
            #else
            const int n_threads = 1;
            #endif
            // each thread's two rows, a cache line apart from the next thread's
            const npy_intp per_thread = (2 * width + 16 + 15) / 16 * 16;
            dtype_%(x)s* widened = (dtype_%(x)s*)malloc(
                n_threads * per_thread * sizeof(dtype_%(x)s));
            if (!widened) {
                PyErr_NoMemory();
                Py_DECREF(images); Py_DECREF(pooled); Py_DECREF(incoming);
                %(fail)s
            }
            #pragma omp parallel for schedule(static)
            for (npy_intp p = 0; p < planes; ++p) {
                #ifdef _OPENMP
                dtype_%(x)s* widened_max = widened + omp_get_thread_num() * per_thread;
                #else
                dtype_%(x)s* widened_max = widened;
                #endif
                dtype_%(x)s* widened_grad = widened_max + width;
                const dtype_%(x)s* plane = (const dtype_%(x)s*)PyArray_DATA(images)
                                           + p * rows * cols;
                const dtype_%(x)s* maxima = (const dtype_%(x)s*)PyArray_DATA(pooled) + p * h * w;
                const dtype_%(x)s* grads = (const dtype_%(x)s*)PyArray_DATA(incoming) + p * h * w;
                dtype_%(gx)s* out = (dtype_%(gx)s*)PyArray_DATA(%(gx)s) + p * rows * cols;
                for (npy_intp i = 0; i < h; ++i) {
                    for (npy_intp k = 0; k < width; ++k) {
                        widened_max[k] = maxima[i * w + k / %(s)d];
                        // (0 + g: the sum Theano's MaxPoolGrad writes, -0.0 included)
                        widened_grad[k] = 0 + grads[i * w + k / %(s)d];
                    }
                    for (int a = 0; a < %(r)d; ++a) {
                        const dtype_%(x)s* line = plane + (i * %(r)d + a) * cols;
                        dtype_%(gx)s* o = out + (i * %(r)d + a) * cols;
                        for (npy_intp k = 0; k < width; ++k)
                            o[k] = line[k] == widened_max[k] ? widened_grad[k] : 0;
                        for (npy_intp k = width; k < cols; ++k)
                            o[k] = 0;
                    }
                }
                for (npy_intp k = h * %(r)d * cols; k < rows * cols; ++k)
                    out[k] = 0;
            }
            free(widened);
            Py_DECREF(images); Py_DECREF(pooled); Py_DECREF(incoming);
        }
        """ % dict(x=x, maxout=maxout, gz=gz, gx=gx, r=r, s=s, fail=sub['fail'])


def _non_overlapping_window(node):
    """The window (rows, columns) of a 2-D max-pooling node these ops compute, else None."""
    if not theano.config.device.startswith('cpu'):
        return None
    x, ws, stride, pad = node.inputs[0], node.inputs[-3], node.inputs[-2], node.inputs[-1]
    if (node.op.ndim != 2 or not node.op.ignore_border or node.op.mode != 'max'
            or x.ndim != 4
            or not all(isinstance(v, T.TensorConstant) for v in (ws, stride, pad))):
        return None
    window = tuple(int(v) for v in ws.data)
    if tuple(int(v) for v in stride.data) != window or any(int(v) for v in pad.data):
        return None
    return window


@register_specialize
@gof.local_optimizer([Pool])
def local_max_pool_by_windows(node):
    """Replace Pool by :class:`MaxPoolByWindows` where they agree."""
    if not isinstance(node.op, Pool):
        return False
    window = _non_overlapping_window(node)
    return window is not None and [MaxPoolByWindows(window)(node.inputs[0])]


@register_specialize
@gof.local_optimizer([MaxPoolGrad])
def local_max_pool_grad_by_windows(node):
    """Replace MaxPoolGrad by :class:`MaxPoolGradByWindows` where they agree."""
    if not isinstance(node.op, MaxPoolGrad):
        return False
    window = _non_overlapping_window(node)
    x, maxout, gz = node.inputs[:3]
    if window is None or not x.dtype == maxout.dtype == gz.dtype:
        return False
    return [MaxPoolGradByWindows(window)(x, maxout, gz)]
