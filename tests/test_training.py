"""The early-stopping loop, driven by scripted validation errors (no Theano)."""
import logging

import pytest

from dltutorials.training import early_stopping, pretrain_layers, set_scorer


class Script:
    """Scripted scorers: validation errors in order (the last one repeats)."""

    def __init__(self, validation_errors):
        self.validation_errors = list(validation_errors)
        self.validations = 0
        self.trained = []
        self.tests = 0

    def train(self, index):
        self.trained.append(index)
        return 1.0

    def validate(self):
        error = self.validation_errors[min(self.validations, len(self.validation_errors) - 1)]
        self.validations += 1
        return error

    def test(self):
        self.tests += 1
        return 0.5 + self.tests / 100.0   # distinguishable per call


def run(script, **kw):
    kw.setdefault('n_train_batches', 10)
    kw.setdefault('n_epochs', 1000)
    return early_stopping(script.train, script.validate, script.test, **kw)


def test_no_improvement_stops_when_patience_runs_out():
    script = Script([0.5])
    result = run(script, patience=30, validation_frequency=5)
    # The first validation (iteration 4) is a new best: patience = max(30, 4*2) = 30.
    # Stop when patience <= iteration: after iteration 30, the 31st minibatch.
    assert result.stopped_by == 'patience'
    assert result.iterations == 31 and len(script.trained) == 31
    assert result.epochs == 4
    assert result.best_iteration == 4 and result.best_validation_error == 0.5
    assert script.tests == 1 and result.test_error == pytest.approx(0.51)


def test_first_validation_extends_patience_from_a_zero_based_iteration():
    script = Script([0.5])
    result = run(script, n_train_batches=100, patience=10, validation_frequency=5)
    # First validation at iteration 4 (the 5th minibatch): patience becomes max(10, 8) = 10.
    assert result.iterations == 11


def test_significant_improvements_extend_patience():
    # Errors fall by 10 % each time for 5 validations, then stay flat.
    errors = [0.5 * 0.9 ** k for k in range(5)]
    script = Script(errors)
    result = run(script, patience=20, validation_frequency=10, patience_increase=2)
    # Last improvement at iteration 49 -> patience 98 -> stop after iteration 98.
    assert result.best_iteration == 49
    assert result.iterations == 99
    assert script.tests == 5
    assert result.best_validation_error == pytest.approx(errors[-1])


def test_improvements_below_the_threshold_count_as_best_but_do_not_extend_patience():
    errors = [0.5, 0.4999, 0.4998, 0.4997]   # better, but by less than 0.5 %
    script = Script(errors)
    result = run(script, patience=25, validation_frequency=10, improvement_threshold=0.995)
    # Validations at iterations 9 and 19 (patience stays 25); stop after iteration 25.
    assert result.iterations == 26
    assert result.best_iteration == 19 and result.best_validation_error == 0.4999
    assert script.tests == 2


def test_n_epochs_caps_training():
    script = Script([0.5 * 0.5 ** k for k in range(100)])   # always improving
    result = run(script, n_epochs=3, patience=10000)
    assert result.stopped_by == 'n_epochs'
    assert result.epochs == 3 and result.iterations == 30
    assert script.trained == list(range(10)) * 3


def test_default_validation_frequency_is_min_of_epoch_and_half_patience():
    script = Script([0.5])
    run(script, n_train_batches=10, patience=8, n_epochs=1)
    assert script.validations == 2          # every patience // 2 = 4 minibatches: at 3 and 7
    script = Script([0.5 * 0.5 ** k for k in range(100)])
    run(script, n_train_batches=10, patience=10000, n_epochs=2)
    assert script.validations == 2          # once per epoch


def test_on_new_best_is_called_for_each_new_best_only():
    saved = []
    script = Script([0.5, 0.4, 0.45, 0.3, 0.35])
    run(script, n_epochs=5, on_new_best=lambda r: saved.append(r.best_validation_error))
    assert saved == [0.5, 0.4, 0.3]


def test_history_records_every_validation():
    script = Script([0.5, 0.4, 0.45])
    result = run(script, n_epochs=3)
    assert [h['validation_error'] for h in result.history] == [0.5, 0.4, 0.45]
    assert [h['test_error'] is None for h in result.history] == [False, False, True]


def test_ctrl_c_returns_the_best_so_far():
    script = Script([0.5, 0.4])

    def train(index):
        if script.validations == 2:
            raise KeyboardInterrupt
        return 1.0

    result = early_stopping(train, script.validate, script.test, 10, 100)
    assert result.stopped_by == 'interrupted'
    assert result.best_validation_error == 0.4 and result.epochs == 3


def test_logs_the_tutorial_lines(caplog):
    script = Script([0.081, 0.075])
    with caplog.at_level(logging.INFO):
        run(script, n_train_batches=83, n_epochs=2)
    assert 'epoch 2, minibatch 83/83, validation error 7.50 %' in caplog.text
    assert 'epoch 2, minibatch 83/83, test error of best model 52.00 %' in caplog.text
    assert ('Optimization complete with best validation score of 7.50 %, '
            'with test performance 52.00 %') in caplog.text


def test_set_scorer_weights_the_partial_last_batch():
    # 1,000 examples in batches of 600: the second batch holds 400.
    means = {0: 0.1, 1: 0.35}
    score = set_scorer(lambda i: means[i], n_examples=1000, batch_size=600)
    assert score() == pytest.approx((0.1 * 600 + 0.35 * 400) / 1000)


class ScriptedLayer:
    """A stand-in pre-training function: records its calls, returns scripted costs."""

    def __init__(self, costs, interrupt_after=None, name='', order=None):
        self.costs, self.calls, self.interrupt_after = list(costs), [], interrupt_after
        self.name, self.order = name, [] if order is None else order

    def __call__(self, index, **arguments):
        if self.interrupt_after is not None and len(self.calls) == self.interrupt_after:
            raise KeyboardInterrupt
        self.order.append(self.name)
        self.calls.append((index, arguments))
        return self.costs[len(self.calls) - 1]


def test_pretraining_trains_each_layer_in_turn_and_averages_each_epoch(caplog):
    order = []
    lower = ScriptedLayer([4.0, 2.0, 3.0, 1.0], name='lower', order=order)
    upper = ScriptedLayer([8.0, 6.0, 5.0, 5.0], name='upper', order=order)
    with caplog.at_level(logging.INFO, logger='dltutorials'):
        result = pretrain_layers([lower, upper], n_train_batches=2, pretraining_epochs=2,
                                 layer_arguments=[dict(corruption=0.1, lr=0.5),
                                                  dict(corruption=0.2, lr=0.5)])
    assert order == ['lower'] * 4 + ['upper'] * 4
    assert [call[0] for call in lower.calls] == [0, 1, 0, 1]
    assert upper.calls[0][1] == dict(corruption=0.2, lr=0.5)
    assert result.costs == [[3.0, 2.0], [7.0, 5.0]]
    assert len(result.seconds) == 2 and result.stopped_by == 'n_epochs'
    assert 'Pre-training layer 1, epoch 2, cost 5.0000' in caplog.text


def test_values_returned_after_the_cost_are_averaged_over_the_epoch_and_logged(caplog):
    # [cost, reconstruction, norm] per minibatch, as the contractive autoencoder's.
    layer = ScriptedLayer([[4.0, 3.0, 1.0], [2.0, 1.0, 3.0], [3.0, 2.5, 0.5], [1.0, 0.5, 0.5]])
    with caplog.at_level(logging.INFO, logger='dltutorials'):
        result = pretrain_layers([layer], n_train_batches=2, pretraining_epochs=2,
                                 monitor_names=('reconstruction', 'norm'))
    assert result.costs == [[3.0, 2.0]]
    assert result.monitors == [[[2.0, 2.0], [1.5, 0.5]]]    # every minibatch, not the first
    assert 'epoch 2, cost 2.0000, reconstruction 1.5000, norm 0.5000 (' in caplog.text
    assert pretrain_layers([ScriptedLayer([1.0, 3.0])], 2, 1).monitors == [[[]]]


def test_each_epoch_starts_with_its_hook_also_when_resumed_in_its_middle():
    calls = []

    def layers(world):
        return [lambda index, **kw: world.train(index)]

    def hook(layer, epoch):
        calls.append((layer, epoch))

    world = World(interrupt_at=4)            # epoch 2, minibatch 1 of 3
    stopped = MemoryCheckpoint(world)
    pretrain_layers(layers(world), 3, 3, checkpoint=stopped, on_epoch_start=hook)
    assert calls == [(0, 1), (0, 2)]
    calls.clear()
    world = World()
    pretrain_layers(layers(world), 3, 3, checkpoint=MemoryCheckpoint(world, stopped.saves[-1]),
                    on_epoch_start=hook)
    assert calls == [(0, 2), (0, 3)]


def test_zero_pretraining_epochs_trains_nothing():
    layer = ScriptedLayer([])
    assert pretrain_layers([layer], 3, 0).costs == [] and layer.calls == []


def test_ctrl_c_ends_pretraining_and_keeps_the_epochs_done():
    lower = ScriptedLayer([1.0] * 10, interrupt_after=5)
    upper = ScriptedLayer([1.0] * 10)
    result = pretrain_layers([lower, upper], n_train_batches=2, pretraining_epochs=5)
    assert result.interrupted and result.costs == [[1.0, 1.0]]
    assert upper.calls == []


def test_pretraining_refuses_argument_lists_of_another_length():
    with pytest.raises(ValueError, match='2 pre-training functions, 1 argument sets'):
        pretrain_layers([ScriptedLayer([1.0])] * 2, 1, 1, layer_arguments=[{}])


def test_a_cost_that_is_not_a_number_stops_training_at_once():
    from dltutorials.support.errors import DivergenceError

    costs = iter([2.0, 1.5, float('nan')] + [1.0] * 100)
    script = Script([0.5, 0.4])
    with pytest.raises(DivergenceError, match=r'^training diverged: the cost became nan in '
                                              r'epoch 1, minibatch 3/10; try a smaller '
                                              r'learning rate$'):
        early_stopping(lambda index: next(costs), script.validate, script.test,
                       n_train_batches=10, n_epochs=5)
    assert script.validations == 0
    layer = ScriptedLayer([3.0, 2.0, float('inf')])
    with pytest.raises(DivergenceError, match='Pre-training layer 0 diverged: the cost became '
                                              'inf in epoch 2, minibatch 1/2'):
        pretrain_layers([layer], n_train_batches=2, pretraining_epochs=3)


def test_a_cost_a_thousand_times_the_first_is_divergence_too():
    from dltutorials.support.errors import DivergenceError

    # 1999 < 1000 * 2.0: a bad step, not yet divergence; 2001 is.
    costs = iter([2.0, 1999.0, 2001.0] + [1.0] * 100)
    script = Script([0.5])
    with pytest.raises(DivergenceError, match=r'^training diverged: the cost rose from 2 to '
                                              r'2e\+03 in epoch 1, minibatch 3/10; try a '
                                              r'smaller learning rate$'):
        early_stopping(lambda index: next(costs), script.validate, script.test,
                       n_train_batches=10, n_epochs=5)
    # Below a first cost of 1 the yardstick is 1: a cost of 999 after 0.01 is no divergence.
    costs = iter([0.01, 999.0] + [0.5] * 100)
    early_stopping(lambda index: next(costs), script.validate, script.test,
                   n_train_batches=10, n_epochs=2)


# ---------------------------------------------------------------- checkpoints

class World:
    """A scripted model whose 'parameters' are the number of steps trained.

    The validation error it reports depends on that number only, as a real
    model's depends on its weights: restoring the number is restoring the model.
    """

    def __init__(self, steps=0, interrupt_at=None):
        self.steps, self.interrupt_at = steps, interrupt_at

    def train(self, index):
        import os
        import signal
        self.steps += 1
        if self.steps == self.interrupt_at:
            os.kill(os.getpid(), signal.SIGINT)     # Ctrl-C in the middle of a minibatch
        return 2.0 + (self.steps % 7) / 10.0

    def validate(self):
        # Improves, stalls, improves a little, then worsens: patience decides.
        return [0.5, 0.4, 0.4, 0.39, 0.3, 0.31, 0.35][min(self.steps // 5 - 1, 6)]

    def test(self):
        return self.steps / 1000.0


class MemoryCheckpoint:
    """A checkpoint kept in memory: each save is a JSON copy of the state, with the world's steps."""

    def __init__(self, world, saved=None):
        self.world, self.saved, self.saves = world, None, []
        if saved is not None:
            self.saved, self.world.steps = saved

    def save(self, state, where):
        import json
        self.saves.append((json.loads(json.dumps(state)), self.world.steps))


def without_time(result):
    return dict(result.as_dict(), seconds=None)


def test_early_stopping_resumed_from_any_checkpoint_ends_as_the_whole_run():
    loop = dict(n_train_batches=5, n_epochs=30, patience=20, validation_frequency=5)
    world = World()
    whole = early_stopping(world.train, world.validate, world.test,
                           checkpoint=MemoryCheckpoint(world), **loop)
    # Best at iteration 24 sets patience to 48: the 49th minibatch, in epoch 10, is the last.
    assert whole.stopped_by == 'patience' and (whole.iterations, whole.epochs) == (49, 10)

    world = World()
    checkpoint = MemoryCheckpoint(world)
    early_stopping(world.train, world.validate, world.test, checkpoint=checkpoint, **loop)
    assert len(checkpoint.saves) == whole.epochs       # one per epoch, the last one finished
    assert checkpoint.saves[-1][0]['finished']
    for saved in checkpoint.saves:
        world = World()
        resumed = early_stopping(world.train, world.validate, world.test,
                                 checkpoint=MemoryCheckpoint(world, saved), **loop)
        assert without_time(resumed) == without_time(whole), saved[0]['epoch']


def test_a_patience_window_stops_that_many_minibatches_after_the_best():
    # The original lstm.py's rule: new bests at the 2nd and 5th validations, then none.
    errors = [0.5, 0.4, 0.45, 0.42, 0.35, 0.36]
    script = Script(errors)
    result = run(script, patience=30, patience_window=30, validation_frequency=5)
    # Best at iteration 24 (the 5th validation): stop once iteration 24 + 30 is reached.
    assert result.best_iteration == 24 and result.best_validation_error == 0.35
    assert result.stopped_by == 'patience' and result.iterations == 55
    # A small improvement counts (no threshold), and never doubles patience.
    script = Script([0.5, 0.4999] + [0.6])
    result = run(script, patience=20, patience_window=20, validation_frequency=5)
    assert result.best_iteration == 9 and result.iterations == 30


def test_checkpoints_at_every_validation_resume_mid_epoch_to_the_whole_run():
    loop = dict(n_train_batches=10, n_epochs=30, patience=20, validation_frequency=5,
                checkpoint_each_validation=True)
    world = World()
    checkpoint = MemoryCheckpoint(world)
    whole = early_stopping(world.train, world.validate, world.test, checkpoint=checkpoint,
                           **loop)
    # One save in the middle of each epoch, one at each epoch's end.
    assert [saved['minibatch'] for saved, _ in checkpoint.saves[:2]] == [5, 0]
    assert len(checkpoint.saves) == 2 * whole.epochs - (whole.iterations % 10 == 5)
    for saved in checkpoint.saves:
        world = World()
        resumed = early_stopping(world.train, world.validate, world.test,
                                 checkpoint=MemoryCheckpoint(world, saved), **loop)
        assert without_time(resumed) == without_time(whole), saved[0]


def test_ctrl_c_stops_after_the_minibatch_saves_where_and_resumes_to_the_same_result():
    loop = dict(n_train_batches=5, n_epochs=30, patience=20, validation_frequency=5)
    world = World()
    whole = early_stopping(world.train, world.validate, world.test, **loop)

    world = World(interrupt_at=13)           # epoch 3, minibatch 3 of 5
    checkpoint = MemoryCheckpoint(world)
    stopped = early_stopping(world.train, world.validate, world.test, checkpoint=checkpoint,
                             **loop)
    assert stopped.stopped_by == 'interrupted' and world.steps == 13
    state, steps = checkpoint.saves[-1]
    assert (state['epoch'], state['minibatch'], steps) == (3, 3, 13)

    world = World()
    resumed = early_stopping(world.train, world.validate, world.test,
                             checkpoint=MemoryCheckpoint(world, checkpoint.saves[-1]), **loop)
    assert without_time(resumed) == without_time(whole)


def test_pretraining_resumed_from_any_checkpoint_ends_as_the_whole_run():
    def layers(world):
        # The upper layer returns a value to watch after its cost.
        return [lambda index, **kw: world.train(index),
                lambda index, **kw: [10 + world.train(index), index * 0.5]]

    world = World()
    whole = pretrain_layers(layers(world), 3, 2)
    world = World(interrupt_at=4)            # layer 0, epoch 2, minibatch 1 of 3
    stopped = MemoryCheckpoint(world)
    assert pretrain_layers(layers(world), 3, 2, checkpoint=stopped).interrupted
    assert (stopped.saves[-1][0]['epoch'], stopped.saves[-1][0]['minibatch']) == (2, 1)
    world = World(interrupt_at=8)            # layer 1, epoch 1, minibatch 2 of 3
    stopped_upper = MemoryCheckpoint(world)
    assert pretrain_layers(layers(world), 3, 2, checkpoint=stopped_upper).interrupted
    assert stopped_upper.saves[-1][0]['monitor_totals'] == [0.5]     # minibatches 0 and 1
    world = World()
    checkpoint = MemoryCheckpoint(world)
    pretrain_layers(layers(world), 3, 2, checkpoint=checkpoint)
    # Two layers x two epochs, and the end.
    assert len(checkpoint.saves) == 5 and checkpoint.saves[-1][0]['finished']
    for saved in checkpoint.saves + stopped.saves[-1:] + stopped_upper.saves[-1:]:
        world = World()
        resumed = pretrain_layers(layers(world), 3, 2,
                                  checkpoint=MemoryCheckpoint(world, saved))
        assert resumed.costs == whole.costs and resumed.stopped_by == 'n_epochs'
        assert resumed.monitors == whole.monitors == [[[], []], [[0.5], [0.5]]]


def test_ctrl_c_while_the_epochs_checkpoint_is_written_stops_there():
    import os
    import signal

    class PressedWhileSaving(MemoryCheckpoint):
        def save(self, state, where):
            if not self.saves:
                os.kill(os.getpid(), signal.SIGINT)
            super().save(state, where)

    world = World()
    checkpoint = PressedWhileSaving(world)
    stopped = early_stopping(world.train, world.validate, world.test, n_train_batches=5,
                             n_epochs=30, patience=20, validation_frequency=5,
                             checkpoint=checkpoint)
    assert stopped.stopped_by == 'interrupted' and world.steps == 5
    assert len(checkpoint.saves) == 1 and checkpoint.saves[0][0]['epoch'] == 2
