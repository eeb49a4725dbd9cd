"""The fused recurrent op: the same states and gradients as the scan of the page's step functions.

test_recurrent.py checks both loops against a numpy transcription of the
equations and against finite differences; here the two loops are held equal
to each other in the cases the scripts meet: carried initial states and
their gradients, float32, a minibatch of one, one step, a cost that uses
only some of the outputs, and shapes that do not fit.
"""
import os

import numpy
import pytest

from dltutorials.recurrent import ENCODERS
from dltutorials.support import fused_recurrent
from dltutorials.support.engine import T, change_flags, theano

pytestmark = pytest.mark.skipif(not fused_recurrent.available(),
                                reason='the fused op needs a C compiler')


def both_loops(name, n_steps, n_batch, n_in=3, n_hidden=5, cost_of=None, seed=0):
    """Outputs, final states and gradients (W, U, b, x, initial states) of each loop: a dict."""
    layer_class = ENCODERS[name]
    rng = numpy.random.RandomState(seed)
    floatX = theano.config.floatX
    x_value = rng.normal(size=(n_steps, n_batch, n_in)).astype(floatX)
    mask_value = numpy.ones((n_steps, n_batch), dtype=floatX)
    # Sequences of lengths n_steps, 1, n_steps - 1 ... sharing the minibatch.
    for column in range(1, n_batch):
        mask_value[max(1, n_steps - column):, column] = 0
    state_values = [rng.normal(size=(n_batch, n_hidden)).astype(floatX)
                    for _ in range(layer_class.n_states)]
    # Biases away from their start, so that every term of the step matters.
    bias_value = rng.normal(size=layer_class.n_gates * n_hidden).astype(floatX)
    results = {}
    for loop in ('scan', 'fused'):
        x, mask = T.tensor3('x'), T.matrix('mask')
        states = [T.matrix('state%d' % k) for k in range(layer_class.n_states)]
        layer = layer_class(numpy.random.RandomState(seed + 1), x, n_in, n_hidden, mask=mask,
                            initial_states=states, loop=loop)
        layer.b.set_value(bias_value)
        cost = (cost_of or default_cost)(layer)
        wrt = layer.params + [x] + states
        run = theano.function([x, mask] + states,
                              [layer.output] + layer.final_states + T.grad(cost, wrt))
        results[loop] = run(x_value, mask_value, *state_values)
    return results


def default_cost(layer):
    """Every step's state, weighted, and the final states: every gradient path matters."""
    weights = T.arange(layer.output.size, dtype=layer.output.dtype).reshape(layer.output.shape)
    return (T.sin(weights) * layer.output).sum() + sum((s ** 2).sum() for s in layer.final_states)


def graph_ops(layer):
    """The names of the op classes in the compiled graph of ``layer.output``."""
    run = theano.function([layer.input, layer.mask], layer.output)
    return {type(node.op).__name__ for node in run.maker.fgraph.toposort()}


@pytest.mark.parametrize('name', sorted(ENCODERS))
def test_fused_and_scan_agree_in_float64_with_carried_states_and_masks(name):
    with change_flags(floatX='float64'):
        results = both_loops(name, n_steps=6, n_batch=4)
    assert len(results['fused']) == len(results['scan'])
    for fused, scanned in zip(results['fused'], results['scan']):
        assert fused.shape == scanned.shape
        numpy.testing.assert_allclose(fused, scanned, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize('name', sorted(ENCODERS))
def test_fused_and_scan_agree_in_float32(name):
    with change_flags(floatX='float32'):
        results = both_loops(name, n_steps=7, n_batch=3, n_hidden=8)
    for fused, scanned in zip(results['fused'], results['scan']):
        assert fused.dtype == numpy.float32
        numpy.testing.assert_allclose(fused, scanned, rtol=1e-4, atol=2e-5)


@pytest.mark.parametrize('name', sorted(ENCODERS))
def test_one_step_one_sequence_and_a_cost_on_the_last_state_only(name):
    def last_state_cost(layer):
        return layer.final_states[0].sum()
    with change_flags(floatX='float64'):
        for n_steps, n_batch in ((1, 1), (4, 1), (1, 3)):
            results = both_loops(name, n_steps, n_batch, cost_of=last_state_cost)
            for fused, scanned in zip(results['fused'], results['scan']):
                numpy.testing.assert_allclose(fused, scanned, rtol=1e-10, atol=1e-12)


def test_layers_use_the_fused_op_by_default_and_scan_on_request():
    x, mask = T.tensor3('x'), T.matrix('mask')
    fused = ENCODERS['lstm'](numpy.random.RandomState(0), x, 3, 4, mask=mask)
    scanned = ENCODERS['lstm'](numpy.random.RandomState(0), x, 3, 4, mask=mask, loop='scan')
    assert 'FusedRecurrence' in graph_ops(fused)
    assert 'Scan' in graph_ops(scanned) and 'FusedRecurrence' not in graph_ops(scanned)


def test_inputs_of_the_wrong_shape_are_refused_with_the_shapes():
    floatX = theano.config.floatX
    projected, b, mask, U, h0 = (T.tensor3(), T.vector(), T.matrix(), T.matrix(), T.matrix())
    h = fused_recurrent.recurrence('rnn', projected, b, mask, U, [h0])[0]
    run = theano.function([projected, b, mask, U, h0], h)
    with pytest.raises(ValueError, match='shapes do not agree'):
        run(numpy.zeros((2, 3, 5), floatX), numpy.zeros(4, floatX), numpy.ones((2, 3), floatX),
            numpy.zeros((4, 4), floatX), numpy.zeros((3, 4), floatX))


CHECK_WITHOUT_BLAS = '''
import numpy
import dltutorials
from dltutorials.recurrent import LSTM
from dltutorials.support.engine import T, theano
assert not theano.config.blas__ldflags if hasattr(theano.config, 'blas__ldflags') \\
    else not theano.config.blas.ldflags
x = T.tensor3('x')
values = numpy.random.RandomState(0).normal(size=(4, 3, 2)).astype(theano.config.floatX)
states = {}
for loop in ('scan', 'fused'):
    layer = LSTM(numpy.random.RandomState(1), x, 2, 5, loop=loop)
    states[loop] = theano.function([x], [layer.output, T.grad(layer.output.sum(), layer.U)])(values)
for fused, scanned in zip(states['fused'], states['scan']):
    numpy.testing.assert_allclose(fused, scanned, rtol=1e-4, atol=1e-5)
print('agree')
'''


def test_with_no_blas_configured_the_fused_op_uses_the_engines_own_gemm(tmp_path):
    """``blas.ldflags`` empty, as a user may set it: the engine's NumPy-based gemm stands in."""
    import os
    import subprocess
    import sys
    from conftest import add_worker_compile_folder
    environment = add_worker_compile_folder(dict(os.environ, THEANO_FLAGS='blas.ldflags=',
                                                 PYTENSOR_FLAGS='blas__ldflags='))
    done = subprocess.run([sys.executable, '-c', CHECK_WITHOUT_BLAS], capture_output=True,
                          text=True, timeout=600, cwd=tmp_path, env=environment)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith('agree')


@pytest.mark.parametrize('name', sorted(ENCODERS))
def test_a_nan_in_the_input_reaches_the_states_and_an_infinite_one_saturates(name):
    """The divergence stop sees NaN: the fused op's float32 exponential must not hide it."""
    with change_flags(floatX='float32'):
        x = T.tensor3('x')
        layer = ENCODERS[name](numpy.random.RandomState(0), x, 2, 3)
        run = theano.function([x], layer.output)
        values = numpy.random.RandomState(1).normal(size=(4, 2, 2)).astype('float32')
        values[1, 0, 0] = numpy.nan
        values[1, 1, 0] = numpy.inf
        states = run(values)
    assert numpy.isnan(states[1:, 0]).all() and not numpy.isnan(states[0]).any()
    assert numpy.isfinite(states[:, 1]).all()
    assert (numpy.abs(states[:, 1]) <= 1).all()


@pytest.fixture
def two_blas_threads():
    """The OpenBLAS that dltutorials links, on two threads for the test (skipped without one).

    (In a pytest-xdist worker the flags come from conftest, so the BLAS is
    found again; and conftest gives the worker's children one thread, which
    a worker that loads its BLAS late inherits.)
    """
    import ctypes
    from dltutorials.support import engine_setup, openblas
    blas = engine_setup.blas_in_use or openblas.find_blas()
    if blas is None or (os.cpu_count() or 1) < 2:
        pytest.skip('one part: OpenBLAS is not linked here, or there is one core')
    library = ctypes.CDLL(blas.library)
    get = getattr(library, blas.prefix + 'openblas_get_num_threads')
    set_threads = getattr(library, blas.prefix + 'openblas_set_num_threads')
    before = get()
    set_threads(max(before, 2))
    yield
    set_threads(before)


@pytest.mark.parametrize('name', sorted(ENCODERS))
def test_a_minibatch_split_over_the_cores_gives_what_one_thread_gives(name, monkeypatch,
                                                                       two_blas_threads):
    # 48 sequences of different lengths: 2 or 3 parts of at least 16 rows, one per
    # OpenBLAS thread, when its idle threads stop spinning soon; one part otherwise.
    results = {}
    for timeout in ('28', '20'):
        monkeypatch.setenv('OPENBLAS_THREAD_TIMEOUT', timeout)
        with change_flags(floatX='float64'):
            results[timeout] = both_loops(name, n_steps=9, n_batch=48, n_hidden=20)
    for one_part, parts, scanned in zip(results['28']['fused'], results['20']['fused'],
                                        results['20']['scan']):
        numpy.testing.assert_allclose(parts, one_part, rtol=1e-12, atol=1e-12)
        numpy.testing.assert_allclose(parts, scanned, rtol=1e-10, atol=1e-12)
