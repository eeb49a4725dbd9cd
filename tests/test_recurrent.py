"""The recurrent layers: against a numpy transcription, masks, gradients by finite differences."""
import numpy
import pytest

from dltutorials.recurrent import ENCODERS, GRU, LSTM, RNN, gradient_norm_by_step
from dltutorials.updates import clip_grad_norm
from dltutorials.support.engine import T, change_flags, theano

N_STEPS, N_BATCH, N_IN, N_HIDDEN = 5, 3, 2, 4

#: The loop over time as the page shows it (scan) and as the scripts run it (one C op).
LOOPS = ['scan', 'fused']


def sigmoid(a):
    return 1 / (1 + numpy.exp(-a))


def numpy_states(name, x, mask, W, U, b):
    """The layer ``name`` on x (time, batch, n_in), written out in numpy: (states, final states)."""
    n = U.shape[0]
    h = numpy.zeros((x.shape[1], n))
    c = numpy.zeros_like(h)
    states = []
    for t in range(x.shape[0]):
        a = x[t] @ W + b
        if name == 'rnn':
            new_h = numpy.tanh(a + h @ U)
        elif name == 'lstm':
            g = a + h @ U
            i, f, o = sigmoid(g[:, :n]), sigmoid(g[:, n:2 * n]), sigmoid(g[:, 2 * n:3 * n])
            new_c = f * c + i * numpy.tanh(g[:, 3 * n:])
            new_h = o * numpy.tanh(new_c)
            c = mask[t][:, None] * new_c + (1 - mask[t][:, None]) * c
        else:
            r = sigmoid(a[:, :n] + h @ U[:, :n])
            z = sigmoid(a[:, n:2 * n] + h @ U[:, n:2 * n])
            candidate = numpy.tanh(a[:, 2 * n:] + r * (h @ U[:, 2 * n:]))
            new_h = (1 - z) * candidate + z * h
        h = mask[t][:, None] * new_h + (1 - mask[t][:, None]) * h
        states.append(h)
    return numpy.array(states), [h, c] if name == 'lstm' else [h]


def inputs(seed=0):
    """Random (time, batch, n_in) input and a mask of lengths 5, 2 and 4 (float64)."""
    rng = numpy.random.RandomState(seed)
    x = rng.normal(size=(N_STEPS, N_BATCH, N_IN))
    mask = numpy.zeros((N_STEPS, N_BATCH))
    for column, length in enumerate((5, 2, 4)):
        mask[:length, column] = 1
    return x, mask


def build(layer_class, seed=1, loop='fused'):
    x, mask = T.tensor3('x'), T.matrix('mask')
    layer = layer_class(numpy.random.RandomState(seed), x, N_IN, N_HIDDEN, mask=mask, loop=loop)
    # Biases away from their start, so that every term of the step matters.
    layer.b.set_value(numpy.random.RandomState(seed + 1).normal(
        size=layer.b.get_value().shape).astype(layer.b.dtype))
    return layer, x, mask


@pytest.mark.parametrize('loop', LOOPS)
@pytest.mark.parametrize('name', sorted(ENCODERS))
def test_each_layer_computes_its_equations_and_padded_steps_keep_the_state(name, loop):
    with change_flags(floatX='float64'):
        layer, x, mask = build(ENCODERS[name], loop=loop)
        run = theano.function([x, mask], [layer.output] + layer.final_states)
        x_value, mask_value = inputs()
        states, *final = run(x_value, mask_value)
    expected, expected_final = numpy_states(name, x_value, mask_value, layer.W.get_value(),
                                            layer.U.get_value(), layer.b.get_value())
    assert states.shape == (N_STEPS, N_BATCH, N_HIDDEN)
    numpy.testing.assert_allclose(states, expected, rtol=1e-10, atol=1e-12)
    for value, expected_value in zip(final, expected_final):
        numpy.testing.assert_allclose(value, expected_value, rtol=1e-10, atol=1e-12)
    # The second sequence has 2 real steps: its state stays what step 2 made it.
    for t in range(2, N_STEPS):
        numpy.testing.assert_array_equal(states[t, 1], states[1, 1])
    assert not numpy.allclose(states[2, 0], states[1, 0])


@pytest.mark.parametrize('loop', LOOPS)
@pytest.mark.parametrize('name', sorted(ENCODERS))
def test_a_padded_sequence_ends_in_the_state_it_has_alone(name, loop):
    with change_flags(floatX='float64'):
        layer, x, mask = build(ENCODERS[name], loop=loop)
        run = theano.function([x, mask], layer.final_states[0])
        x_value, mask_value = inputs()
        padded = run(x_value, mask_value)[1]
        alone = run(x_value[:2, 1:2], numpy.ones((2, 1)))[0]
    numpy.testing.assert_allclose(padded, alone, rtol=1e-12)


@pytest.mark.parametrize('loop', LOOPS)
@pytest.mark.parametrize('name', sorted(ENCODERS))
def test_gradients_with_masks_match_finite_differences(name, loop):
    with change_flags(floatX='float64'):
        layer, x, mask = build(ENCODERS[name], loop=loop)
        weights = numpy.random.RandomState(5).normal(size=(N_STEPS, N_BATCH, N_HIDDEN))
        # A cost on every step's state and on the last states.
        cost = (layer.output * weights).sum() + sum((s ** 2).sum() for s in layer.final_states)
        wrt = layer.params + [x]
        cost_fn = theano.function([x, mask], cost)
        grad_fn = theano.function([x, mask], T.grad(cost, wrt))
        x_value, mask_value = inputs()
        analytic = grad_fn(x_value, mask_value)

        eps = 1e-6
        for variable, gradient in zip(layer.params, analytic):
            value = variable.get_value()
            numeric = numpy.zeros_like(value)
            for index in numpy.ndindex(value.shape):
                shifted = value.copy()
                shifted[index] += eps
                variable.set_value(shifted)
                up = cost_fn(x_value, mask_value)
                shifted[index] -= 2 * eps
                variable.set_value(shifted)
                down = cost_fn(x_value, mask_value)
                numeric[index] = (up - down) / (2 * eps)
            variable.set_value(value)
            numpy.testing.assert_allclose(gradient, numeric, rtol=1e-5, atol=1e-7,
                                          err_msg=variable.name)
        numeric = numpy.zeros_like(x_value)
        for index in numpy.ndindex(x_value.shape):
            up, down = x_value.copy(), x_value.copy()
            up[index] += eps
            down[index] -= eps
            numeric[index] = (cost_fn(up, mask_value) - cost_fn(down, mask_value)) / (2 * eps)
        numpy.testing.assert_allclose(analytic[-1], numeric, rtol=1e-5, atol=1e-7)
    # Padded steps' inputs change nothing.
    assert not analytic[-1][2:, 1].any()


def test_weights_start_as_the_page_says():
    rng = numpy.random.RandomState(0)
    lstm = LSTM(rng, T.tensor3('x'), 7, 5)
    assert lstm.W.get_value().shape == (7, 20) and lstm.U.get_value().shape == (5, 20)
    U = lstm.U.get_value().astype(numpy.float64)
    for k in range(4):              # each gate's recurrent block is orthogonal
        block = U[:, 5 * k:5 * (k + 1)]
        numpy.testing.assert_allclose(block.T @ block, numpy.eye(5), atol=1e-5)
    numpy.testing.assert_array_equal(lstm.b.get_value(), [0] * 5 + [1] * 5 + [0] * 10)
    assert GRU(rng, T.tensor3('x'), 7, 5).U.get_value().shape == (5, 15)
    assert not RNN(rng, T.tensor3('x'), 7, 5).b.get_value().any()
    assert [p.name for p in lstm.params] == ['lstm_W', 'lstm_U', 'lstm_b']


def test_clipping_rescales_the_whole_gradient_to_the_limit_and_keeps_its_direction():
    a = theano.shared(numpy.zeros(3, dtype=theano.config.floatX), name='a')
    b = theano.shared(numpy.zeros(2, dtype=theano.config.floatX), name='b')
    grads = [T.as_tensor_variable(numpy.array([3., 0., 4.], dtype=theano.config.floatX)),
             T.as_tensor_variable(numpy.array([0., 12.], dtype=theano.config.floatX))]
    clipped = theano.function([], clip_grad_norm(grads, [a, b], 2.6))()   # norm 13
    numpy.testing.assert_allclose(numpy.concatenate(clipped), [0.6, 0, 0.8, 0, 2.4], rtol=1e-5)
    unclipped = theano.function([], clip_grad_norm(grads, [a, b], 20.0))()
    numpy.testing.assert_allclose(numpy.concatenate(unclipped), [3, 0, 4, 0, 12], rtol=1e-6)


def test_the_gradient_through_a_plain_rnn_vanishes_faster_than_through_an_lstm():
    rnn = gradient_norm_by_step(RNN, n_steps=30, n_hidden=50)
    lstm = gradient_norm_by_step(LSTM, n_steps=30, n_hidden=50)
    assert rnn[-1] == lstm[-1] == 1
    # 29 steps back both have shrunk, the RNN's far more (measured: 1.5e-4 against 1.5e-2).
    assert lstm[0] < 0.1 and rnn[0] < 0.05 * lstm[0], (rnn[0], lstm[0])
