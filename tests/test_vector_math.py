"""Vectorised elementwise math: glibc's vector functions really called, results as the scalar ones.

Each engine computes the same expressions twice, in processes of their own
with compile folders of their own: with our default ``gcc.cxxflags``
(vectorised) and with ``gcc.cxxflags`` set empty by the user (scalar, as
before).  The direct functions agree within 4 units in the last place, NaN
and the infinities come out the same, and the compiled modules import
glibc's vector versions (``_ZGV...``).
"""
import json
import os
import re
import subprocess
import sys

import numpy
import pytest

from conftest import add_worker_compile_folder
from dltutorials.support import vector_math

pytestmark = pytest.mark.skipif(not vector_math.vector_functions(),
                                reason="no glibc vector math library (libmvec) here")

PROGRAM = r'''
import json, sys
import numpy
import dltutorials
from dltutorials.support.engine import theano, T

x, b, c = T.matrix('x'), T.vector('b'), T.vector('c')
expressions = {
    'tanh': T.tanh(x), 'exp': T.exp(x), 'log': T.log(x), 'log1p': T.log1p(x),
    'sigmoid': T.nnet.sigmoid(x), 'softplus': T.nnet.softplus(x),
    # b broadcast over the rows: the strided loop, not the contiguous one
    'tanh(x + b)': T.tanh(x + b),
    # c broadcast along the rows: the innermost loop reads it with stride 0
    'tanh(x + column)': T.tanh(x + c.dimshuffle(0, 'x')),
    'grad tanh(x + b)': T.grad(T.tanh(x + b).sum(), x),
    'exp of the transpose': T.exp(x.T),
}
special = [numpy.nan, numpy.inf, -numpy.inf, 0.0, -0.0, 1e-30, -1e-30, 88.0, -88.0, 100.0, -100.0,
           1e30, -1e30, -1.0]
rng = numpy.random.RandomState(0)
values = numpy.concatenate([special, rng.normal(0, 4, 64 * 97 - len(special))])
xv = values.reshape(64, 97).astype(x.dtype)
bv = rng.normal(0, 1, 97).astype(b.dtype)
cv = rng.normal(0, 1, 64).astype(c.dtype)
results = {}
for name, expression in expressions.items():
    f = theano.function([x, b, c], expression, on_unused_input='ignore')
    results[name] = f(xv, bv, cv).ravel().tolist()
# An update written in place with scalars broadcast (Adam's shape): the contiguous loop.
weights = theano.shared(xv.copy())
epsilon = numpy.asarray(1e-8, dtype=x.dtype)
step = theano.function([], [], updates={
    weights: weights - weights / (T.sqrt(abs(weights)) + epsilon)})
assert any(getattr(node.op, 'destroy_map', None) for node in step.maker.fgraph.toposort())
step()
results['in place: w - w / (sqrt|w| + eps)'] = weights.get_value().ravel().tolist()
json.dump(results, sys.stdout)
'''


def compute(tmp_path, name, flags):
    folder = tmp_path / name
    env = dict(os.environ)
    for variable, spelling in (('THEANO_FLAGS', 'gcc.cxxflags'),
                               ('PYTENSOR_FLAGS', 'gcc__cxxflags')):
        env[variable] = 'base_compiledir=%s%s' % (
            folder, '' if flags is None else ',%s=%s' % (spelling, flags))
    done = subprocess.run([sys.executable, '-c', PROGRAM], capture_output=True, text=True,
                          timeout=600, env=add_worker_compile_folder(env))
    assert done.returncode == 0, done.stderr[-3000:]
    results = {key: numpy.array(value, dtype=numpy.float64).astype(numpy.float32)
               for key, value in json.loads(done.stdout).items()}
    modules = [path.read_bytes() for path in folder.rglob('*.so')]
    return results, modules


@pytest.fixture(scope='module')
def both(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp('vector_math')
    return compute(tmp_path, 'vectorised', None), compute(tmp_path, 'scalar', '')


def ulp_distance(a, b):
    """Units in the last place between float32 arrays of the same signs."""
    a, b = (values.view(numpy.int32).astype(numpy.int64) for values in (a, b))
    return numpy.abs(a - b)


def test_the_modules_call_glibcs_vector_functions_only_when_the_flag_is_set(both):
    (_, vectorised_modules), (_, scalar_modules) = both
    vector_call = re.compile(rb'_ZGV[bcde]N\d+v_(tanhf|expf|logf|log1pf)\b')
    assert sum(bool(vector_call.search(module)) for module in vectorised_modules) >= 5
    assert not any(vector_call.search(module) for module in scalar_modules)


@pytest.mark.parametrize('name', ['tanh', 'exp', 'log', 'log1p', 'sigmoid', 'softplus',
                                  'tanh(x + b)', 'tanh(x + column)', 'exp of the transpose',
                                  'in place: w - w / (sqrt|w| + eps)'])
def test_vectorised_values_are_within_4_ulp_and_nan_and_infinities_are_kept(both, name):
    (vectorised, _), (scalar, _) = both
    fast, slow = vectorised[name], scalar[name]
    assert numpy.array_equal(numpy.isnan(fast), numpy.isnan(slow))
    infinite = numpy.isinf(slow)
    assert numpy.array_equal(fast[infinite], slow[infinite])
    finite = numpy.isfinite(slow)
    assert numpy.isfinite(fast[finite]).all()
    same_sign = finite & (numpy.signbit(fast) == numpy.signbit(slow))
    assert ulp_distance(fast[same_sign], slow[same_sign]).max() <= 4
    # where the signs differ, both are within a few ulp of zero
    assert numpy.abs(fast[finite & ~same_sign]).max(initial=0) < 1e-37


def test_a_nan_in_the_input_reaches_the_output_of_every_expression(both):
    (vectorised, _), _ = both
    for name, values in vectorised.items():
        assert numpy.isnan(values[0]), name     # the input's first value is NaN


def test_gradients_agree_to_float_precision(both):
    (vectorised, _), (scalar, _) = both
    fast, slow = vectorised['grad tanh(x + b)'], scalar['grad tanh(x + b)']
    assert numpy.array_equal(numpy.isnan(fast), numpy.isnan(slow))
    # 1 - tanh^2 cancels near saturation: 1-2 ulp in tanh are an absolute 1e-7 here
    numpy.testing.assert_allclose(fast, slow, rtol=1e-5, atol=3e-7)


def test_declarations_only_with_the_flag_and_after_the_common_headers():
    headers = '#include <math.h>\n'
    code = headers + 'int f() { return 0; }\n'
    with_flag = vector_math.with_declarations(code, ['-O3', vector_math.FLAG], headers)
    assert with_flag.startswith(headers + '// dltutorials.support.vector_math')
    assert with_flag.endswith('int f() { return 0; }\n')
    assert '#pragma omp declare simd notinbranch\nfloat tanhf(float) __THROW;' in with_flag
    assert vector_math.with_declarations(code, ['-O3'], headers) == code
    assert vector_math.with_declarations('#include <other.h>\n' + code, [vector_math.FLAG],
                                         headers) == '#include <other.h>\n' + code


def fake_loop_generator(init_loop_orders, olv_index, dtypes, inner_task, sub, openmp=None):
    """Two nested loops as the engines write them, operand pointers set in the inner one."""
    pointers = ''.join('float &%s_i = *(%s_iter+%s_stride_l0*ITER_0+%s_stride_l1*ITER_1);\n'
                       % ((sub['lv%d' % i],) * 4) for i in range(len(init_loop_orders)))
    return ('for(int ITER_0 = 0; ITER_0<TOTAL_0; ITER_0++)\n{ // begin loop 0\n'
            'for(int ITER_1 = 0; ITER_1<TOTAL_1; ITER_1++)\n{ // begin loop 1\n%s%s\n'
            '} // end loop 1\n} // end loop 0\n' % (pointers, inner_task))


def test_the_innermost_loop_gets_a_vector_copy_for_unit_and_broadcast_strides():
    versioned = vector_math.vectorised_loops(fake_loop_generator)
    sub = {'lv0': 'V1', 'lv1': 'V3'}
    code = versioned([(0, 1), (0, 'x')], 0, None, 'V1_i = V3_i;', sub)
    condition, vector, scalar = re.match(
        r'for\(int ITER_0.*?// begin loop 0\nif \((.*?)\) \{\n#pragma omp simd\n(.*?)\} else '
        r'\{\n(.*?)\}\n\} // end loop 0', code, re.DOTALL).groups()
    assert condition == 'V1_stride_l1 == 1 && V3_stride_l1 == 0'
    assert '*(V1_iter+V1_stride_l0*ITER_0+ITER_1)' in vector
    assert '*(V3_iter+V3_stride_l0*ITER_0)' in vector
    assert scalar == fake_loop_generator([(0, 1), (0, 'x')], 0, None, 'V1_i = V3_i;', sub)[
        len('for(int ITER_0 = 0; ITER_0<TOTAL_0; ITER_0++)\n{ // begin loop 0\n'):
        -len('} // end loop 0\n')]
    # a loop that can jump out, and OpenMP's parallel loop when it is the innermost, stay
    for task, orders, openmp in (('if (V1_i) goto __label_1;', [(0, 1), (0, 1)], None),
                                 ('V1_i = V3_i;', [(0,), (0,)], True)):
        plain = fake_loop_generator(orders, 0, None, task, sub, openmp)
        assert versioned(orders, 0, None, task, sub, openmp) == plain


def test_trailing_loops_contiguous_or_broadcast_in_all_are_run_as_one():
    versioned = vector_math.vectorised_loops(fake_loop_generator)
    sub = {'lv0': 'V1', 'lv1': 'V3', 'lv2': 'V5'}
    orders = [(0, 1), ('x', 'x'), (0, 1)]
    code = versioned(orders, 0, None, 'V1_i = V3_i + V5_i;', sub)
    condition, merged, nested = re.match(
        r'if \((.*?)\) \{\n#pragma omp simd\n(for\(npy_intp ITER_0_1 = 0;.*?)\} else '
        r'\{\n(.*)\}\n$', code, re.DOTALL).groups()
    assert condition == ('V1_stride_l1 == 1 && V1_stride_l0 == TOTAL_1 && V3_stride_l1 == 0 && '
                         'V3_stride_l0 == 0 && V5_stride_l1 == 1 && V5_stride_l0 == TOTAL_1')
    assert 'ITER_0_1<(npy_intp)TOTAL_0*TOTAL_1;' in merged
    assert '*(V1_iter+ITER_0_1)' in merged and '*(V3_iter)' in merged
    assert not re.search(r'\bITER_[01]\b', merged)
    # every other case runs the loops as before (the innermost one versioned)
    assert nested == versioned([(0, 1), (0, 'x'), (0, 1)], 0, None, 'V1_i = V3_i + V5_i;', sub)
    # an operand broadcast along some of the loops only, or OpenMP's parallel outermost loop:
    # no merged loop
    for orders, openmp in (([(0, 1), (0, 'x'), (0, 1)], None),
                           ([(0, 1), ('x', 'x'), (0, 1)], True)):
        assert 'ITER_0_1' not in versioned(orders, 0, None, 'V1_i = V3_i + V5_i;', sub, openmp)


@pytest.mark.parametrize('layout', ['contiguous', 'strided rows', 'transposed maps',
                                    'one row a map', 'bias not broadcast'])
def test_feature_maps_with_a_bias_per_channel_are_computed_right_in_every_layout(layout):
    from dltutorials.support.engine import T, theano
    floatX = theano.config.floatX
    maps = T.tensor4('maps')
    per_channel = T.TensorType(floatX, (True, False, True, True))('per_channel')
    scale = T.TensorType(floatX, (True, False, True, True))('scale')
    output = T.maximum(maps * scale + per_channel, 0)
    node, = [node for node in theano.function([maps, scale, per_channel], output).maker
             .fgraph.toposort() if type(node.op).__name__ == 'Elemwise']
    code = node.op.c_code(node, 'node', ['i%d' % k for k in range(len(node.inputs))], ['o0'],
                          {'fail': 'goto __label_1;', 'failure_var': '__failure', 'id': 1})
    assert 'ITER_2_3' in code           # the rows and columns of a map: one loop
    rng = numpy.random.RandomState(0)
    values = rng.normal(0, 1, (6, 5, 9, 7)).astype(floatX)
    values = {'contiguous': values, 'strided rows': values[:, :, ::2, :],
              'transposed maps': values.transpose(0, 1, 3, 2),
              'one row a map': values[:, :, :1, :], 'bias not broadcast': values}[layout]
    gamma = rng.normal(0, 1, (1, 5, 1, 1)).astype(floatX)
    beta = rng.normal(0, 1, (1, 5, 1, 1)).astype(floatX)
    if layout == 'bias not broadcast':      # the same graph given a full array: no merging
        beta = T.tensor4('beta')
        f = theano.function([maps, scale, beta], T.maximum(maps * scale + beta, 0))
        beta_values = rng.normal(0, 1, values.shape).astype(floatX)
        got, expected = f(values, gamma, beta_values), numpy.maximum(
            values * gamma + beta_values, 0)
    else:
        f = theano.function([maps, scale, per_channel], output)
        got, expected = f(values, gamma, beta), numpy.maximum(values * gamma + beta, 0)
    # (the engine may fuse the multiply-add: an ulp apart; a wrong index is far off)
    numpy.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)


def fake_elemwise_code(task, openmp=False):
    """The contiguous branch of an elementwise op's code, as the engines write it."""
    return ('if (all_contiguous) {\nnpy_intp n = PyArray_SIZE(o);\n'
            + ('#pragma omp parallel for if(n>=200000)\n                        ' if openmp else '')
            + '\n                    for(int i=0; i<n; i++){\n  float& o_i = o_ptr[i];\n'
            + '  {\n%s\n  }\n}\n} else { strided(); }\n' % task)


def test_the_loop_over_contiguous_arrays_is_marked_for_vector_code():
    # (a fake c_code: the "node" it is given is the code it returns)
    marked = vector_math.vectorised_contiguous_loop(lambda self, *arguments: arguments[0])
    plain = fake_elemwise_code('o_i = sqrt(i0_i) / i1_i;')
    assert marked(None, plain, 'node', [], [], {}) == plain.replace(
        'for(int i=0;', '#pragma omp simd\nfor(int i=0;')
    threaded = fake_elemwise_code('o_i = i0_i * 2;', openmp=True)
    assert '#pragma omp parallel for simd if(n>=200000)\n' in marked(None, threaded, 'node', [],
                                                                        [], {})
    assert marked(None, threaded, 'node', [], [], {}).count('#pragma') == 1
    # a loop that can jump out (a scalar op's error check) stays as it is
    checked = fake_elemwise_code('if (i1_i == 0) { PyErr_Format(); goto __label_7; }')
    assert marked(None, checked, 'node', [], [], {}) == checked


def test_the_engines_elemwise_code_has_the_marked_loop():
    from dltutorials.support.engine import T, theano
    weights = theano.shared(numpy.zeros((4, 3), dtype=theano.config.floatX))
    step = theano.function([], [], updates={weights: T.sqrt(weights) * 2})
    node, = [node for node in step.maker.fgraph.toposort()
             if type(node.op).__name__ == 'Elemwise']
    code = node.op.c_code(node, 'node', ['i%d' % k for k in range(len(node.inputs))], ['o0'],
                          {'fail': 'goto __label_1;'})
    assert re.search(r'#pragma omp simd\s+for\(int i=0; i<n; i\+\+\)', code)


SAMPLING_TASK = '''npy_float32 V9_tmp2;
V9_tmp2 = 1.0f / (1.0f + exp(-V9_tmp1));
npy_bool V9_tmp3;
V9_tmp3 = (V7_i < V9_tmp2);
V1_i = (npy_float32)V9_tmp3;
'''


def test_a_comparison_only_cast_to_float32_is_kept_as_a_float32():
    rewritten = vector_math.float_comparisons(SAMPLING_TASK)
    assert rewritten == SAMPLING_TASK.replace('npy_bool V9_tmp3;', 'npy_float32 V9_tmp3;')
    # read by anything else, or not a comparison: left as it is
    for other in (SAMPLING_TASK + 'V2_i = V9_tmp3 & V8_i;\n',
                  SAMPLING_TASK.replace('(V7_i < V9_tmp2)', 'V8_i')):
        assert vector_math.float_comparisons(other) == other


def test_binomial_samples_compare_the_uniforms_with_the_sigmoid():
    """The engine's sampling loop (a comparison kept as a float32 on PyTensor, and on Theano
    with fast_sigmoid's sigmoid): every sample 1 where u is below the sigmoid, 0 where above
    (u at least 1e-5 away from it, whatever ulp the loop's expf gets)."""
    from dltutorials.support.engine import T, theano
    u, a, b = T.matrix(dtype='float32'), T.matrix(dtype='float32'), T.vector(dtype='float32')
    sample = theano.function([u, a, b], T.cast(u < T.nnet.sigmoid(a + b), 'float32'))
    rng = numpy.random.RandomState(0)
    uniform = rng.uniform(size=(200, 784)).astype('float32')
    activation = rng.normal(scale=4, size=uniform.shape).astype('float32')
    bias = rng.normal(size=784).astype('float32')
    sigmoid = 1 / (1 + numpy.exp(-(activation.astype('float64') + bias)))
    clear = numpy.abs(uniform - sigmoid) > 1e-5
    samples = sample(uniform, activation, bias)
    assert set(numpy.unique(samples)) == {0.0, 1.0}
    assert clear.mean() > 0.99
    numpy.testing.assert_array_equal(samples[clear], (uniform < sigmoid)[clear])
