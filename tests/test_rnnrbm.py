"""The RNN-RBM: its RBM, its recurrence, training and generating; the music it reads and writes."""
import signal
import subprocess
import sys
import time

import numpy
import pytest

from dltutorials.support.engine import T, theano

from conftest import REPO
from dltutorials.rnnrbm import (RnnRbm, accuracy, build_rbm, build_rnnrbm,
                                pitch_frequency_log_likelihood, prediction_accuracy)

floatX = theano.config.floatX
mido = pytest.importorskip('mido')


def softplus(a):
    return numpy.logaddexp(0, a)


def test_the_cd_gradient_is_the_difference_of_the_two_phases():
    rng = numpy.random.RandomState(0)
    W = theano.shared(rng.normal(0, 0.5, (6, 4)).astype(floatX))
    bv = theano.shared(rng.normal(0, 0.5, 6).astype(floatX))
    bh = theano.shared(rng.normal(0, 0.5, 4).astype(floatX))
    v = T.matrix('v')
    v_sample, cost, monitor, updates = build_rbm(v, W, bv, bh, k=3)
    gradient = T.grad(cost, W, consider_constant=[v_sample])
    step = theano.function([v], [v_sample, gradient], updates=updates)
    data = (rng.uniform(size=(5, 6)) < 0.5).astype(floatX)
    sample, got = step(data)
    assert set(numpy.unique(sample)) <= {0, 1}

    def positive_phase(x):        # -dF/dW = x^T P(h | x)
        return x.T @ (1 / (1 + numpy.exp(-(x @ W.get_value() + bh.get_value()))))
    expected = (-positive_phase(data) + positive_phase(sample)) / len(data)
    numpy.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def test_the_monitor_is_the_log_probability_of_the_data_under_the_visible_means():
    # With W = 0 the chain forgets v: the visible means are sigmoid(bv) exactly.
    rng = numpy.random.RandomState(1)
    bv_value = rng.normal(0, 1, 5)
    v = T.matrix('v')
    _, _, monitor, updates = build_rbm(v, theano.shared(numpy.zeros((5, 3), dtype=floatX)),
                                       T.constant(bv_value.astype(floatX)),
                                       T.constant(numpy.zeros(3, dtype=floatX)), k=2)
    data = (rng.uniform(size=(4, 5)) < 0.5).astype(floatX)
    got = theano.function([v], monitor, updates=updates)(data)
    p = 1 / (1 + numpy.exp(-bv_value))
    expected = numpy.mean(numpy.sum(data * numpy.log(p) + (1 - data) * numpy.log(1 - p), axis=1))
    assert got == pytest.approx(expected, rel=1e-5)


def test_the_recurrence_sets_each_steps_biases_from_the_steps_before():
    # W = 0 again: the monitor then reads the biases b_v^(t) = b_v + u^(t-1) W_uv
    # of every step, and u^(t) = tanh(b_u + v^(t) W_vu + u^(t-1) W_uu) is checked
    # against a numpy loop.
    rng = numpy.random.RandomState(2)
    (v, v_sample, cost, monitor, params, updates_train, v_t,
     updates_generate) = build_rnnrbm(5, 3, 4, rng=numpy.random.RandomState(3), n_steps=4)
    W, bv, bh, Wuh, Wuv, Wvu, Wuu, bu = params
    W.set_value(numpy.zeros((5, 3), dtype=floatX))
    for param in (bv, Wuv, Wvu, Wuu, bu):
        param.set_value(rng.normal(0, 1, param.get_value().shape).astype(floatX))
    roll = (rng.uniform(size=(7, 5)) < 0.5).astype(floatX)
    got = theano.function([v], monitor, updates=updates_train)(roll)

    u = numpy.zeros(4)
    total = 0.0
    for frame in roll.astype(numpy.float64):
        a = bv.get_value() + u @ Wuv.get_value()
        total += numpy.sum(frame * a - softplus(a))
        u = numpy.tanh(bu.get_value() + frame @ Wvu.get_value() + u @ Wuu.get_value())
    assert got == pytest.approx(total / len(roll), rel=1e-4)
    generated = theano.function([], v_t, updates=updates_generate)()
    assert generated.shape == (4, 5) and set(numpy.unique(generated)) <= {0, 1}


def arpeggios(n_pieces=6, length=24, seed=0):
    """Pieces cycling through the chord C-E-G, one note per step, each from a random place."""
    rng = numpy.random.RandomState(seed)
    pieces = []
    for _ in range(n_pieces):
        roll = numpy.zeros((length, 88), dtype=floatX)
        start = rng.randint(3)
        for t in range(length):
            roll[t, [60 - 21, 64 - 21, 67 - 21][(start + t) % 3]] = 1
        pieces.append(roll)
    return pieces


@pytest.fixture(scope='module')
def trained_on_arpeggios():
    """An RNN-RBM trained on the arpeggios, and its costs by epoch.

    The recurrent weights start at 1e-4: at the original's learning rate
    the recurrence takes hundreds of epochs to leave that start; 0.2 here.
    """
    model = RnnRbm(n_hidden=20, n_hidden_recurrent=10, lr=0.2, seed=4)
    result = model.train(arpeggios(), batch_size=24, num_epochs=120)
    return model, result.costs[0]


def test_training_lowers_the_cost_and_generates_the_notes_it_learnt(trained_on_arpeggios):
    model, costs = trained_on_arpeggios
    assert costs[-1] < 0.05 * costs[0]
    generated = model.generate_function()
    # The pieces use 3 of 88 pitches; what the model plays is mostly those.
    played = generated.sum(axis=0)
    assert played[[39, 43, 46]].sum() > 0.8 * played.sum()


def test_the_model_predicts_the_next_step_where_repeating_fails(trained_on_arpeggios):
    # C-E-G cycling: repeating the last step is always wrong; the model learnt the cycle.
    model, _ = trained_on_arpeggios
    predicted, repeated = prediction_accuracy(model, arpeggios(2, seed=9))
    assert repeated == 0.0 and predicted > 0.7


def test_the_yardsticks_on_cases_worked_by_hand():
    predicted = numpy.array([[1, 0, 0], [1, 1, 0]])
    true = numpy.array([[1, 1, 0], [0, 1, 0]])
    assert accuracy(predicted, true) == pytest.approx(2 / 4)        # 2 hits, 1 false, 1 missed
    # Pitch 0 sounds in 3 of 4 training steps, pitch 1 in 1: one test step (1, 1).
    train = [numpy.array([[1, 0], [1, 1]]), numpy.array([[1, 0], [0, 0]])]
    assert pitch_frequency_log_likelihood(train, [numpy.array([[1, 1]])]) == pytest.approx(
        numpy.log(0.75) + numpy.log(0.25))


def write_tiny_midi_folder(folder, n_pieces=4):
    from dltutorials.support.music import midiwrite
    for kind, count in (('train', n_pieces), ('valid', 1), ('test', 1)):
        for k, roll in enumerate(arpeggios(count, seed=len(kind))):
            midiwrite(folder / kind / ('piece%d.mid' % k), roll)
    return folder


def test_midi_round_trip_is_exact(tmp_path):
    from dltutorials.support.music import midiread, midiwrite
    rng = numpy.random.RandomState(5)
    roll = (rng.uniform(size=(40, 88)) < 0.1).astype(numpy.uint8)
    roll[-1, 0] = 1                     # a note in the last step: the length is kept
    for dt in (0.3, 0.25, 0.5):
        midiwrite(tmp_path / 'x.mid', roll, dt=dt)
        numpy.testing.assert_array_equal(midiread(tmp_path / 'x.mid', dt=dt), roll)


def run_script(*arguments, cwd):
    return subprocess.run([sys.executable, str(REPO / 'code' / 'rnnrbm.py')] + list(arguments),
                          capture_output=True, text=True, timeout=600, cwd=str(cwd))


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    (tmp_path / 'bad').mkdir()
    (tmp_path / 'bad' / 'song.mid').write_text('not music')
    (tmp_path / 'empty').mkdir()
    for arguments, message in (
            (['--dataset', 'bad'], 'song.mid: not a MIDI file'),
            (['--dataset', 'empty'], 'empty: no MIDI files (*.mid) in it'),
            (['--dataset', 'nowhere'], 'nowhere: no such folder (known name: bach-chorales)'),
            (['--lr', '0'], 'argument --lr: must be a positive number')):
        done = run_script(*arguments, cwd=tmp_path)
        assert done.returncode == 2 and 'Traceback' not in done.stderr, done.stderr[-2000:]
        assert message in done.stderr.strip().splitlines()[-1]


def test_training_on_nothing_says_so():
    from dltutorials.support.errors import DatasetError
    with pytest.raises(DatasetError, match='^the training set is empty'):
        RnnRbm(n_hidden=5, n_hidden_recurrent=3).train([], num_epochs=1)


def test_without_music21_the_chorales_say_how_to_get_it(tmp_path, monkeypatch):
    from dltutorials.support import music
    from dltutorials.support.errors import DatasetError
    monkeypatch.setitem(sys.modules, 'music21', None)          # import music21 fails
    with pytest.raises(DatasetError, match=r'^building the Bach chorales needs music21: pip '
                                           r'install music21'):
        music.load_chorales(data_dir=tmp_path)


ORIGINAL_CALLS = '''
import sys
sys.path.insert(0, sys.argv[1])
from rnnrbm import test_rnnrbm
model = test_rnnrbm(num_epochs=1, **({'dataset': sys.argv[2]} if len(sys.argv) > 2 else {}))
model.generate('extra.mid', show=False)
print('costs', model.result['costs'])
'''


def chorales_available():
    from dltutorials.support.music import CHORALES_FILE, DATA_DIR
    if (DATA_DIR / CHORALES_FILE).exists():
        return True
    import importlib.util
    return importlib.util.find_spec('music21') is not None


# Slow (40 s on 2 cores, reading the 371 scores included): the original call itself runs in
# the fast tier on a folder of MIDI files, below.
@pytest.mark.slow
@pytest.mark.skipif(not chorales_available(), reason='neither music21 nor the cached chorales')
def test_the_original_call_trains_on_the_chorales_and_generates(tmp_path):
    done = subprocess.run([sys.executable, '-c', ORIGINAL_CALLS, str(REPO / 'code')],
                          capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    # No logging set up: the progress is printed, as the original printed it.
    assert 'Bach chorales: 223 train, 74 validate, 74 test' in done.stdout
    assert 'valid pieces (74): frame log-likelihood' in done.stdout
    for name in ('rnnrbm.npz', 'sample1.mid', 'sample2.mid', 'sample1.png', 'extra.mid'):
        assert (tmp_path / 'results' / name).exists() or (tmp_path / name).exists(), name


def test_the_original_call_trains_on_a_folder_of_midi_files(tmp_path):
    write_tiny_midi_folder(tmp_path / 'songs')
    done = subprocess.run([sys.executable, '-c', ORIGINAL_CALLS, str(REPO / 'code'),
                           str(tmp_path / 'songs')], capture_output=True, text=True, timeout=900,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert 'on 4 pieces (96 steps)' in done.stdout
    assert 'test pieces (1): frame log-likelihood' in done.stdout
    from dltutorials.support.music import midiread
    assert midiread(tmp_path / 'results' / 'sample1.mid').shape[1] == 88


def test_quick_runs_the_whole_script_in_seconds(tmp_path):
    songs = write_tiny_midi_folder(tmp_path / 'songs')
    done = run_script('--quick', '--dataset', str(songs), '--output-dir', 'out', cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert 'Training RNN-RBM, epoch 1, cost' in done.stderr
    for name in ('rnnrbm.npz', 'sample1.mid', 'sample1.png', 'sample2.mid'):
        assert (tmp_path / 'out' / name).exists(), name


def test_a_killed_run_resumes_to_the_same_files(tmp_path):
    songs = write_tiny_midi_folder(tmp_path / 'songs')
    arguments = ['--dataset', str(songs), '--num-epochs', '50', '--batch-size', '8',
                 '--n-hidden', '30', '--n-hidden-recurrent', '20', '--no-plot']
    whole = run_script(*arguments, '--output-dir', 'whole', cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr[-2000:]
    process = subprocess.Popen(
        [sys.executable, str(REPO / 'code' / 'rnnrbm.py')] + arguments
        + ['--output-dir', 'killed'], cwd=str(tmp_path), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    checkpoint = tmp_path / 'killed' / 'rnnrbm.checkpoint.npz'
    deadline = time.monotonic() + 300
    while not checkpoint.exists():
        assert process.poll() is None, process.communicate()[1][-2000:]
        assert time.monotonic() < deadline
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL
    resumed = run_script(*arguments, '--output-dir', 'killed', '--resume', cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert 'resuming from' in resumed.stderr
    for name in ('rnnrbm.npz', 'sample1.mid', 'sample2.mid'):
        assert (tmp_path / 'killed' / name).read_bytes() == \
            (tmp_path / 'whole' / name).read_bytes(), name
