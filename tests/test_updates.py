"""Every update rule's trajectory against a numpy transcription of its published update.

The transcriptions follow the pseudo-code of PyTorch's ``torch.optim``
documentation (and, for the adaptive gains, Hinton's lecture 6 slide), written
here independently of the Theano code under test.  Where PyTorch is installed,
the same trajectories are also checked against ``torch.optim`` itself.
"""
import functools

import numpy
import pytest

from dltutorials import updates
from dltutorials.support.engine import T, theano

floatX = theano.config.floatX
RTOL = 1e-3 if floatX == 'float32' else 1e-9
ATOL = 1e-3 if floatX == 'float32' else 1e-9   # 25 float32 steps of values near 1

# A small ill-conditioned least-squares problem: loss = 0.5 |A w - y|^2, gradient A'(A w - y).
A = numpy.array([[3.0, 0.5, 0.0], [0.2, 1.0, -0.4], [0.0, 0.3, 0.1], [1.0, -1.0, 2.0]])
Y = numpy.array([1.0, -2.0, 0.5, 0.3])
W0 = numpy.array([0.5, -0.3, 0.8])
N_STEPS = 25


def numpy_gradient(w):
    return A.T @ (A @ w - Y)


def theano_trajectory(rule, n_steps=N_STEPS, **hyperparameters):
    w = theano.shared(W0.astype(floatX), name='w')
    loss = 0.5 * T.sum((T.dot(A.astype(floatX), w) - Y.astype(floatX)) ** 2)
    step = theano.function([], loss, updates=rule(loss, [w], **hyperparameters))
    trajectory = []
    for _ in range(n_steps):
        step()
        trajectory.append(w.get_value().copy())
    return numpy.array(trajectory)


def numpy_trajectory(step, n_steps=N_STEPS):
    """``step(w, g, state, t)`` -> new w, for t = 1, 2, ...; state: a dict it keeps."""
    w, state, trajectory = W0.copy(), {}, []
    for t in range(1, n_steps + 1):
        w = step(w, numpy_gradient(w), state, t)
        trajectory.append(w.copy())
    return numpy.array(trajectory)


# --- the published updates, transcribed (state starts at zero unless said) ---

def np_sgd(lr):
    return lambda w, g, s, t: w - lr * g


def np_momentum(lr, mu, nesterov=False):
    def step(w, g, s, t):
        s['b'] = g if t == 1 else mu * s['b'] + g           # torch: buf = g at the first step
        return w - lr * (g + mu * s['b'] if nesterov else s['b'])
    return step


def np_adagrad(lr, eps):
    def step(w, g, s, t):
        s['sum'] = s.get('sum', 0) + g * g
        return w - lr * g / (numpy.sqrt(s['sum']) + eps)
    return step


def np_rmsprop(lr, alpha, eps):
    def step(w, g, s, t):
        s['v'] = alpha * s.get('v', 0) + (1 - alpha) * g * g
        return w - lr * g / (numpy.sqrt(s['v']) + eps)
    return step


def np_adadelta(lr, rho, eps):
    def step(w, g, s, t):
        s['v'] = rho * s.get('v', 0) + (1 - rho) * g * g
        delta = numpy.sqrt(s.get('u', 0) + eps) / numpy.sqrt(s['v'] + eps) * g
        s['u'] = rho * s.get('u', 0) + (1 - rho) * delta * delta
        return w - lr * delta
    return step


def np_adam(lr, beta1, beta2, eps):
    def step(w, g, s, t):
        s['m'] = beta1 * s.get('m', 0) + (1 - beta1) * g
        s['v'] = beta2 * s.get('v', 0) + (1 - beta2) * g * g
        m_hat = s['m'] / (1 - beta1 ** t)
        v_hat = s['v'] / (1 - beta2 ** t)
        return w - lr * m_hat / (numpy.sqrt(v_hat) + eps)
    return step


def np_adaptive_gains(lr, up, down, low, high):
    def step(w, g, s, t):
        gain, previous = s.get('gain', numpy.ones_like(w)), s.get('previous', numpy.zeros_like(w))
        gain = numpy.clip(numpy.where(g * previous > 0, gain + up, gain * down), low, high)
        s['gain'], s['previous'] = gain, g
        return w - lr * gain * g
    return step


CASES = {
    'sgd': (updates.sgd, dict(learning_rate=0.05), np_sgd(0.05)),
    'momentum': (updates.momentum, dict(learning_rate=0.02, momentum=0.9),
                 np_momentum(0.02, 0.9)),
    'nesterov': (updates.nesterov_momentum, dict(learning_rate=0.02, momentum=0.9),
                 np_momentum(0.02, 0.9, nesterov=True)),
    # Epsilons and decay rates far from the defaults, so that where each goes shows.
    'adagrad': (updates.adagrad, dict(learning_rate=0.1, epsilon=0.5), np_adagrad(0.1, 0.5)),
    'rmsprop': (updates.rmsprop, dict(learning_rate=0.01, rho=0.8, epsilon=0.5),
                np_rmsprop(0.01, 0.8, 0.5)),
    'adadelta': (updates.adadelta, dict(learning_rate=0.5, rho=0.7, epsilon=1e-2),
                 np_adadelta(0.5, 0.7, 1e-2)),
    'adam': (updates.adam, dict(learning_rate=0.05, beta1=0.8, beta2=0.9, epsilon=0.5),
             np_adam(0.05, 0.8, 0.9, 0.5)),
    'adaptive_gains': (updates.adaptive_gains, dict(learning_rate=0.02),
                       np_adaptive_gains(0.02, 0.05, 0.95, 0.1, 10.0)),
}


@pytest.mark.parametrize('name', sorted(CASES))
def test_trajectory_matches_the_published_update(name):
    rule, hyperparameters, reference = CASES[name]
    numpy.testing.assert_allclose(theano_trajectory(rule, **hyperparameters),
                                  numpy_trajectory(reference), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize('name', sorted(CASES))
def test_every_rule_lowers_the_loss_and_keeps_floatX(name):
    rule, hyperparameters, _ = CASES[name]
    trajectory = theano_trajectory(rule, n_steps=100, **hyperparameters)
    losses = [0.5 * numpy.sum((A @ w - Y) ** 2) for w in trajectory]
    assert losses[-1] < 0.5 * numpy.sum((A @ W0 - Y) ** 2)
    assert trajectory.dtype == floatX


def test_the_rules_by_name_are_the_rules():
    assert set(updates.OPTIMIZERS) == set(CASES)
    assert updates.OPTIMIZERS['nesterov'] is updates.nesterov_momentum


def test_state_variables_are_updated_shared_variables_a_checkpoint_finds():
    from dltutorials.support.checkpoints import updated_variables

    w = theano.shared(W0.astype(floatX), name='w')
    step = theano.function([], [], updates=updates.adam(T.sum(w ** 2), [w]))
    names = [variable.name for variable in updated_variables([step])]
    assert sorted(names) == ['adam_t', 'first_moment_w', 'second_moment_w', 'w']


# torch.optim's class and its names for the hyperparameters of CASES.
torch_names = {'sgd': ('SGD', {}), 'momentum': ('SGD', {'momentum': 0.9}),
               'nesterov': ('SGD', {'momentum': 0.9, 'nesterov': True}),
               'adagrad': ('Adagrad', {'eps': 0.5}),
               'rmsprop': ('RMSprop', {'alpha': 0.8, 'eps': 0.5}),
               'adadelta': ('Adadelta', {'rho': 0.7, 'eps': 1e-2}),
               'adam': ('Adam', {'betas': (0.8, 0.9), 'eps': 0.5})}


@pytest.mark.parametrize('name', sorted(torch_names))
def test_trajectory_matches_torch_optim_where_installed(name):
    torch = pytest.importorskip('torch')
    rule, hyperparameters, _ = CASES[name]
    optimizer_name, options = torch_names[name]
    w = torch.tensor(W0, dtype=torch.float64, requires_grad=True)
    lr = hyperparameters['learning_rate']
    optimizer = getattr(torch.optim, optimizer_name)([w], lr=lr, **options)
    expected = []
    for _ in range(N_STEPS):
        optimizer.zero_grad()
        loss = 0.5 * ((torch.tensor(A) @ w - torch.tensor(Y)) ** 2).sum()
        loss.backward()
        optimizer.step()
        expected.append(w.detach().numpy().copy())
    numpy.testing.assert_allclose(theano_trajectory(rule, **hyperparameters), expected,
                                  rtol=RTOL, atol=ATOL)


def test_gradients_may_be_given_and_their_number_is_checked():
    w = theano.shared(numpy.ones(2, dtype=floatX))
    theano.function([], [], updates=updates.momentum([T.ones_like(w)], [w], 0.5))()
    numpy.testing.assert_allclose(w.get_value(), [0.5, 0.5])
    with pytest.raises(ValueError, match='Got 2 gradient expressions for 1 parameters'):
        updates.adam([w, w], [w])


# --- schedules ---

def rates_over(schedule, n_minibatches, minibatches_per_epoch, learning_rate=0.1):
    rate, schedule_updates = updates.scheduled_learning_rate(schedule, learning_rate,
                                                             minibatches_per_epoch)
    step = theano.function([], rate, updates=schedule_updates)
    return numpy.array([step() for _ in range(n_minibatches)])


def test_schedules_give_the_rate_of_each_epoch():
    per_epoch = 4
    epochs = numpy.arange(40 * per_epoch) / per_epoch        # epochs trained before each step
    rtol = 1e-6 if floatX == 'float32' else 1e-12
    numpy.testing.assert_allclose(rates_over('constant', 160, per_epoch), 0.1, rtol=rtol)
    numpy.testing.assert_allclose(rates_over('inverse_time', 160, per_epoch),
                                  0.1 * 10 / (10 + epochs), rtol=rtol)
    numpy.testing.assert_allclose(rates_over('step', 160, per_epoch),
                                  0.1 * 0.5 ** (epochs // 10), rtol=rtol)
    numpy.testing.assert_allclose(rates_over('exponential', 160, per_epoch),
                                  0.1 * 0.95 ** numpy.floor(epochs), rtol=rtol)
    # 20 epochs at 0.1, then 0.085 through the 21st, 0.07225 through the 22nd ...
    after = rates_over('exponential_after', 160, per_epoch)
    numpy.testing.assert_allclose(after[:20 * per_epoch], 0.1, rtol=rtol)
    numpy.testing.assert_allclose(after[20 * per_epoch:21 * per_epoch], 0.085, rtol=rtol)
    numpy.testing.assert_allclose(after[-1], 0.1 * 0.85 ** 20, rtol=rtol)
    custom = rates_over(functools.partial(updates.step_decay, step=2, gamma=0.1), 17, 1)
    numpy.testing.assert_allclose(custom[[0, 1, 2, 4, 16]], [0.1, 0.1, 0.01, 0.001, 1e-9],
                                  rtol=rtol)


def test_a_scheduled_rate_drives_a_rule():
    w = theano.shared(numpy.array([1.0], dtype=floatX), name='w')
    rate, schedule_updates = updates.scheduled_learning_rate('step', 0.25, 1)
    rule_updates = updates.sgd(T.sum(w), [w], rate)         # gradient 1: w falls by the rate
    rule_updates.update(schedule_updates)
    step = theano.function([], [], updates=rule_updates)
    for _ in range(12):
        step()
    numpy.testing.assert_allclose(w.get_value(), [1 - 10 * 0.25 - 2 * 0.125], rtol=1e-6)


def test_max_norm_scales_long_columns_back_only():
    w = theano.shared(numpy.array([[3.0, 0.1], [4.0, 0.1]], dtype=floatX), name='W')
    constrained = updates.max_norm(updates.sgd(0 * T.sum(w), [w], 0.1), [w], 2.0)
    theano.function([], [], updates=constrained)()
    numpy.testing.assert_allclose(w.get_value(), [[1.2, 0.1], [1.6, 0.1]], rtol=1e-6)
