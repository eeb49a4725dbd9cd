"""Skip-gram with negative sampling: the text's pairs, the noise table, the gradient, learning."""
import subprocess
import sys

import numpy
import pytest

from dltutorials.support.engine import theano

from conftest import REPO
from dltutorials.word2vec import (Embeddings, SkipGram, WordVocabulary, build_word2vec_function,
                                  keep_probabilities, load_word2vec, skipgram_pairs, tokenize,
                                  train_word2vec, unigram_table)

floatX = theano.config.floatX


def test_tokenize_keeps_words_and_inner_apostrophes():
    assert tokenize("Thou art a KING, I'll warrant--'tis true.\nO Romeo!") == [
        'thou', 'art', 'a', 'king', "i'll", 'warrant', 'tis', 'true', 'o', 'romeo']


def test_the_vocabulary_keeps_words_seen_min_count_times_most_frequent_first():
    vocabulary = WordVocabulary('b a b c b a d'.split(), min_count=2)
    assert vocabulary.words == ['b', 'a'] and list(vocabulary.counts) == [3, 2]
    assert list(vocabulary.encode('a c b z'.split())) == [1, 0]


def test_the_noise_table_follows_the_unigram_distribution_to_the_three_quarters():
    counts = numpy.array([5000, 1200, 300, 40, 7, 1])
    size = 10 ** 6
    table = unigram_table(counts, table_size=size)
    assert len(table) == size and table.dtype == numpy.int32
    expected = counts ** 0.75 / numpy.sum(counts ** 0.75)
    shares = numpy.bincount(table, minlength=len(counts)) / size
    numpy.testing.assert_allclose(shares, expected, atol=1.0 / size)
    # The power flattens: the rarest word gets more than its frequency.
    assert shares[-1] > counts[-1] / counts.sum()


def test_frequent_words_are_kept_with_word2vecs_probability():
    counts = numpy.array([10000, 100, 1])
    keep = keep_probabilities(counts, 1e-3)
    f = counts / counts.sum()
    numpy.testing.assert_allclose(keep[0], numpy.sqrt(1e-3 / f[0]) + 1e-3 / f[0])
    assert keep[0] < 0.5 and keep[2] == 1.0
    assert numpy.all(keep_probabilities(counts, 0) == 1)


def test_pairs_are_words_within_the_window_nearer_ones_more_often():
    ids = numpy.arange(2000, dtype=numpy.int32)      # all distinct: the distance is the difference
    pairs = skipgram_pairs(ids, window=3, keep=numpy.ones(2000), rng=numpy.random.RandomState(0))
    distance = numpy.abs(pairs[:, 0] - pairs[:, 1])
    assert distance.min() == 1 and distance.max() == 3
    counts = numpy.bincount(distance)[1:]
    # P(reach >= d) = (3 - d + 1) / 3: contexts at distance 1, 2, 3 in the ratio 3 : 2 : 1.
    numpy.testing.assert_allclose(counts / counts[0], [1, 2 / 3, 1 / 3], atol=0.05)
    # Both directions, and shuffled.
    assert numpy.mean(pairs[:, 1] > pairs[:, 0]) == pytest.approx(0.5, abs=0.02)
    assert not numpy.all(numpy.diff(pairs[:, 0]) >= 0)


def loss_of(W_in, W_out, centres, contexts, negatives):
    """The minibatch's summed loss, in numpy (float64)."""
    def log_sigmoid(x):
        return -numpy.logaddexp(0, -x)
    v = W_in[centres]
    positive = log_sigmoid(numpy.sum(W_out[contexts] * v, axis=1))
    negative = log_sigmoid(-numpy.einsum('bkd,bd->bk', W_out[negatives], v)).sum(axis=1)
    return -numpy.sum(positive + negative)


def test_one_step_moves_the_rows_down_the_finite_difference_gradient():
    rng = numpy.random.RandomState(1)
    model = SkipGram(rng, n_words=6, n_dims=4)
    model.W_out.set_value(rng.normal(0, 0.5, (6, 4)).astype(floatX))
    # Word 2 is the centre of two pairs and a negative twice: its steps must add up.
    pairs = numpy.array([[2, 0], [2, 1], [3, 2]], dtype=numpy.int32)
    negatives = numpy.array([[4, 2], [5, 5], [2, 0]], dtype=numpy.int32)
    W_in, W_out = (p.get_value().astype(numpy.float64) for p in model.params)
    train_fn = build_word2vec_function(model, theano.shared(pairs), theano.shared(negatives),
                                       batch_size=3, learning_rate=1.0, total_steps=10 ** 9)
    cost = train_fn(0)
    assert cost == pytest.approx(loss_of(W_in, W_out, pairs[:, 0], pairs[:, 1], negatives) / 3,
                                 rel=1e-5)

    def numeric_gradient(matrix, which):
        gradient = numpy.zeros_like(matrix)
        for position in numpy.ndindex(*matrix.shape):
            for sign in (1, -1):
                moved = matrix.copy()
                moved[position] += sign * 1e-5
                args = (moved, W_out) if which == 'in' else (W_in, moved)
                gradient[position] += sign * loss_of(*args, pairs[:, 0], pairs[:, 1],
                                                     negatives) / 2e-5
        return gradient
    for matrix, shared, which in ((W_in, model.W_in, 'in'), (W_out, model.W_out, 'out')):
        step = matrix - shared.get_value().astype(numpy.float64)      # the step of rate 1
        numpy.testing.assert_allclose(step, numeric_gradient(matrix, which), rtol=2e-3,
                                      atol=2e-5)


def word(prefix, k):
    """A word of letters only (the tokenizer drops digits): word('a', 3) = 'aad'."""
    return prefix + 'abcdefghijklmnopqrstuvwxyz'[k // 26] + 'abcdefghijklmnopqrstuvwxyz'[k % 26]


def planted_corpus(n_pairs=6, length=30000, seed=0):
    """Sentences 'x_k {a_k or b_k} y_k' among noise words: a_k and b_k share their contexts."""
    rng = numpy.random.RandomState(seed)
    words = []
    while len(words) < length:
        k = rng.randint(n_pairs)
        words += [word('x', k), word('a' if rng.rand() < 0.5 else 'b', k), word('y', k)]
        words += [word('noise', rng.randint(40)) for _ in range(rng.randint(3, 7))]
    return ' '.join(words)


def test_words_with_planted_shared_contexts_become_each_others_nearest(tmp_path):
    corpus = tmp_path / 'planted.txt'
    corpus.write_text(planted_corpus())
    # A vocabulary of 58 words: small minibatches, or each row's steps pile up.
    result = train_word2vec(dataset=str(corpus), n_dims=20, window=2, min_count=1, subsample=0,
                            batch_size=16, n_epochs=3, neighbours=(), verbose=False, seed=3)
    embeddings = result['embeddings']
    for k in range(6):
        assert embeddings.nearest(word('a', k), 1)[0][0] == word('b', k)
        assert embeddings.nearest(word('b', k), 1)[0][0] == word('a', k)
    assert result['costs'][-1] < result['costs'][0]


def test_embeddings_are_saved_loadable_and_written_as_text(tmp_path):
    corpus = tmp_path / 'planted.txt'
    corpus.write_text(planted_corpus(length=3000))
    from dltutorials.support.runs import run_options
    with run_options(output_dir=str(tmp_path / 'out')):
        result = train_word2vec(dataset=str(corpus), n_dims=8, min_count=1, n_epochs=1,
                                batch_size=16, neighbours=('aaa', 'missing'), verbose=False)
    assert set(result['neighbours']) == {'aaa'} and len(result['neighbours']['aaa']) == 8
    loaded = load_word2vec(result['model_file'])
    assert loaded.words == result['embeddings'].words
    numpy.testing.assert_array_equal(loaded.vectors, result['embeddings'].vectors)
    lines = (tmp_path / 'out' / 'embeddings.txt').read_text().splitlines()
    assert lines[0] == '%d 8' % len(loaded.words)
    word, *values = lines[1].split()
    assert word == loaded.words[0]
    numpy.testing.assert_allclose(numpy.array(values, dtype=float), loaded.vectors[0], atol=1e-6)
    words, points = loaded.projection(n_words=10)
    assert len(words) == 10 and points.shape == (10, 2)


def test_nearest_is_by_cosine_and_never_the_word_itself():
    embeddings = Embeddings(['a', 'b', 'c'], [[1.0, 0.0], [10.0, 1.0], [0.0, 1.0]])
    assert [word for word, _ in embeddings.nearest('a', 2)] == ['b', 'c']
    assert embeddings.nearest('a', 1)[0][1] == pytest.approx(10 / numpy.sqrt(101))


def run_script(*arguments, cwd):
    return subprocess.run([sys.executable, str(REPO / 'code' / 'word2vec.py')] + list(arguments),
                          capture_output=True, text=True, timeout=600, cwd=str(cwd))


def test_quick_runs_the_whole_script_in_seconds(tmp_path):
    done = run_script('--quick', '--dataset', str(REPO / 'data' / 'tinyshakespeare_excerpt.txt'),
                      '--output-dir', 'out', cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert 'Training word2vec, epoch 1, cost' in done.stderr
    for name in ('word2vec.npz', 'embeddings.txt', 'word2vec_map.png'):
        assert (tmp_path / 'out' / name).exists(), name


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    (tmp_path / 'empty.txt').write_text('  \n')
    (tmp_path / 'short.txt').write_text('to be or not to be')
    for arguments, message in (
            (['--dataset', 'empty.txt'], 'empty.txt: the file is empty'),
            (['--dataset', 'short.txt'], 'short.txt: 6 words, 0 of them seen 5 times or more: '
                                         'too few to learn embeddings'),
            (['--dataset', 'missing.txt'], 'missing.txt: no such file'),
            (['--subsample', '-1'], 'argument --subsample: must be a number >= 0')):
        done = run_script(*arguments, cwd=tmp_path)
        assert done.returncode == 2 and 'Traceback' not in done.stderr, done.stderr[-2000:]
        assert message in done.stderr.strip().splitlines()[-1]
