"""The boundary: one set of rules for keyword arguments and flags, run options, progress."""
import argparse
import re
import subprocess
import sys

import numpy
import pytest

from conftest import REPO
from dltutorials.support import checks
from dltutorials.support.errors import HyperparameterError
from dltutorials.support.runs import current_run, entry_point, run_options


@pytest.mark.parametrize('rule, good', [
    (checks.positive, [1, 0.5, numpy.float32(0.1), numpy.int64(3)]),
    (checks.positive_int, [1, numpy.int64(20), numpy.uint8(3)]),
    (checks.non_negative, [0, 0.0, numpy.float64(2.5)]),
    (checks.fraction, [0, 0.3, numpy.float32(0.999)]),
])
def test_rules_accept_python_and_numpy_numbers(rule, good):
    for value in good:
        assert rule.check('x', value) == value


@pytest.mark.parametrize('rule, bad', [
    (checks.positive, [0, -1, float('nan'), float('inf'), '1', None, True]),
    (checks.positive_int, [0, 2.0, numpy.float32(3), True, '3', -4]),
    (checks.non_negative, [-1e-9, float('nan')]),
    (checks.fraction, [1, 1.0, -0.1]),
    (checks.sizes, [[], 5, numpy.int64(5), numpy.array([[3]]), [3, 0], [3.0], 'ab']),
    (checks.two_sizes, [(20,), (20, 50, 1), (20, -5)]),
])
def test_rules_refuse_with_the_argument_named(rule, bad):
    for value in bad:
        with pytest.raises(HyperparameterError,
                           match='^x must be %s, got' % re.escape(rule.requirement)):
            rule.check('x', value)


def test_sequence_rules_give_lists():
    assert checks.sizes.check('s', (3, numpy.int64(4))) == [3, 4]
    assert checks.sizes.check('s', numpy.array([5, 6])) == [5, 6]
    assert checks.size_or_sizes.check('s', 7) == [7]


def test_the_command_line_parses_with_the_same_rules():
    assert checks.positive.parse('0.5') == 0.5 and checks.positive_int.parse('20') == 20
    for rule, text, message in [(checks.positive, '0', 'must be a positive number, got 0'),
                                (checks.positive_int, '2.5', "'2.5' is not a positive integer"),
                                (checks.sizes, '-3', 'must be a positive integer, got -3'),
                                (checks.fraction, 'nan', 'must be a fraction in')]:
        with pytest.raises(argparse.ArgumentTypeError, match=message):
            rule.parse(text)


def test_an_entry_point_checks_before_it_runs_and_passes_lists_on():
    calls = []

    @entry_point(rate=checks.positive, sizes=checks.sizes, patience=checks.positive_int)
    def train(rate=0.1, sizes=(3, 4), patience=None):
        calls.append((rate, sizes, patience))

    train()
    train(numpy.float32(0.5), numpy.array([2]), patience=numpy.int64(7))
    assert calls == [(0.1, [3, 4], None), (0.5, [2], 7)]
    with pytest.raises(HyperparameterError, match='rate must be a positive number, got -1'):
        train(rate=-1)
    with pytest.raises(HyperparameterError, match="unexpected keyword argument 'rte'"):
        train(rte=0.1)
    assert len(calls) == 2
    with pytest.raises(TypeError, match='has no argument nope'):
        entry_point(nope=checks.positive)(train)


def test_run_options_nest_and_restore(tmp_path):
    outer = current_run()
    with run_options(quick=True):
        with run_options(output_dir=tmp_path / 'x'):
            assert current_run().quick and current_run().output_dir == tmp_path / 'x'
        assert current_run().quick and current_run().output_dir == outer.output_dir
    assert current_run() == outer


PROGRAM = '''
import sys
from dltutorials.mlp import train_mlp
result = train_mlp(n_epochs=2, dataset=sys.argv[1], batch_size=20, n_hidden=10,
                   verbose=sys.argv[2] == 'yes')
print('returned', round(result['test_error'], 3))
'''


@pytest.mark.parametrize('verbose', ['yes', 'no'])
def test_a_fresh_python_session_shows_the_epochs_unless_told_not_to(tiny_pkl, tmp_path,
                                                                     verbose):
    done = subprocess.run([sys.executable, '-c', PROGRAM, str(tiny_pkl), verbose],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert 'returned' in done.stdout
    shown = 'epoch 2, minibatch 15/15, validation error' in done.stdout
    assert shown == (verbose == 'yes'), done.stdout
    assert ('about' in done.stdout and 's left' in done.stdout) == (verbose == 'yes')
    assert (tmp_path / 'results' / 'mlp.npz').exists()


def test_python_started_in_the_repository_gets_the_standard_library_code_module():
    # code/ is also the package dltutorials: "import code" there must still
    # give the standard library's module (pdb and the interactive console use it).
    done = subprocess.run([sys.executable, '-c',
                           'import code, pdb; print(code.__file__); code.InteractiveConsole'],
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith('code.py')
    assert str(REPO) not in done.stdout
    # ... and the tutorials still run as scripts from there.
    done = subprocess.run([sys.executable, 'code/mlp.py', '--help'], capture_output=True,
                          text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0 and '--n-hidden' in done.stdout, done.stderr


ENTRY_POINTS = [('logistic_sgd', 'sgd_optimization_mnist'), ('logistic_cg', 'train_cg'),
                ('mlp', 'train_mlp'), ('convolutional_mlp', 'evaluate_lenet5'),
                ('dA', 'test_dA'), ('SdA', 'train_sda'), ('rbm', 'test_rbm'),
                ('DBN', 'train_dbn'), ('lstm', 'train_sequence_classifier'),
                ('char_rnn', 'train_char_rnn')]


@pytest.mark.parametrize('module, name', ENTRY_POINTS)
def test_each_script_has_one_documented_flag_per_keyword_with_its_default(module, name):
    import importlib
    import inspect
    from dltutorials.support.command_line import RUN_FLAGS, build_parser

    train = getattr(importlib.import_module('dltutorials.' + module), name)
    skip = ['output_folder'] if module in ('dA', 'rbm') else []
    parser = build_parser(train, 'description', skip=skip)
    defaults = vars(parser.parse_args([]))
    # A function given as default (lstm's optimizer=adadelta) is its name on the command
    # line, which the entry point's rule turns it into (tested in test_lstm).
    expected = {key: list(p.default) if isinstance(p.default, tuple) else
                p.default.__name__ if callable(p.default) else p.default
                for key, p in inspect.signature(train).parameters.items()
                if key not in skip + ['verbose', 'resume']}
    assert {key: value for key, value in defaults.items() if key not in RUN_FLAGS} == expected
    for action in parser._actions:
        if action.dest in expected:
            # A description from the docstring, not just a type.
            assert len(action.help) > 12 and not action.help.startswith(('int', 'float')), \
                (action.dest, action.help)


def test_a_flag_reaches_the_training_function_and_a_bad_one_stops_the_script(capsys):
    from dltutorials.support import command_line

    calls = []

    @entry_point(rate=checks.positive, sizes=checks.sizes)
    def train(rate=0.1, sizes=(3,), dataset='d'):
        """Train.

        Parameters
        ----------
        rate : float
            the step size.
        sizes : list of int
            the layer sizes.
        dataset : str
            the data.
        """
        calls.append((rate, sizes))

    assert command_line.main(train, 'm.npz', 'A script.', ['--rate', '0.5', '--sizes', '4',
                                                           '5']) == 0
    assert calls == [(0.5, [4, 5])]
    with pytest.raises(SystemExit) as stop:
        command_line.main(train, 'm.npz', 'A script.', ['--sizes', '0'])
    assert stop.value.code == 2
    assert 'argument --sizes: must be a positive integer, got 0' in capsys.readouterr().err


def test_progress_output_gives_way_to_logging_the_user_sets_up_later(tiny_pkl, tmp_path):
    program = '''
import logging, sys
from dltutorials.logistic_sgd import sgd_optimization_mnist
sgd_optimization_mnist(n_epochs=1, dataset=sys.argv[1], batch_size=50)
logging.basicConfig(level=logging.WARNING, format='USER %(message)s')
sgd_optimization_mnist(n_epochs=1, dataset=sys.argv[1], batch_size=50)
logging.getLogger('dltutorials').warning('a warning')
'''
    done = subprocess.run([sys.executable, '-c', program, str(tiny_pkl)], capture_output=True,
                          text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count('Optimization complete') == 1      # the first run only
    assert 'Optimization complete' not in done.stderr            # the user's level: WARNING
    assert 'USER a warning' in done.stderr


# ------------------------------------------------- the run flags, as a user types them

SAMPLE = str(REPO / 'data' / 'mnist_sample.pkl.gz')


def script(name, *arguments):
    return subprocess.run([sys.executable, 'code/%s.py' % name] + [str(a) for a in arguments],
                          capture_output=True, text=True, timeout=600, cwd=REPO)


SAVED_MODEL_FLAGS = {'char_rnn': ['--sample', '--temperature', '--prime']}


@pytest.mark.parametrize('module, name', ENTRY_POINTS)
def test_help_of_every_script_lists_its_flags_and_exits_0(module, name):
    import importlib
    import inspect

    done = script(module, '--help')
    assert done.returncode == 0 and done.stderr == '', done.stderr
    train = getattr(importlib.import_module('dltutorials.' + module), name)
    keywords = [key for key in inspect.signature(train).parameters
                if key not in ('verbose', 'resume', 'output_folder')]
    # A classifier is asked about saved models with --predict/--evaluate; the
    # language model has no labels to predict: it writes text from a saved model.
    saved_model_flags = SAVED_MODEL_FLAGS.get(module, ['--predict', '--evaluate'])
    for flag in ['--' + key.replace('_', '-') for key in keywords] + [
            '--output-dir', '--quiet', '--quick', '--no-plot', '--resume'] + saved_model_flags:
        assert flag in done.stdout, flag


def test_quiet_and_no_plot_change_what_is_shown_and_drawn_not_the_model(tmp_path):
    arguments = ['--dataset', SAMPLE, '--n-epochs', '2', '--n-hidden', '20']
    loud = script('mlp', *arguments, '--output-dir', tmp_path / 'loud')
    quiet = script('mlp', *arguments, '--output-dir', tmp_path / 'quiet', '--quiet', '--no-plot')
    assert loud.returncode == quiet.returncode == 0, quiet.stderr
    assert 'epoch 2, minibatch 300/300, validation error' in loud.stderr
    assert quiet.stderr == '' and quiet.stdout == ''
    assert (tmp_path / 'loud' / 'mlp_curve.png').exists()
    assert not list((tmp_path / 'quiet').glob('*.png'))
    assert (tmp_path / 'loud' / 'mlp.npz').read_bytes() == \
        (tmp_path / 'quiet' / 'mlp.npz').read_bytes()


def test_seed_decides_the_initial_weights():
    import tempfile
    with tempfile.TemporaryDirectory() as folder:
        files = []
        for seed in ('1234', '1234', '5'):
            output = '%s/%d' % (folder, len(files))
            done = script('mlp', '--dataset', SAMPLE, '--n-epochs', '1', '--n-hidden', '20',
                          '--seed', seed, '--quiet', '--no-plot', '--output-dir', output)
            assert done.returncode == 0, done.stderr
            files.append(open(output + '/mlp.npz', 'rb').read())
    assert files[0] == files[1] != files[2]


def test_patience_reaches_the_loop(tmp_path):
    validations = {}
    for patience in ('2', '2000'):
        done = script('logistic_sgd', '--dataset', SAMPLE, '--patience', patience, '--n-epochs',
                      '3', '--no-plot', '--output-dir', tmp_path / patience)
        assert done.returncode == 0, done.stderr
        validations[patience] = re.findall(r'minibatch (\d+)/10, validation error', done.stderr)
    # The loop validates every min(n_train_batches, patience // 2) minibatches:
    # with patience 2 after each of the 10 minibatches of an epoch (and it
    # keeps improving, so patience keeps growing), with 2000 once an epoch.
    assert validations['2'] == [str(k) for k in range(1, 11)] * 3
    assert validations['2000'] == ['10'] * 3
