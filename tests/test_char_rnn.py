"""The character-level language model: streams, the carried state, learning, writing, bad input, resuming."""
import shutil
import signal
import subprocess
import sys
import time

import numpy
import pytest

from conftest import REPO
from dltutorials import char_rnn
from dltutorials.support.engine import T, change_flags, theano

SCRIPT = str(REPO / 'code' / 'char_rnn.py')
EXCERPT = REPO / 'data' / 'tinyshakespeare_excerpt.txt'
VERSE = ('To be, or not to be, that is the question:\n'
         'Whether tis nobler in the mind to suffer\n'
         'The slings and arrows of outrageous fortune,\n')


def run_script(*arguments, timeout=600):
    return subprocess.run([sys.executable, SCRIPT] + [str(a) for a in arguments],
                          capture_output=True, text=True, timeout=timeout, cwd=str(REPO))


def test_the_text_is_cut_into_consecutive_streams_read_side_by_side():
    numbers = numpy.arange(11, dtype='int32')
    streams = char_rnn.text_streams(numbers, 2)
    # Two pieces of 5 characters (the 11th is left out), one per column, time down the rows.
    numpy.testing.assert_array_equal(streams, [[0, 5], [1, 6], [2, 7], [3, 8], [4, 9]])
    vocabulary = char_rnn.Vocabulary('banana!')
    assert vocabulary.characters == '!abn'
    numpy.testing.assert_array_equal(vocabulary.encode('nab!'), [3, 1, 2, 0])
    assert vocabulary.decode([2, 1, 3, 1]) == 'bana'


def small_model(loop='fused', n_layers=2, vocabulary='abcdefg'):
    return char_rnn.CharLanguageModel(numpy.random.RandomState(3), T.imatrix('characters'),
                                      vocabulary, n_hidden=6, n_layers=n_layers, loop=loop)


def test_an_untrained_model_knows_nothing_log_n_nats_per_character():
    # The softmax's weights start at zero: every character has probability 1/7.
    with change_flags(floatX='float64'):
        model = small_model()
        targets = T.imatrix('targets')
        loss = theano.function([model.input, targets] + model.initial_states,
                               model.negative_log_likelihood(targets))
        text = numpy.random.RandomState(0).randint(0, 7, size=(9, 4)).astype('int32')
        states = [numpy.zeros((4, 6)) for _ in model.initial_states]
        assert loss(text[:-1], text[1:], *states) == pytest.approx(numpy.log(7), rel=1e-12)


@pytest.mark.parametrize('loop', ['scan', 'fused'])
def test_the_carried_state_makes_two_short_minibatches_read_like_one_long_one(loop):
    """Truncating backpropagation changes the gradient, never what the model predicts."""
    with change_flags(floatX='float64'):
        model = small_model(loop)
        # Output weights away from zero, so that the predictions depend on the state.
        model.softmax.W.set_value(numpy.random.RandomState(1).normal(size=(6, 7)))
        targets = T.imatrix('targets')
        loss = model.negative_log_likelihood(targets)
        text = numpy.random.RandomState(0).randint(0, 7, size=(21, 3)).astype('int32')
        streams = theano.shared(text, name='streams')
        step_of_10, carried = char_rnn.compile_stream_step(model, targets, loss, streams, 10)
        step_of_20, _ = char_rnn.compile_stream_step(model, targets, loss, streams, 20)
        halves = [float(step_of_10(0)), float(step_of_10(1))]
        whole = float(step_of_20(0))
        # The states the step leaves are those after 10 characters of each stream.
        states_after_10 = theano.function([model.input] + model.initial_states,
                                          model.final_states)(
            text[:10], *[numpy.zeros((3, 6)) for _ in model.initial_states])
    assert numpy.mean(halves) == pytest.approx(whole, rel=1e-12)
    # Without the carried state, the second half would read differently.
    for state in carried:
        state.set_value(numpy.zeros_like(state.get_value()))
    assert float(step_of_10(1)) != pytest.approx(halves[1], rel=1e-6)
    for state in carried:
        state.set_value(numpy.zeros_like(state.get_value()))
    step_of_10(0)
    for state, expected in zip(carried, states_after_10):
        numpy.testing.assert_allclose(state.get_value(), expected, rtol=1e-12)


def test_a_low_temperature_writes_the_likeliest_character():
    with change_flags(floatX='float64'):
        model = small_model(n_layers=1)
        bias = numpy.zeros(7)
        bias[4] = 3.0                   # 'e' likelier than the rest, whatever was read
        model.softmax.b.set_value(bias)
        step = char_rnn.compile_sampler(model)
        assert char_rnn.sample(model, 30, temperature=0.05, prime='ab', step=step) == 'e' * 30
        hot = char_rnn.sample(model, 300, temperature=1.0, prime='ab', step=step)
    # At temperature 1, 'e' has probability e^3 / (e^3 + 6), about 0.77.
    assert 0.65 < hot.count('e') / 300 < 0.88


def test_the_script_learns_a_verse_writes_it_and_keeps_its_vocabulary(tmp_path):
    text = tmp_path / 'verse.txt'
    text.write_text(VERSE * 40)
    result = run_script('--dataset', text, '--output-dir', tmp_path, '--n-hidden', 64,
                        '--n-layers', 1, '--seq-length', 25, '--batch-size', 8, '--n-epochs', 12,
                        '--learning-rate', 0.01, '--no-plot')
    assert result.returncode == 0, result.stderr
    losses = [float(line.split('validation loss ')[1].split()[0])
              for line in result.stderr.splitlines()
              if line.startswith('epoch') and 'validation loss' in line]
    assert len(losses) == 12
    # From log(32) = 3.47 nats for the verse's 32 characters to a text it knows by heart.
    assert losses[0] > 2.0 and min(losses) < 0.5, losses
    written = run_script('--output-dir', tmp_path, '--sample', 200, '--temperature', 0.5,
                         '--prime', 'Whether')
    assert written.returncode == 0, written.stderr
    assert written.stdout.startswith('Whether')
    assert sum(word in written.stdout for word in ('nobler', 'mind', 'suffer', 'question',
                                                   'fortune', 'slings')) >= 3, written.stdout


@pytest.mark.parametrize('arguments, message', [
    (['--dataset', '{empty}'], 'the file is empty'),
    (['--dataset', '{binary}'], 'not UTF-8 text'),
    (['--dataset', '{nul}'], 'NUL bytes'),
    (['--dataset', '{short}'], 'too few'),
    (['--dataset', '{missing}'], 'no such file'),
    (['--sample', '10'], 'no saved model; train one first'),
    (['--sample', '10', '--temperature', '-1'], '--temperature: must be a positive number'),
    (['--sample', '0'], '--sample: must be a positive integer'),
    (['--n-hidden', '0'], '--n-hidden: must be a positive integer'),
    (['--output-dir', '{empty}/results'], 'cannot write to the output folder'),
    (['--encoder', 'transformer'], '--encoder: must be one of rnn, lstm, gru, got transformer'),
])
def test_bad_input_gets_one_line_and_exit_status_2(tmp_path, arguments, message):
    files = dict(empty=tmp_path / 'empty.txt', binary=tmp_path / 'binary.txt',
                 nul=tmp_path / 'nul.txt', short=tmp_path / 'short.txt',
                 missing=tmp_path / 'missing.txt')
    files['empty'].write_text('  \n')
    files['binary'].write_bytes(bytes(range(128, 256)) * 10)
    files['nul'].write_bytes(b'text\x00with a NUL byte\n' * 100)
    files['short'].write_text('Too short to train on.\n')
    arguments = [a.format(**files) for a in arguments]
    result = run_script('--output-dir', tmp_path / 'out', *arguments)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert 'Traceback' not in result.stderr
    assert not (tmp_path / 'out' / 'char_rnn.npz').exists()


def test_a_prime_with_characters_the_model_does_not_know_is_refused(tmp_path):
    with change_flags(floatX='float64'):
        model = small_model(n_layers=1)
    from dltutorials.support.models import save_model
    save_model(tmp_path / 'char_rnn.npz', model, dict(vocabulary=model.vocabulary, n_hidden=6,
                                                      n_layers=1, encoder='lstm'))
    result = run_script('--output-dir', tmp_path, '--sample', 5, '--prime', 'abz')
    assert result.returncode == 2
    assert "prime: the model knows no 'z'" in result.stderr
    assert 'Traceback' not in result.stderr
    assert run_script('--output-dir', tmp_path, '--sample', 5, '--prime', 'abc').returncode == 0


RESUME_RUN = ['--dataset', EXCERPT, '--n-hidden', 32, '--n-layers', 1, '--seq-length', 25,
              '--batch-size', 16, '--n-epochs', 2, '--valid-every', 40, '--no-plot']


def test_a_run_killed_mid_epoch_resumes_to_the_same_model_file(tmp_path):
    """The checkpoint holds the state carried between minibatches, not only the weights."""
    whole, killed = tmp_path / 'whole', tmp_path / 'killed'
    result = run_script(*RESUME_RUN, '--output-dir', whole)
    assert result.returncode == 0, result.stderr

    process = subprocess.Popen([sys.executable, SCRIPT] + [str(a) for a in RESUME_RUN]
                               + ['--output-dir', str(killed)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, cwd=str(REPO))
    checkpoint = killed / 'char_rnn.checkpoint.npz'
    deadline = time.monotonic() + 300
    while not checkpoint.exists():
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline
        time.sleep(0.005)
    time.sleep(0.3)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    assert checkpoint.exists()
    resumed = run_script(*RESUME_RUN, '--output-dir', killed, '--resume')
    assert resumed.returncode == 0, resumed.stderr
    assert 'resuming from' in resumed.stderr
    assert (killed / 'char_rnn.npz').read_bytes() == (whole / 'char_rnn.npz').read_bytes()
    assert not checkpoint.exists()
    shutil.rmtree(tmp_path)
