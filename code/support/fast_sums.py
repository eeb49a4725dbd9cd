"""Faster sums over a minibatch on the CPU: each feature map's, and each column's.

Batch normalisation after a convolution sums its (batch, maps, rows,
columns) activations over every axis but the maps, ``x.sum(axis=[0, 2,
3])``, several times in a training step (the mean, the variance and their
gradients: 14 sums in the conv net with tricks).  Theano 1.0.5's ``Sum``
walks the array in memory order and adds each value to its map's total, so
that every addition waits for the one before it: 0.62 ms for a 128 x 32 x
12 x 12 float32 array here, 14 % of the conv net's training step.

:class:`FeatureMapSum` computes the same sums in the same order, so the
results are Theano's bit for bit: each map's total starts at zero and adds
its values image by image, row by row, in the accumulator's dtype (float64
for float32 activations, as Theano's ``acc_dtype``), then is rounded to the
output's dtype once.  It runs eight maps' totals side by side, so that eight
additions are in flight at once, and shares the maps among Theano's OpenMP
threads where ``openmp`` is on (inside
:func:`~dltutorials.support.engine_setup.convolution_openmp`, as for the
convolutional models' pooling).

Measured here (2-core AMD EPYC, float32, one op at a time, OpenMP off):
0.62 -> 0.14 ms for 128 x 32 x 12 x 12, 0.19 -> 0.04 ms for 128 x 64 x 4 x 4,
the 14 sums of a step of the conv net with tricks 5.8 -> 0.9 ms (with
OpenMP, ``profile=True``).  In ``benchmarks/benchmark_epoch.py --engine
theano --models lenet_bn --dtypes float32 --rounds 3``, twice each way,
interleaved: the conv net's epoch 18.10-18.24 s -> 16.01-16.46 s.

:class:`LeadingAxisSum` does the same for the sum over the first axis
(``Sum{axis=[0]}``: a mean over time, a bias gradient), adding whole rows at
a time.

The rewrites are registered with the engine's ``specialize`` optimisations
when this module is imported (:mod:`dltutorials.support.engine` does) and
apply on the CPU only.  PyTensor's ``Sum`` adds in the same order as
Theano's and is slower still (2.26 ms for a 128 x 32 x 14 x 14 float32
array here, 17 % of the DCGAN's training step): on PyTensor,
:class:`FeatureMapSum` replaces it too (0.24 ms); the sum over the first
axis is left to PyTensor's own op there (:class:`LeadingAxisSum` is
Theano's only).
"""
import numpy

from dltutorials.support.engine_setup import engine_name

if engine_name() == 'theano':
    import theano
    import theano.tensor as T
    from theano.gof import Apply, Op, OpenMPOp
    from theano.gof import local_optimizer as node_rewriter
    from theano.tensor.elemwise import Sum
    from theano.tensor.opt import register_specialize
else:
    import pytensor as theano
    import pytensor.tensor as T
    from pytensor.graph.basic import Apply
    from pytensor.graph.rewriting.basic import node_rewriter
    from pytensor.link.c.op import COp as Op, OpenMPOp
    from pytensor.tensor.math import Sum
    from pytensor.tensor.rewriting.basic import register_specialize

# The maps whose totals one thread keeps at once: independent additions in flight.
MAPS_AT_ONCE = 8
FLOAT_DTYPES = ('float32', 'float64')
C_TYPES = {'float32': 'npy_float32', 'float64': 'npy_float64'}


class FeatureMapSum(OpenMPOp):
    """Each map's sum over a (batch, maps, rows, columns) array: Theano's ``Sum{axis=[0, 2, 3]}``.

    Input: 4-D, float32 or float64.  Output: 1-D of length ``maps``, of
    ``dtype``; the sums are accumulated in ``acc_dtype`` in the input's
    memory order (image by image, row by row), as Theano's ``Sum`` does, and
    rounded to ``dtype`` at the end.
    """
    __props__ = ('dtype', 'acc_dtype', 'openmp')

    def __init__(self, dtype, acc_dtype, openmp=None):
        super().__init__(openmp=openmp)
        self.dtype = str(dtype)
        self.acc_dtype = str(acc_dtype)

    def make_node(self, x):
        x = T.as_tensor_variable(x)
        if x.ndim != 4 or x.dtype not in FLOAT_DTYPES:
            raise TypeError('FeatureMapSum takes a 4-D float32 or float64 array, not %d-D %s'
                            % (x.ndim, x.dtype))
        return Apply(self, [x], [T.vector(dtype=self.dtype)])

    def infer_shape(self, *node_and_shapes):     # (PyTensor passes the graph first)
        shapes = node_and_shapes[-1]
        return [(shapes[0][1],)]

    def perform(self, node, inputs, output_storage):
        x, = inputs
        maps = x.shape[1]
        # One running total per map, in memory order (numpy's accumulate adds in sequence).
        values = x.astype(self.acc_dtype).transpose(1, 0, 2, 3).reshape(maps, -1)
        totals = numpy.zeros(maps, dtype=self.acc_dtype)
        if values.shape[1]:
            totals = totals + numpy.add.accumulate(values, axis=1)[:, -1]
        output_storage[0][0] = totals.astype(self.dtype)

    def c_code_cache_version(self):
        return (1,)

    def c_code(self, node, name, inputs, outputs, sub):
        """The sums in C: eight maps' totals at a time, each map's values in memory order."""
        x, = inputs
        z, = outputs
        acc = C_TYPES[self.acc_dtype]
        return """
        {
            PyArrayObject* values = PyArray_GETCONTIGUOUS(%(x)s);
            if (!values) %(fail)s
            const npy_intp* dims = PyArray_DIMS(values);
            const npy_intp images = dims[0], maps = dims[1], pixels = dims[2] * dims[3];
            if (!%(z)s || PyArray_DIMS(%(z)s)[0] != maps) {
                npy_intp out_dims[1] = {maps};
                Py_XDECREF(%(z)s);
                %(z)s = (PyArrayObject*)PyArray_EMPTY(1, out_dims, %(out_typenum)s, 0);
                if (!%(z)s) { Py_DECREF(values); %(fail)s }
            }
            const dtype_%(x)s* in = (const dtype_%(x)s*)PyArray_DATA(values);
            char* out = PyArray_BYTES(%(z)s);
            const npy_intp out_stride = PyArray_STRIDES(%(z)s)[0];
            const npy_intp groups = (maps + %(k)d - 1) / %(k)d;
            #pragma omp parallel for schedule(static)
            for (npy_intp g = 0; g < groups; ++g) {
                const npy_intp first = g * %(k)d;
                const npy_intp count = maps - first < %(k)d ? maps - first : %(k)d;
                %(acc)s totals[%(k)d] = {0};
                for (npy_intp i = 0; i < images; ++i) {
                    const dtype_%(x)s* block = in + (i * maps + first) * pixels;
                    if (count == %(k)d) {
                        for (npy_intp p = 0; p < pixels; ++p)
                            for (int m = 0; m < %(k)d; ++m)
                                totals[m] += (%(acc)s)block[m * pixels + p];
                    } else {
                        for (int m = 0; m < count; ++m)
                            for (npy_intp p = 0; p < pixels; ++p)
                                totals[m] += (%(acc)s)block[m * pixels + p];
                    }
                }
                for (int m = 0; m < count; ++m)
                    *(dtype_%(z)s*)(out + (first + m) * out_stride) = (dtype_%(z)s)totals[m];
            }
            Py_DECREF(values);
        }
        """ % dict(x=x, z=z, acc=acc, k=MAPS_AT_ONCE, fail=sub['fail'],
                   out_typenum='NPY_' + self.dtype.upper())


def _float_sum_on_cpu(node, axes):
    """The input of ``node`` if it is a CPU ``Sum`` over ``axes`` in floats throughout, else None.

    Floats throughout: the input, the accumulator and the output are float32 or float64.
    """
    op = node.op
    on_cpu = getattr(theano.config, 'device', 'cpu').startswith('cpu')   # (PyTensor: always)
    if (not isinstance(op, Sum) or not on_cpu or op.axis is None or tuple(sorted(op.axis)) != axes):
        return None
    x, = node.inputs
    if (x.dtype not in FLOAT_DTYPES or op.acc_dtype not in FLOAT_DTYPES
            or node.outputs[0].dtype not in FLOAT_DTYPES):
        return None
    return x


@node_rewriter([Sum])
def local_feature_map_sum(fgraph_or_node, node=None):
    """Replace ``Sum{axis=[0, 2, 3]}`` of a float 4-D array by :class:`FeatureMapSum`."""
    node = node or fgraph_or_node          # (PyTensor passes the graph first)
    x = _float_sum_on_cpu(node, (0, 2, 3))
    if x is None or x.ndim != 4:
        return False
    return [FeatureMapSum(node.outputs[0].dtype, node.op.acc_dtype)(x)]


class LeadingAxisSum(Op):
    """The sum over the first axis of a float array: Theano's ``Sum{axis=[0]}``.

    Input: (n, ...) of at least 2 dimensions, float32 or float64.  Output:
    the shape after the first axis, of ``dtype``; each output's total starts
    at zero and adds its n values in order, in ``acc_dtype``, as Theano's
    ``Sum`` does, and is rounded to ``dtype`` at the end.  Theano's ``Sum``
    reads those n values one after the other, each a row apart in memory;
    here a whole row is added to the row of totals at a time, so the loop
    runs along memory and vectorises.  It is the mean over time of the
    recurrent rows (a 28 x 128 x 128 float32 array: 0.90 -> 0.08 ms here; it
    was 6 % of the row-by-row LSTM's training step), and every bias gradient
    of a minibatch (128 x 1,200: 103 -> 21 us).
    """
    __props__ = ('dtype', 'acc_dtype')

    def __init__(self, dtype, acc_dtype):
        self.dtype = str(dtype)
        self.acc_dtype = str(acc_dtype)

    def make_node(self, x):
        x = T.as_tensor_variable(x)
        if x.ndim < 2 or x.dtype not in FLOAT_DTYPES:
            raise TypeError('LeadingAxisSum takes a float32 or float64 array of 2 or more '
                            'dimensions, not %d-D %s' % (x.ndim, x.dtype))
        return Apply(self, [x], [T.TensorType(self.dtype, x.broadcastable[1:])()])

    def infer_shape(self, node, shapes):
        return [shapes[0][1:]]

    def perform(self, node, inputs, output_storage):
        x, = inputs
        totals = numpy.zeros(x.shape[1:], dtype=self.acc_dtype)
        if x.shape[0]:
            # numpy's accumulate adds in sequence, as the C loop does.
            totals = totals + numpy.add.accumulate(x.astype(self.acc_dtype), axis=0)[-1]
        output_storage[0][0] = totals.astype(self.dtype)

    def c_code_cache_version(self):
        return (1,)

    def c_code(self, node, name, inputs, outputs, sub):
        """A row of totals in ``acc_dtype``; each row of the input added to it in turn."""
        x, = inputs
        z, = outputs
        acc = C_TYPES[self.acc_dtype]
        return """
        {
            PyArrayObject* values = PyArray_GETCONTIGUOUS(%(x)s);
            if (!values) %(fail)s
            const int ndim = PyArray_NDIM(values);
            const npy_intp* dims = PyArray_DIMS(values);
            const npy_intp rows = dims[0];
            npy_intp width = 1;
            for (int d = 1; d < ndim; ++d) width *= dims[d];
            int same_shape = %(z)s && PyArray_NDIM(%(z)s) == ndim - 1
                             && PyArray_IS_C_CONTIGUOUS(%(z)s);
            for (int d = 1; same_shape && d < ndim; ++d)
                same_shape = PyArray_DIMS(%(z)s)[d - 1] == dims[d];
            if (!same_shape) {
                Py_XDECREF(%(z)s);
                %(z)s = (PyArrayObject*)PyArray_EMPTY(ndim - 1, dims + 1, %(out_typenum)s, 0);
                if (!%(z)s) { Py_DECREF(values); %(fail)s }
            }
            %(acc)s* totals = (%(acc)s*)malloc((width ? width : 1) * sizeof(%(acc)s));
            if (!totals) {
                Py_DECREF(values);
                PyErr_NoMemory();
                %(fail)s
            }
            for (npy_intp j = 0; j < width; ++j) totals[j] = 0;
            const dtype_%(x)s* in = (const dtype_%(x)s*)PyArray_DATA(values);
            for (npy_intp i = 0; i < rows; ++i) {
                const dtype_%(x)s* row = in + i * width;
                for (npy_intp j = 0; j < width; ++j) totals[j] += (%(acc)s)row[j];
            }
            dtype_%(z)s* out = (dtype_%(z)s*)PyArray_DATA(%(z)s);
            for (npy_intp j = 0; j < width; ++j) out[j] = (dtype_%(z)s)totals[j];
            free(totals);
            Py_DECREF(values);
        }
        """ % dict(x=x, z=z, acc=acc, fail=sub['fail'], out_typenum='NPY_' + self.dtype.upper())


@node_rewriter([Sum])
def local_leading_axis_sum(node):
    """Replace ``Sum{axis=[0]}`` of a float array of 2 or more dimensions by a LeadingAxisSum."""
    x = _float_sum_on_cpu(node, (0,))
    if x is None or x.ndim < 2:
        return False
    return [LeadingAxisSum(node.outputs[0].dtype, node.op.acc_dtype)(x)]


if engine_name() == 'theano':
    register_specialize(local_feature_map_sum)
    register_specialize(local_leading_axis_sum)
else:
    # C code only: PyTensor's other backends (Numba, JAX) keep their own sum.
    register_specialize(local_feature_map_sum, 'cxx_only')
