"""lstm.py and imdb.py: the original tutorial's API, its data format, and the script's boundary."""
import pickle
import subprocess
import sys
from collections import OrderedDict

import numpy
import pytest

from conftest import REPO
from dltutorials import imdb, lstm
from dltutorials.support.engine import T, theano
from dltutorials.support.errors import DatasetError

CODE = REPO / 'code'


def write_imdb(path, n_train=200, n_test=100, seed=0, test_labels=None):
    """An IMDB pickle in the original's format, with a planted signal.

    Two pickles, (reviews, labels) for training then for testing; a review
    is 3 to 30 word indices in 2..49, and a positive one (label 1) always
    holds word 7, a negative one word 8.
    """
    rng = numpy.random.RandomState(seed)

    def reviews(n):
        labels = [int(v) for v in rng.randint(0, 2, size=n)]
        sequences = []
        for label in labels:
            words = [int(w) for w in rng.randint(9, 50, size=rng.randint(3, 30))]
            words.insert(rng.randint(len(words)), 7 if label else 8)
            sequences.append(words)
        return sequences, labels

    train, test = reviews(n_train), reviews(n_test)
    if test_labels is not None:
        test = (test[0], test_labels(test[1]))
    with open(path, 'wb') as stream:
        pickle.dump(train, stream, protocol=2)
        pickle.dump(test, stream, protocol=2)
    return path


def test_prepare_data_pads_with_zeros_and_masks_the_real_steps():
    x, mask, labels = imdb.prepare_data([[5, 6, 7], [8], [9, 10]], [1, 0, 1])
    assert x.dtype == numpy.int64 and mask.dtype == theano.config.floatX
    numpy.testing.assert_array_equal(x, [[5, 8, 9], [6, 0, 10], [7, 0, 0]])
    numpy.testing.assert_array_equal(mask, [[1, 1, 1], [1, 0, 1], [1, 0, 0]])
    assert labels == [1, 0, 1]
    x, mask, labels = imdb.prepare_data([[5, 6, 7], [8], [9, 10]], [1, 0, 1], maxlen=3)
    assert x.shape == (2, 2) and labels == [0, 1]
    assert imdb.prepare_data([[5, 6, 7]], [1], maxlen=2) == (None, None, None)


def test_load_data_splits_off_validation_maps_rare_words_to_1_and_sorts_by_length(tmp_path):
    path = write_imdb(tmp_path / 'imdb.pkl')
    train, valid, test = imdb.load_data(str(path), n_words=20, valid_portion=0.1,
                                        rng=numpy.random.RandomState(0))
    assert (len(train[0]), len(valid[0]), len(test[0])) == (180, 20, 100)
    for sequences, labels in (train, valid, test):
        assert all(w < 20 for s in sequences for w in s) and any(1 in s for s in sequences)
        assert [len(s) for s in sequences] == sorted(len(s) for s in sequences)
        assert set(labels) == {0, 1}
        # The planted words (7, 8) are kept, and still say the label.
        assert all((7 in s) == bool(y) for s, y in zip(sequences, labels))
    short = imdb.load_data(str(path), maxlen=10)[0]
    assert all(len(s) < 10 for s in short[0]) and 0 < len(short[0]) < 180


def test_a_padded_review_is_classified_as_it_is_alone():
    options = dict(dim_proj=6, ydim=2, encoder='lstm', use_dropout=True, n_words=30)
    tparams = lstm.init_tparams(lstm.init_params(options, numpy.random.RandomState(0)))
    use_noise, x, mask, y, f_pred_prob, f_pred, cost = lstm.build_model(tparams, options)
    assert list(tparams) == ['Wemb', 'lstm_W', 'lstm_U', 'lstm_b', 'U', 'b']
    reviews = [[3, 4, 5, 6, 7], [8, 9], [10, 11, 12]]
    together = f_pred_prob(*imdb.prepare_data(reviews, [0, 1, 0])[:2])
    for k, review in enumerate(reviews):
        alone = f_pred_prob(*imdb.prepare_data([review], [0])[:2])
        numpy.testing.assert_allclose(together[k], alone[0], rtol=1e-5)
    numpy.testing.assert_allclose(together.sum(axis=1), 1, rtol=1e-5)
    # In minibatches (of 2 and 1, one padded), the same probabilities in the examples' order.
    batches = lstm.get_minibatches_idx(3, 2)
    numpy.testing.assert_allclose(lstm.pred_probs(f_pred_prob, imdb.prepare_data,
                                                  (reviews, [0, 1, 0]), batches),
                                  together, rtol=1e-5)
    # Dropout: the test graph is the same on every call; training draws masks.
    numpy.testing.assert_array_equal(f_pred_prob(*imdb.prepare_data(reviews, [0, 1, 0])[:2]),
                                     together)
    use_noise.set_value(1.)
    assert not numpy.allclose(f_pred_prob(*imdb.prepare_data(reviews, [0, 1, 0])[:2]), together)


def test_the_original_rmsprop_follows_its_formula():
    param = theano.shared(numpy.array([1.0, -2.0], dtype=theano.config.floatX), name='p')
    gradient = T.vector('g', dtype=theano.config.floatX)
    step = theano.function([gradient], [], updates=lstm.graves_rmsprop([gradient], [param]))
    p, m, r, v = numpy.array([1.0, -2.0]), numpy.zeros(2), numpy.zeros(2), numpy.zeros(2)
    for g in (numpy.array([0.5, -1.0]), numpy.array([0.2, 0.3]), numpy.array([-0.4, 0.1])):
        step(g.astype(theano.config.floatX))
        m, r = 0.95 * m + 0.05 * g, 0.95 * r + 0.05 * g ** 2
        v = 0.9 * v - 1e-4 * g / numpy.sqrt(r - m ** 2 + 1e-4)
        p = p + v
        numpy.testing.assert_allclose(param.get_value(), p, rtol=1e-5)


def test_get_minibatches_idx_covers_every_example_once():
    batches = lstm.get_minibatches_idx(10, 4, shuffle=True, rng=numpy.random.RandomState(0))
    assert [k for k, _ in batches] == [0, 1, 2]
    assert [len(b) for _, b in batches] == [4, 4, 2]
    assert sorted(numpy.concatenate([b for _, b in batches])) == list(range(10))


def test_train_lstm_learns_the_planted_word_of_imdb_style_reviews(tmp_path):
    path = write_imdb(tmp_path / 'reviews.pkl', n_train=600, n_test=200)
    train_err, valid_err, test_err = lstm.train_lstm(
        dim_proj=8, max_epochs=8, n_words=50, optimizer='adam', lrate=0.02, validFreq=-1,
        batch_size=20, valid_batch_size=100, dataset=str(path), use_dropout=False,
        verbose=False)
    assert test_err <= 0.1 and train_err <= 0.1, (train_err, valid_err, test_err)
    assert (tmp_path / 'lstm_model.npz').exists()


def test_a_schedule_changes_the_learning_rate_by_epoch(tmp_path, caplog):
    import logging
    path = write_imdb(tmp_path / 'reviews.pkl', n_train=60, n_test=20)
    caplog.set_level(logging.INFO, logger='dltutorials')
    lstm.train_sequence_classifier(dim_proj=4, max_epochs=3, n_words=50, optimizer='sgd',
                                   lrate=0.02, validFreq=-1, batch_size=20, dataset=str(path),
                                   schedule='exponential', verbose=False)
    rates = [float(record.getMessage().split()[-1]) for record in caplog.records
             if 'learning rate' in record.getMessage()]
    # PyTorch's ExponentialLR with gamma 0.95: the rate times 0.95 at each new epoch.
    assert rates == pytest.approx([0.02, 0.019, 0.01805], rel=1e-5)


def test_the_original_scripts_calls_run_from_the_code_folder(tmp_path):
    """As the original's users did: imdb.pkl in the folder, ``from lstm import ...``."""
    write_imdb(tmp_path / 'imdb.pkl')
    program = ('import sys; sys.path.insert(0, %r)\n'
               'from lstm import train_lstm, prepare_data\n'
               'errors = train_lstm(max_epochs=1, test_size=500)\n'
               'print("errors", *errors)\n' % str(CODE))
    done = subprocess.run([sys.executable, '-c', program], cwd=str(tmp_path),
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    errors = [float(v) for v in done.stdout.split('errors')[1].split()]
    assert len(errors) == 3 and all(0 <= e <= 1 for e in errors)
    assert 'Train %.4f Valid %.4f Test %.4f' % tuple(errors) in done.stderr + done.stdout
    assert (tmp_path / 'results' / 'lstm_model.npz').exists()


def test_quick_run_of_the_script_trains_saves_and_predicts(tiny_pkl, tmp_path):
    flags = ['--dataset', str(tiny_pkl), '--output-dir', str(tmp_path), '--dim-proj', '8']
    assert lstm.main(flags + ['--quick', '--quiet']) == 0
    assert (tmp_path / 'lstm_model.npz').exists() and (tmp_path / 'lstm_model_curve.png').exists()
    assert lstm.main(flags + ['--predict']) == 0
    assert not list(tmp_path.glob('*.checkpoint.npz'))


def test_augmented_epochs_train_on_new_copies_the_same_for_the_same_seed(tiny_pkl, tmp_path):
    flags = ['--dataset', str(tiny_pkl), '--dim-proj', '4', '--max-epochs', '2',
             '--validFreq', '-1', '--batch-size', '20', '--optimizer', 'adam', '--lrate', '0.01',
             '--no-plot']   # (not --quiet: it would leave the package's logger at WARNING)
    models = {}
    for name, extra in (('plain', []), ('shift', ['--augment', 'shift', 'flip']),
                        ('again', ['--augment', 'shift', 'flip'])):
        assert lstm.main(flags + extra + ['--output-dir', str(tmp_path / name)]) == 0
        with numpy.load(tmp_path / name / 'lstm_model.npz') as saved:
            models[name] = {key: saved[key] for key in saved.files}
    assert all(numpy.array_equal(models['shift'][key], models['again'][key])
               for key in models['shift'])
    assert not numpy.array_equal(models['shift']['p01_lstm_U'], models['plain']['p01_lstm_U'])


def test_augmenting_word_sequences_is_refused_in_one_line(tmp_path):
    path = write_imdb(tmp_path / 'reviews.pkl')
    done = run_script('--dataset', str(path), '--augment', 'shift',
                      '--output-dir', str(tmp_path / 'out'))
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        'error: augment: shifts and flips apply to images, and %s holds word sequences' % path]


def run_script(*arguments, cwd=None):
    return subprocess.run([sys.executable, str(CODE / 'lstm.py')] + list(arguments),
                          capture_output=True, text=True, timeout=300, cwd=cwd)


@pytest.mark.parametrize('case', ['test labels out of range', 'not a pickle', 'empty file',
                                  'missing file', 'review not a list', 'negative word'])
def test_bad_sequence_files_give_one_line_and_exit_2(case, tmp_path):
    path = tmp_path / 'reviews.pkl'
    if case == 'test labels out of range':
        write_imdb(path, test_labels=lambda labels: [5] + labels[1:])
        expected = 'a test label is 5, but the training labels are 0..1'
    elif case == 'not a pickle':
        path.write_bytes(bytes(range(256)) * 4)
        expected = 'not a valid IMDB pickle'
    elif case == 'empty file':
        path.write_bytes(b'')
        expected = 'not a readable IMDB pickle'
    elif case == 'missing file':
        expected = 'no such file'
    else:
        with open(path, 'wb') as stream:
            pickle.dump(([[3, 4], 7 if case == 'review not a list' else [2, -1]], [0, 1]), stream)
            pickle.dump(([[3, 4]], [0]), stream)
        expected = 'is not a non-empty list of word indices >= 0'
    done = run_script('--dataset', str(path), '--output-dir', str(tmp_path / 'out'))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and lines[0].startswith('error: %s' % path), done.stderr
    assert expected in lines[0], lines[0]


def test_a_pickle_that_runs_code_is_refused(tmp_path):
    from conftest import RunsCode
    path = tmp_path / 'reviews.pkl'
    with open(path, 'wb') as stream:
        pickle.dump(RunsCode(tmp_path / 'PAYLOAD_RAN'), stream)
    with pytest.raises(DatasetError, match='refusing'):
        imdb.load_data(str(path))
    assert not (tmp_path / 'PAYLOAD_RAN').exists()


@pytest.mark.parametrize('flags, message', [
    (['--optimizer', 'adamw'], 'argument --optimizer: must be one of adadelta, rmsprop, sgd'),
    (['--encoder', 'transformer'], 'argument --encoder: must be one of rnn, lstm, gru'),
    (['--validFreq', '0'], 'argument --validFreq: must be a positive integer, or -1'),
    (['--max-grad-norm', '-1'], 'argument --max-grad-norm: must be a positive number'),
    (['--schedule', 'cosine'], 'argument --schedule: must be one of constant, inverse_time'),
])
def test_bad_flags_give_one_line_and_exit_2(flags, message, tmp_path):
    done = run_script(*flags)
    assert done.returncode == 2
    assert message in done.stderr.strip().splitlines()[-1], done.stderr


def test_optimizers_are_taken_as_the_originals_functions_or_by_name():
    from dltutorials.support.errors import HyperparameterError
    with pytest.raises(HyperparameterError, match='optimizer must be one of adadelta'):
        lstm.train_lstm(optimizer=print)
    assert lstm.OPTIMIZER_FUNCTIONS['adadelta'] is lstm.adadelta
    rule = lstm.train_sequence_classifier.rules['optimizer']
    assert rule.check('optimizer', lstm.adadelta) == 'adadelta' == rule.check('optimizer',
                                                                              'adadelta')
    assert list(OrderedDict.fromkeys(lstm.OPTIMIZER_FUNCTIONS))[:3] == ['adadelta', 'rmsprop',
                                                                        'sgd']
