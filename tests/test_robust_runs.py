"""Runs that survive: kill a script, resume it, compare model files; Ctrl-C; divergence.

Everything here runs the scripts as a user does, in child processes, on the
digits shipped in ``data/``: a run killed with SIGKILL after its first
checkpoint and continued with ``--resume`` must write byte for byte the
model file of a run never interrupted (same seed).
"""
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO

SAMPLE = str(REPO / 'data' / 'mnist_sample.pkl.gz')
# Stands for conftest's ``small_sample`` in the arguments below (a later --dataset wins).
SMALL_SAMPLE = '<small sample>'
DATASETS = {}


@pytest.fixture(autouse=True, scope='module')
def datasets(small_sample):
    DATASETS[SMALL_SAMPLE] = str(small_sample)

# name: (script, arguments, the checkpoint to wait for, the model files to compare)
RUNS = {
    'mlp': ('mlp', ['--n-epochs', '5', '--n-hidden', '300'],
            'mlp.checkpoint.npz', ['mlp.npz']),
    'lenet': ('convolutional_mlp', ['--n-epochs', '2', '--nkerns', '4', '6', '--batch-size', '50'],
              'convolutional_mlp.checkpoint.npz', ['convolutional_mlp.npz']),
    # Killed in the second dA: the first is restored from its finished checkpoint.
    'dA': ('dA', ['--training-epochs', '3', '--n-hidden', '100', '--corruption-levels', '0',
                  '0.3'],
           'dA_corruption_30.checkpoint.npz', ['dA_corruption_0.npz', 'dA_corruption_30.npz']),
    'SdA pre-training': ('SdA', ['--pretraining-epochs', '3', '--training-epochs', '1',
                                 '--hidden-layers-sizes', '100', '100'],
                         'SdA_pretrained.checkpoint.npz', ['SdA_pretrained.npz', 'SdA.npz']),
    'SdA fine-tuning': ('SdA', ['--pretraining-epochs', '1', '--training-epochs', '3',
                                '--hidden-layers-sizes', '200', '200'],
                        'SdA.checkpoint.npz', ['SdA_pretrained.npz', 'SdA.npz']),
    # PCD: the persistent chains and the pseudo-likelihood's bit index are state too.
    'rbm': ('rbm', ['--training-epochs', '4', '--n-hidden', '200', '--k', '3', '--n-samples', '0',
                    '--ais-runs', '10', '--ais-betas', '100'],
            'rbm.checkpoint.npz', ['rbm.npz']),
    'DBN pre-training': ('DBN', ['--pretraining-epochs', '3', '--training-epochs', '1',
                                 '--hidden-layers-sizes', '200', '200'],
                         'DBN_pretrained.checkpoint.npz', ['DBN_pretrained.npz', 'DBN.npz']),
    # The epoch's monitors (reconstruction, Jacobian norm) are state too.
    'cA': ('cA', ['--training-epochs', '3', '--n-hidden', '200'], 'cA.checkpoint.npz', ['cA.npz']),
    # Each epoch's pairs and noise words are drawn again, the same, for a resumed epoch.
    'word2vec': ('word2vec', ['--dataset', str(REPO / 'data' / 'tinyshakespeare_excerpt.txt'),
                              '--n-epochs', '12', '--batch-size', '64'],
                 'word2vec.checkpoint.npz', ['word2vec.npz', 'embeddings.txt']),
    # Checkpoints at every validation, in the middle of an epoch; dropout's stream is state too.
    'lstm': ('lstm', ['--max-epochs', '2', '--dim-proj', '16', '--batch-size', '50',
                      '--validFreq', '20', '--valid-batch-size', '500'],
             'lstm_model.checkpoint.npz', ['lstm_model.npz']),
    # Two players, two optimizers, the noise's and the dropout's random streams
    # (on 1,000 of the digits: an epoch of all 6,000 takes 2.6 s).
    'gan': ('gan', ['--dataset', SMALL_SAMPLE, '--architecture', 'gan', '--n-epochs', '5',
                    '--batch-size', '100'],
            'gan.checkpoint.npz', ['gan.npz']),
    # The resumed epoch draws the same shifted and mirrored copies as the whole run's.
    'lstm augmented': ('lstm', ['--max-epochs', '2', '--dim-proj', '16', '--batch-size', '50',
                                '--validFreq', '20', '--valid-batch-size', '500',
                                '--augment', 'shift', 'flip'],
                       'lstm_model.checkpoint.npz', ['lstm_model.npz']),
}


def command(script, arguments, output, *flags):
    arguments = [DATASETS.get(argument, argument) for argument in arguments]
    return ([sys.executable, str(REPO / 'code' / (script + '.py')), '--dataset', SAMPLE,
             '--output-dir', str(output), '--no-plot'] + arguments + list(flags))


def run(script, arguments, output, *flags):
    return subprocess.run(command(script, arguments, output, *flags), capture_output=True,
                          text=True, timeout=600, cwd=str(REPO))


def start_and_stop(script, arguments, output, checkpoint, how, delay=0.05):
    """Start a run; once ``checkpoint`` exists, wait ``delay`` s and send signal ``how``.

    The runs are sized so that more than a second of training is left then.
    """
    process = subprocess.Popen(command(script, arguments, output), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, cwd=str(REPO))
    deadline = time.monotonic() + 300
    while not (output / checkpoint).exists():
        assert process.poll() is None, 'the run ended before its first checkpoint: %s' % (
            process.communicate()[1])
        assert time.monotonic() < deadline
        time.sleep(0.005)
    time.sleep(delay)
    process.send_signal(how)
    stdout, stderr = process.communicate(timeout=300)
    return process.returncode, stderr


@pytest.fixture(scope='module')
def uninterrupted(tmp_path_factory):
    """``uninterrupted(name)``: the output folder of run ``name`` of RUNS, never interrupted.

    Each is run once for all the tests of this file that compare with it.
    """
    folders = {}

    def output_folder(name):
        if name not in folders:
            script, arguments, _, _ = RUNS[name]
            folder = tmp_path_factory.mktemp('uninterrupted')
            done = run(script, arguments, folder, '--quiet')
            assert done.returncode == 0, done.stderr
            folders[name] = folder
        return folders[name]
    return output_folder


def assert_same_model_files(name, output, uninterrupted):
    for model_file in RUNS[name][3]:
        assert (output / model_file).read_bytes() == \
            (uninterrupted(name) / model_file).read_bytes(), model_file


@pytest.mark.parametrize('name', sorted(RUNS))
def test_a_killed_run_resumes_to_the_same_model_files(name, tmp_path, uninterrupted):
    script, arguments, checkpoint, _ = RUNS[name]
    killed = tmp_path / 'killed'
    status, _ = start_and_stop(script, arguments, killed, checkpoint, signal.SIGKILL)
    assert status == -signal.SIGKILL          # killed, not finished
    assert (killed / checkpoint).exists()

    resumed = run(script, arguments, killed, '--resume')
    assert resumed.returncode == 0, resumed.stderr
    assert 'resuming from %s' % (killed / checkpoint) in resumed.stderr
    assert_same_model_files(name, killed, uninterrupted)
    assert not list(killed.glob('*.checkpoint.npz'))      # a finished run leaves none


INTERRUPTED = {
    'logistic_sgd': ['--n-epochs', '300'],
    'logistic_cg': ['--n-epochs', '50'],
    'dA': ['--training-epochs', '3', '--n-hidden', '100'],
}
# The other scripts are stopped in one of RUNS, and resumed to the same model files.
SAME_AS = {'mlp': 'mlp', 'convolutional_mlp': 'lenet', 'cA': 'cA', 'word2vec': 'word2vec',
           'SdA': 'SdA fine-tuning', 'rbm': 'rbm', 'DBN': 'DBN pre-training', 'lstm': 'lstm',
           'gan': 'gan'}
INTERRUPTED.update((script, RUNS[name][1]) for script, name in SAME_AS.items())
FIRST_CHECKPOINT = {'logistic_sgd': 'logistic_sgd.checkpoint.npz',
                    'logistic_cg': 'logistic_cg.checkpoint.npz',
                    'mlp': 'mlp.checkpoint.npz',
                    'convolutional_mlp': 'convolutional_mlp.checkpoint.npz',
                    'dA': 'dA_corruption_0.checkpoint.npz',
                    'cA': 'cA.checkpoint.npz',
                    'word2vec': 'word2vec.checkpoint.npz',
                    'SdA': 'SdA_pretrained.checkpoint.npz',
                    'rbm': 'rbm.checkpoint.npz',
                    'DBN': 'DBN_pretrained.checkpoint.npz',
                    'lstm': 'lstm_model.checkpoint.npz',
                    'gan': 'gan.checkpoint.npz'}


# Ctrl-C is handled by one piece of code (runs.stop_requests) in four loops: early stopping,
# the layer-wise pre-training, conjugate gradients and the GAN's game, each of which saves the
# same checkpoint as its runs killed above.  The fast tier stops one script of each loop, those
# with the most state in the middle of an epoch (dropout's stream, the epoch's word pairs);
# ``pytest -m slow`` stops every script.
CTRL_C_FAST_TIER = {'lstm', 'word2vec', 'logistic_cg', 'gan'}


@pytest.mark.engine_independent
@pytest.mark.parametrize('script', [
    pytest.param(script, marks=() if script in CTRL_C_FAST_TIER else pytest.mark.slow)
    for script in sorted(INTERRUPTED)])
def test_ctrl_c_saves_the_state_says_how_to_resume_and_exits_130(script, tmp_path,
                                                                 uninterrupted):
    arguments, checkpoint = INTERRUPTED[script], FIRST_CHECKPOINT[script]
    status, stderr = start_and_stop(script, arguments, tmp_path, checkpoint, signal.SIGINT,
                                    delay=0.0)
    assert status == 130, stderr
    assert 'Traceback' not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("interrupted: the run's state is saved in ") and \
        last.endswith('to go on, run the same command with --resume'), last
    assert (tmp_path / checkpoint).exists()

    resumed = run(script, arguments, tmp_path, '--resume', '--quiet')
    assert resumed.returncode == 0, resumed.stderr
    assert not list(tmp_path.glob('*.checkpoint.npz'))
    if script in SAME_AS:
        assert_same_model_files(SAME_AS[script], tmp_path, uninterrupted)


@pytest.fixture(scope='module')
def interrupted_mlp(tmp_path_factory):
    """An output folder holding the checkpoint of an mlp run stopped by Ctrl-C."""
    output = tmp_path_factory.mktemp('interrupted') / 'out'
    script, arguments, checkpoint, _ = RUNS['mlp']
    status, stderr = start_and_stop(script, arguments, output, checkpoint, signal.SIGINT)
    assert status == 130, stderr
    return output


def test_resume_refuses_the_checkpoint_of_another_run(interrupted_mlp, tmp_path):
    output = tmp_path / 'out'
    shutil.copytree(interrupted_mlp, output)
    before = (output / 'mlp.checkpoint.npz').read_bytes()
    arguments = RUNS['mlp'][1] + ['--learning-rate', '0.05']
    done = run('mlp', arguments, output, '--resume')
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        'error: %s is the checkpoint of another run (learning_rate=0.01 there, 0.05 here); '
        'run the same command with --resume, or without it to start afresh'
        % (output / 'mlp.checkpoint.npz'))
    assert (output / 'mlp.checkpoint.npz').read_bytes() == before    # kept for the right run


def test_without_resume_a_run_starts_afresh_and_says_so(interrupted_mlp, tmp_path,
                                                        uninterrupted):
    output = tmp_path / 'out'
    shutil.copytree(interrupted_mlp, output)
    done = run('mlp', RUNS['mlp'][1], output)
    assert done.returncode == 0, done.stderr
    assert 'holds the state of an interrupted run: this run starts afresh' in done.stderr
    assert 'resuming' not in done.stderr
    assert 'epoch 1, minibatch 300/300, validation error' in done.stderr   # from the start
    assert_same_model_files('mlp', output, uninterrupted)


def test_resume_with_nothing_to_resume_is_an_error(tmp_path):
    done = run('mlp', RUNS['mlp'][1], tmp_path, '--resume', '--quiet')
    assert done.returncode == 2
    assert done.stderr.strip() == (
        'error: nothing to resume: no checkpoint %s (the run ended, or was stopped before '
        'the end of its first epoch); run without --resume' % (tmp_path / 'mlp.checkpoint.npz'))


@pytest.mark.parametrize('script, model_file', [('logistic_sgd', 'logistic_sgd.npz'),
                                                ('mlp', 'mlp.npz')])
def test_a_huge_learning_rate_stops_with_one_line_and_keeps_the_old_model(script, model_file,
                                                                         tmp_path):
    good = run(script, ['--n-epochs', '1', '--quiet'], tmp_path)
    assert good.returncode == 0, good.stderr
    before = (tmp_path / model_file).read_bytes()

    done = run(script, ['--learning-rate', '1e9', '--n-epochs', '3', '--quiet'], tmp_path)
    assert done.returncode == 3, done.stderr
    line, = done.stderr.strip().splitlines()
    assert line.startswith('error: training diverged: the cost ')
    assert 'in epoch 1, minibatch ' in line and line.endswith('try a smaller learning rate')
    assert (tmp_path / model_file).read_bytes() == before


def test_resume_true_in_python_goes_on_from_the_scripts_checkpoint(interrupted_mlp, tmp_path,
                                                                   uninterrupted):
    import inspect
    from dltutorials.mlp import train_mlp
    from dltutorials.support.runs import run_options

    assert inspect.signature(train_mlp).parameters['resume'].default is None
    output = tmp_path / 'out'
    shutil.copytree(interrupted_mlp, output)
    with run_options(output_dir=output, plot=False):
        result = train_mlp(dataset=SAMPLE, n_epochs=5, n_hidden=300, verbose=False, resume=True)
    assert result['stopped_by'] == 'n_epochs' and result['epochs'] == 5
    assert not (output / 'mlp.checkpoint.npz').exists()
    assert_same_model_files('mlp', output, uninterrupted)


# ------------------------------------------------- the checkpoint file itself

def test_a_checkpoint_with_nan_parameters_is_never_written(tmp_path):
    import numpy
    from dltutorials.support.checkpoints import Checkpoint
    from dltutorials.support.engine import theano
    from dltutorials.support.errors import DivergenceError
    from dltutorials.support.runs import run_options

    W = theano.shared(numpy.ones(3, dtype=theano.config.floatX), name='W')
    with run_options(output_dir=tmp_path):
        checkpoint = Checkpoint('m', [W])
        checkpoint.save({'epoch': 2}, 'the end of epoch 1')
        before = (tmp_path / 'm.checkpoint.npz').read_bytes()
        W.set_value(numpy.array([1, numpy.nan, 1], dtype=theano.config.floatX))
        with pytest.raises(DivergenceError, match='^training diverged: W became NaN or infinite '
                                                  'by the end of epoch 2; try a smaller'):
            checkpoint.save({'epoch': 3}, 'the end of epoch 2')
    assert (tmp_path / 'm.checkpoint.npz').read_bytes() == before


@pytest.mark.parametrize('kind', ['RandomState', 'Generator'])
def test_random_generators_are_saved_and_restored_to_the_same_next_draws(kind, tmp_path):
    import numpy
    from dltutorials.support import checkpoints, runs

    generator = (numpy.random.RandomState(7) if kind == 'RandomState'
                 else numpy.random.default_rng(7))
    generator.uniform(size=5)                     # somewhere in its stream
    state = runs.identity_json(checkpoints._generator_state(generator))  # via JSON
    restored = checkpoints._generator(state, generator)
    assert type(restored) is type(generator) and restored is not generator
    numpy.testing.assert_array_equal(restored.uniform(size=5), generator.uniform(size=5))


def test_every_shared_variable_a_training_step_updates_is_in_the_checkpoint():
    """Parameters, an update rule's own state (a velocity, as momentum keeps) and random streams."""
    import numpy
    from dltutorials.support.checkpoints import updated_variables
    from dltutorials.support.engine import MRG_RandomStreams, T, theano

    floatX = theano.config.floatX
    W = theano.shared(numpy.ones(3, dtype=floatX), name='W')
    velocity = theano.shared(numpy.zeros(3, dtype=floatX), name='velocity')
    constant = theano.shared(numpy.ones(3, dtype=floatX), name='constant')
    x = T.vector('x')
    mask = MRG_RandomStreams(1).binomial(size=(3,), n=1, p=0.5, dtype=floatX)
    cost = ((W * mask * constant * x) ** 2).sum()
    new_velocity = 0.9 * velocity - 0.1 * T.grad(cost, W)
    step = theano.function([x], cost, updates=[(velocity, new_velocity),
                                               (W, W + new_velocity)])

    def wrapper(x_value):
        return step(x_value)
    wrapper.__wrapped__ = step

    variables = updated_variables([wrapper, step])        # each once
    names = [variable.name for variable in variables]
    assert sorted(name for name in names if name) == ['W', 'velocity']
    assert len(variables) == 3                # and the random stream's state
    assert constant not in variables


def test_ctrl_c_in_a_python_session_says_how_to_go_on_there(tmp_path):
    program = '''
import os, signal, sys, threading, time
from pathlib import Path
from dltutorials.mlp import train_mlp
from dltutorials.support.runs import run_options

def press_ctrl_c():
    while not Path('mlp.checkpoint.npz').exists():
        time.sleep(0.005)
    os.kill(os.getpid(), signal.SIGINT)

threading.Thread(target=press_ctrl_c, daemon=True).start()
arguments = dict(dataset=sys.argv[1], n_epochs=5, n_hidden=300)
with run_options(output_dir='.', plot=False):
    print('first', train_mlp(**arguments)['stopped_by'])
    print('again', train_mlp(**arguments, resume=True)['stopped_by'])
'''
    done = subprocess.run([sys.executable, '-c', program, SAMPLE], capture_output=True,
                          text=True, timeout=600, cwd=str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert 'first interrupted' in done.stdout and 'again n_epochs' in done.stdout
    assert ('interrupted: the state is saved in mlp.checkpoint.npz; to go on, call train_mlp '
            'again with the same arguments and resume=True') in done.stdout
    assert not (tmp_path / 'mlp.checkpoint.npz').exists()
