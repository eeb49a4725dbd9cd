"""Every script, every kind of bad input, run as a user runs it: one line, exit 2, nothing run.

The matrix: each of the six scripts x (broken datasets for training, broken
model files for ``--predict`` and ``--evaluate``, unreadable image files,
output folders that cannot be written, broken checkpoints for
``--resume``).  Each case is a real ``python code/<script>.py ...`` in a
child process; its exit status and stderr are checked: status 2, one line
``error: ...`` naming the file, no traceback.  A malicious pickle must not
run its payload.

The child processes are started together (a few at a time), once, for
the cases pytest selected: the fast tier runs each kind of bad input for one
script (37 runs), ``pytest -m slow`` the other 185.
"""
import concurrent.futures
import gzip
import os
import pickle
import subprocess
import sys

import numpy
import pytest

from conftest import REPO, RunsCode, make_digits, write_idx_folder, write_pkl_gz

# script: (its model class, the file --predict and --evaluate read)
SCRIPTS = {
    'logistic_sgd': ('LogisticRegression', 'logistic_sgd.npz'),
    'logistic_cg': ('LogisticRegression', 'logistic_cg.npz'),
    'mlp': ('MLP', 'mlp.npz'),
    'convolutional_mlp': ('LeNet5', 'convolutional_mlp.npz'),
    'dA': ('dA', 'dA_corruption_30.npz'),
    'SdA': ('SdA', 'SdA.npz'),
    'rbm': ('RBM', 'rbm.npz'),
    'DBN': ('DBN', 'DBN.npz'),
    'lstm': ('SequenceClassifier', 'lstm_model.npz'),
}
SAMPLE = REPO / 'data' / 'mnist_sample.pkl.gz'


# ---------------------------------------------------------------- the bad files

def bad_dataset(folder, case):
    """Write the broken dataset of ``case``; return the path to give as --dataset."""
    folder.mkdir()
    good = make_digits(300, seed=1), make_digits(100, seed=2), make_digits(100, seed=3)
    (train_x, train_y), valid, test = good

    def pkl(splits):
        return lambda path: write_pkl_gz(path, splits)

    def cut(path):
        whole = write_pkl_gz(path, good).read_bytes()
        path.write_bytes(whole[:len(whole) // 2])

    def nan_pixel(path):
        nan_x = train_x.copy()
        nan_x[3, 5] = numpy.nan
        write_pkl_gz(path, ((nan_x, train_y), valid, test))

    def bad_idx(path):
        write_idx_folder(path, (numpy.zeros((70, 28, 28)), numpy.zeros(70)),
                         (numpy.zeros((10, 28, 28)), numpy.zeros(10)))
        labels = path / 'train-labels-idx1-ubyte.gz'
        labels.write_bytes(gzip.compress(gzip.decompress(labels.read_bytes())[:20]))

    def malicious(path):
        with gzip.open(path, 'wb') as stream:
            pickle.dump(RunsCode(folder / 'PAYLOAD_RAN'), stream)

    name, write = {
        'truncated gzip': ('truncated.pkl.gz', cut),
        'not gzip': ('not_gzip.pkl.gz',
                     lambda path: path.write_text('these are not the digits you are looking for\n')),
        'wrong width': ('width.pkl.gz', pkl(((train_x[:, :700], train_y), valid, test))),
        'labels out of range': ('labels.pkl.gz', pkl(((train_x, train_y + 5), valid, test))),
        'NaN pixels': ('nan.pkl.gz', nan_pixel),
        'lengths differ': ('lengths.pkl.gz', pkl(((train_x, train_y[:-1]), valid, test))),
        'two splits': ('two.pkl.gz', pkl(((train_x, train_y), valid))),
        'pixels 0-255': ('bytes.pkl.gz', pkl(((train_x * 255, train_y), valid, test))),
        'malicious pickle': ('malicious.pkl.gz', malicious),
        'bad IDX folder': ('bad_idx', bad_idx),
        'empty folder': ('empty', lambda path: path.mkdir()),
        'missing file': ('no_such_file.pkl.gz', lambda path: None),
    }[case]
    write(folder / name)
    return folder / name


_valid_files = {}


def valid_model_file(kind, path):
    """Write a small model of class ``kind`` to ``path`` (built once per class, then copied)."""
    import shutil
    if kind in _valid_files:
        return shutil.copyfile(_valid_files[kind], path)
    _valid_files[kind] = path
    from dltutorials.support.engine import T
    from dltutorials.support.models import MODEL_MODULES, save_model
    import importlib

    architecture = {
        'LogisticRegression': dict(n_in=784, n_out=10),
        'MLP': dict(n_in=784, n_hidden=20, n_out=10),
        'LeNet5': dict(nkerns=[2, 3]),
        'dA': dict(n_visible=784, n_hidden=20),
        'SdA': dict(n_ins=784, hidden_layers_sizes=[20, 20], n_outs=10,
                    corruption_levels=[0.1, 0.2]),
        'RBM': dict(n_visible=784, n_hidden=20),
        'DBN': dict(n_ins=784, hidden_layers_sizes=[20, 20], n_outs=10),
        'SequenceClassifier': dict(n_in=28, n_hidden=8, n_out=10, encoder='lstm', n_words=None,
                                   image_rows=28, use_dropout=False),
    }[kind]
    model_class = getattr(importlib.import_module(MODEL_MODULES[kind]), kind)
    arguments = dict(architecture)
    if kind == 'LogisticRegression':
        arguments['input'] = T.matrix('x')
    elif kind in ('MLP', 'LeNet5', 'SequenceClassifier'):
        arguments.update(rng=numpy.random.RandomState(0), input=T.matrix('x'))
    else:
        arguments['numpy_rng'] = numpy.random.RandomState(0)
    return save_model(path, model_class(**arguments), architecture)


def broken_model_files(kind, folder):
    """{case: a function writing that broken model file at the path it is given}."""
    valid = valid_model_file(kind, folder / ('valid_%s.npz' % kind))
    with numpy.load(valid) as archive:
        arrays = {key: archive[key] for key in archive.files}
    names = sorted(key for key in arrays if key != '__meta__')

    def changed(change):
        def write(path):
            modified = dict(arrays)
            first = modified[names[0]].copy()
            modified[names[0]] = change(first)
            numpy.savez(path, **modified)
        return write

    def with_value(value):
        def change(array):
            array.flat[0] = value
            return array
        return change

    def object_array(array):
        return numpy.array([print] * 3, dtype=object)

    return {
        'truncated': lambda path: path.write_bytes(valid.read_bytes()[:1000]),
        'not a zip': lambda path: path.write_text('not a model\n'),
        'empty': lambda path: path.write_bytes(b''),
        'no arrays': lambda path: numpy.savez(path),
        'wrong shapes': changed(lambda array: numpy.zeros(array.shape[:-1] + (array.shape[-1] + 1,),
                                                          array.dtype)),
        'NaN weights': changed(with_value(numpy.nan)),
        'inf weights': changed(with_value(numpy.inf)),
        'object arrays': lambda path: numpy.savez(path, **dict(arrays, **{
            names[0]: object_array(None)})),
        'a directory': lambda path: path.mkdir(),
    }


# ---------------------------------------------------------------- the matrix

DATASET_CASES = ['truncated gzip', 'not gzip', 'wrong width', 'labels out of range', 'NaN pixels',
                 'lengths differ', 'two splits', 'pixels 0-255', 'malicious pickle',
                 'bad IDX folder', 'empty folder', 'missing file']
MODEL_CASES = ['truncated', 'not a zip', 'empty', 'no arrays', 'wrong shapes', 'NaN weights',
               'inf weights', 'object arrays', 'a directory']
IMAGE_CASES = ['not an image', 'missing image', 'a directory']
FOLDER_CASES = ['under a file', 'cannot be created']
CHECKPOINT_CASES = ['truncated checkpoint', 'not a checkpoint']

CASES = ([('dataset', case) for case in DATASET_CASES]
         + [(use, case) for use in ('--predict', '--evaluate') for case in MODEL_CASES]
         + [('image', case) for case in IMAGE_CASES]
         + [('output folder', case) for case in FOLDER_CASES]
         + [('--resume', case) for case in CHECKPOINT_CASES])


def prepare(script, kind_of_input, case, base):
    """Write the bad input of one case; return (command-line arguments, name the error must show)."""
    kind, model_name = SCRIPTS[script]
    folder = base / ('%s-%s-%s' % (script, kind_of_input, case)).replace(' ', '_').replace(
        '/', '_')
    folder.mkdir()
    output = folder / 'out'
    output.mkdir()
    common = ['--output-dir', str(output), '--no-plot', '--quiet']
    if kind_of_input == 'dataset':
        path = bad_dataset(folder / 'data', case)
        return ['--dataset', str(path)] + common, path.name
    if kind_of_input in ('--predict', '--evaluate'):
        broken_model_files(kind, folder)[case](output / model_name)
        return ['--dataset', str(SAMPLE), kind_of_input] + common, model_name
    if kind_of_input == 'image':
        valid_model_file(kind, output / model_name)
        image = folder / 'digit.png'
        if case == 'not an image':
            image.write_text('not a picture\n')
        elif case == 'a directory':
            image.mkdir()
        return ['--dataset', str(SAMPLE), '--predict', str(image)] + common, image.name
    if kind_of_input == 'output folder':
        if case == 'under a file':
            (folder / 'a_file').write_text('')
            target = folder / 'a_file' / 'results'
        else:
            target = '/proc/no_such_folder/results'
        return ['--dataset', str(SAMPLE), '--output-dir', str(target), '--no-plot', '--quiet'], \
            os.path.basename(os.path.dirname(str(target)))
    if kind_of_input == '--resume':
        # The checkpoint of the script's first training loop.
        checkpoint = output / ({'SdA': 'SdA_pretrained', 'dA': 'dA_corruption_0',
                                'DBN': 'DBN_pretrained'}.get(
            script, model_name[:-len('.npz')]) + '.checkpoint.npz')
        if case == 'truncated checkpoint':
            valid = valid_model_file(kind, folder / 'valid.npz')
            checkpoint.write_bytes(valid.read_bytes()[:500])
        else:
            valid_model_file(kind, checkpoint)      # a model file, not a checkpoint
        return ['--dataset', str(SAMPLE), '--quick', '--resume'] + common, checkpoint.name
    raise ValueError(kind_of_input)


def run_script(script, arguments):
    return subprocess.run([sys.executable, str(REPO / 'code' / (script + '.py'))] + arguments,
                          capture_output=True, text=True, timeout=600, cwd=str(REPO))


@pytest.fixture(scope='module')
def outcomes(request, tmp_path_factory):
    """Run every selected case's command once, several at a time: {(script, kind, case): ...}."""
    selected = [item.callspec.params for item in request.session.items
                if item.module.__name__ == __name__ and hasattr(item, 'callspec')]
    base = tmp_path_factory.mktemp('bad_input')
    prepared = {}
    for params in selected:
        key = (params['script'],) + params['use_case']
        prepared[key] = prepare(params['script'], *params['use_case'], base)

    def run(key):
        arguments, name = prepared[key]
        return key, (run_script(key[0], arguments), name)

    workers = min(8, 2 * (os.cpu_count() or 1))
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        return dict(pool.map(run, prepared))


def matrix():
    """Every script x every case; each case runs in the fast tier for one script (in turn).

    The fast tier thus meets every kind of bad input once (37 runs, under a
    minute); ``pytest -m slow`` runs the rest of the matrix.
    """
    scripts = sorted(SCRIPTS)
    for script in scripts:
        for number, use_case in enumerate(CASES):
            marks = () if number % len(scripts) == scripts.index(script) else pytest.mark.slow
            yield pytest.param(script, use_case, marks=marks, id='%s-%s: %s' % (
                (script,) + use_case))


@pytest.mark.parametrize('script, use_case', list(matrix()))
def test_bad_input_gives_one_line_naming_the_file_and_exit_2(outcomes, script, use_case,
                                                               tmp_path_factory):
    done, name = outcomes[(script,) + use_case]
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert 'Traceback' not in done.stderr, done.stderr
    assert done.returncode == 2, (done.returncode, done.stderr)
    errors = [line for line in lines if line.startswith('error: ')]
    assert len(errors) == len(lines) == 1, done.stderr
    assert name in errors[0], (name, errors[0])
    if use_case == ('dataset', 'malicious pickle'):
        assert 'refusing' in errors[0]
        assert not list(tmp_path_factory.getbasetemp().rglob('PAYLOAD_RAN'))
