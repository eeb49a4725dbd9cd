"""The data pipeline: formats, names, downloads, the restricted unpickler, bad input."""
import gzip
import hashlib
import logging
import os
import pickle

import numpy
import pytest

from conftest import RunsCode, make_digits, write_idx, write_idx_folder, write_pkl_gz
from dltutorials import data_loading
from dltutorials.data_loading import load_data
from dltutorials.support import datasets
from dltutorials.support.datasets import (IDX_FILES, download, load_arrays, read_images,
                                          resolve_dataset)
from dltutorials.support.errors import DatasetError, DownloadError


# ---------------------------------------------------------------- formats

def test_pkl_gz_round_trip(tiny_pkl, tiny_splits):
    loaded = load_arrays(tiny_pkl)
    for (x, y), (x0, y0) in zip(loaded, tiny_splits):
        numpy.testing.assert_array_equal(x, x0)
        numpy.testing.assert_array_equal(y, y0)
        assert y.dtype == numpy.int64


def test_python2_style_pickle_with_int32_labels_loads(tmp_path, tiny_splits):
    # Protocol 0, the oldest format, with int32 labels: the original file's kind of pickle.
    splits = tuple((x, y.astype(numpy.int32)) for x, y in tiny_splits)
    path = write_pkl_gz(tmp_path / 'old.pkl.gz', splits, protocol=0)
    (train_x, train_y), _, _ = load_arrays(path)
    assert train_x.shape == (300, 784) and train_y.dtype == numpy.int64


def test_a_protocol_5_pickle_of_plain_arrays_loads(tmp_path, tiny_splits):
    # pickle.dump's default protocol since Python 3.8: arrays rebuilt from buffers.
    import pickle
    path = write_pkl_gz(tmp_path / 'new.pkl.gz', tiny_splits, protocol=5)
    assert pickle.HIGHEST_PROTOCOL >= 5
    for (x, y), (x0, y0) in zip(load_arrays(path), tiny_splits):
        numpy.testing.assert_array_equal(x, x0)
        numpy.testing.assert_array_equal(y, y0)


def test_a_protocol_5_pickle_of_python_objects_is_still_refused(tmp_path, tiny_splits):
    (train_x, train_y), valid, test = tiny_splits
    objects = numpy.array([print] * len(train_y), dtype=object)
    path = write_pkl_gz(tmp_path / 'obj.pkl.gz', ((train_x, objects), valid, test), protocol=5)
    with pytest.raises(DatasetError, match='refusing to load builtins.print'):
        load_arrays(path)


def test_idx_folder_is_split_like_the_tutorial(tmp_path):
    rng = numpy.random.RandomState(0)
    train = rng.randint(0, 256, (21000, 28, 28)), rng.randint(0, 10, 21000)
    test = rng.randint(0, 256, (50, 28, 28)), rng.randint(0, 10, 50)
    folder = write_idx_folder(tmp_path / 'idx', train, test)
    (tx, ty), (vx, vy), (sx, sy) = load_arrays(folder)
    assert (len(tx), len(vx), len(sx)) == (11000, 10000, 50)   # the last 10,000 validate
    numpy.testing.assert_allclose(vx[-1], train[0][-1].reshape(784) / 255.0, rtol=1e-6)
    numpy.testing.assert_array_equal(vy, train[1][11000:])
    assert tx.dtype == numpy.float32 and 0 <= tx.min() and tx.max() <= 1


def test_small_idx_folder_keeps_a_seventh_for_validation(tmp_path):
    rng = numpy.random.RandomState(0)
    train = rng.randint(0, 256, (700, 28, 28)), rng.randint(0, 10, 700)
    folder = write_idx_folder(tmp_path / 'idx', train, train)
    assert [len(x) for x, _ in load_arrays(folder)] == [600, 100, 700]


def test_idx_and_pickle_versions_of_the_shared_digits_agree(shared_data):
    from_pickle = load_arrays(shared_data / 'mnist_8k.pkl.gz')
    from_idx = load_arrays(shared_data / 'mnist_8k_idx')
    for (x1, y1), (x2, y2) in zip(from_pickle, from_idx):
        numpy.testing.assert_allclose(x1, x2, atol=1e-6)
        numpy.testing.assert_array_equal(y1, y2)


def test_load_data_gives_floatx_shared_x_and_int32_y(tiny_pkl):
    from dltutorials.support.engine import theano
    datasets = load_data(tiny_pkl)
    assert len(datasets) == 3
    train_x, train_y = datasets[0]
    assert train_x.get_value().dtype == theano.config.floatX
    assert train_y.dtype == 'int32'
    assert train_y.eval().shape == (300,)


def test_minibatch_slices_include_the_partial_last_batch():
    data = numpy.arange(10)
    assert list(data_loading.minibatch(data, 3, 3)) == [9]
    assert list(data_loading.minibatch(data, 1, 4)) == [4, 5, 6, 7]


# ---------------------------------------------------------------- bad input

def bad_case(tmp_path, splits):
    return write_pkl_gz(tmp_path / 'bad.pkl.gz', splits)


def ok(n=10, seed=0):
    return make_digits(n, seed)


@pytest.mark.parametrize('make_splits, message', [
    (lambda: (ok(), ok()), 'expected 3 splits'),
    (lambda: (ok(), ok(), (ok()[0],)), 'expected a pair'),
    (lambda: (ok(), ok(), ([1, 2], [1, 2])), 'must be numpy arrays'),
    (lambda: (ok(), (ok()[0][:, :700], ok()[1]), ok()), 'images must be N x 784'),
    (lambda: (ok(), (ok()[0][:0], ok()[1][:0]), ok()), 'N > 0'),
    (lambda: (ok(), ok(), (ok()[0] * 255, ok()[1])), 'must lie in [0, 1]'),
    (lambda: (ok(), ok(), ((ok()[0] * 255).astype('uint8'), ok()[1])), 'must be floats'),
    (lambda: ((numpy.full((10, 784), numpy.nan, 'float32'), ok()[1]), ok(), ok()), 'NaN'),
    (lambda: (ok(), ok(), (ok()[0], ok()[1].astype('float32'))), 'vector of integers'),
    (lambda: (ok(), ok(), (ok()[0], ok()[1] + 10)), 'labels must lie in 0..9'),
    (lambda: (ok(), ok(), (ok()[0], ok()[1][:5])), '10 images but 5 labels'),
])
def test_malformed_splits_are_refused_with_the_file_named(tmp_path, make_splits, message):
    path = bad_case(tmp_path, make_splits())
    with pytest.raises(DatasetError) as err:
        load_arrays(path)
    assert message in str(err.value)
    assert str(path) in str(err.value)
    assert '\n' not in str(err.value)


def test_not_gzip_is_refused(tmp_path):
    path = tmp_path / 'plain.pkl.gz'
    path.write_bytes(pickle.dumps(ok()))
    with pytest.raises(DatasetError, match='not a readable gzip file'):
        load_arrays(path)


def test_truncated_gzip_is_refused(tmp_path, tiny_pkl):
    path = tmp_path / 'cut.pkl.gz'
    path.write_bytes(tiny_pkl.read_bytes()[:5000])
    with pytest.raises(DatasetError, match='cut.pkl.gz'):
        load_arrays(path)


def test_missing_file_is_refused():
    with pytest.raises(DatasetError, match='no such file or folder'):
        load_arrays('/no/such/mnist.pkl.gz')


def test_idx_folder_with_missing_file_is_refused(tmp_path):
    folder = write_idx_folder(tmp_path / 'idx', (numpy.zeros((70, 28, 28)), numpy.zeros(70)),
                              (numpy.zeros((5, 28, 28)), numpy.zeros(5)))
    (folder / IDX_FILES[3]).unlink()
    with pytest.raises(DatasetError, match='missing IDX file'):
        load_arrays(folder)


@pytest.mark.parametrize('corrupt, message', [
    (lambda raw: raw[:-10], 'file holds'),                   # truncated data
    (lambda raw: b'\0\0\x0d' + raw[3:], 'not an IDX file'),  # float type code
    (lambda raw: raw[:6], 'truncated IDX header'),
])
def test_corrupt_idx_files_are_refused(tmp_path, corrupt, message):
    folder = write_idx_folder(tmp_path / 'idx', (numpy.zeros((70, 28, 28)), numpy.zeros(70)),
                              (numpy.zeros((5, 28, 28)), numpy.zeros(5)))
    target = folder / IDX_FILES[0]
    raw = gzip.decompress(target.read_bytes())
    target.write_bytes(gzip.compress(corrupt(raw)))
    with pytest.raises(DatasetError, match=message):
        load_arrays(folder)


def test_idx_images_of_the_wrong_size_are_refused(tmp_path):
    folder = write_idx_folder(tmp_path / 'idx', (numpy.zeros((70, 28, 28)), numpy.zeros(70)),
                              (numpy.zeros((5, 28, 28)), numpy.zeros(5)))
    write_idx(folder / IDX_FILES[0], numpy.zeros((70, 32, 32)))
    with pytest.raises(DatasetError, match='32 x 32 pixels'):
        load_arrays(folder)


# ---------------------------------------------------------------- restricted unpickler

def test_pickle_that_calls_a_function_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / 'pwned'
    path = write_pkl_gz(tmp_path / 'evil.pkl.gz', (ok(), ok(), RunsCode(marker)))
    with pytest.raises(DatasetError, match=r'refusing to load (posix|os)\.system'):
        load_arrays(path)
    assert not marker.exists()


def test_pickle_of_another_class_is_refused(tmp_path):
    import collections
    path = write_pkl_gz(tmp_path / 'odd.pkl.gz', collections.OrderedDict(a=1))
    with pytest.raises(DatasetError, match='collections.OrderedDict'):
        load_arrays(path)


def test_bytes_in_a_protocol_2_pickle_load(tmp_path):
    # Python 3 writes bytes in protocol 2 as _codecs.encode(str, 'latin1').
    path = write_pkl_gz(tmp_path / 'b.pkl.gz', (b'\x00\xff', 'text'))
    with pytest.raises(DatasetError, match='expected 3 splits'):   # loads, then fails validation
        load_arrays(path)
    assert datasets.read_pickle_gz(path) == (b'\x00\xff', 'text')


# ---------------------------------------------------------------- names and downloads

def serve(tmp_path, content, name):
    """A file:// URL holding ``content``: the download code path without a network."""
    source = tmp_path / 'server'
    source.mkdir(exist_ok=True)
    (source / name).write_bytes(content)
    return (source / name).as_uri()


def test_download_verifies_and_writes_atomically(tmp_path, capsys):
    content = b'x' * 200000
    url = serve(tmp_path, content, 'file.bin')
    target = download([url], tmp_path / 'cache' / 'file.bin', hashlib.md5(content).hexdigest())
    assert target.read_bytes() == content
    assert os.listdir(tmp_path / 'cache') == ['file.bin']       # no partial left behind
    assert 'downloading' in capsys.readouterr().err


def test_download_with_a_bad_checksum_leaves_nothing_and_tries_the_next_mirror(tmp_path):
    good = b'good data'
    bad_url = serve(tmp_path, b'tampered', 'bad.bin')
    good_url = serve(tmp_path, good, 'good.bin')
    target = tmp_path / 'cache' / 'f.bin'
    with pytest.raises(DownloadError, match='checksum'):
        download([bad_url], target, hashlib.md5(good).hexdigest())
    assert os.listdir(tmp_path / 'cache') == []
    download([bad_url, good_url], target, hashlib.md5(good).hexdigest())
    assert target.read_bytes() == good


def test_named_mnist_is_downloaded_into_the_data_dir(tmp_path, monkeypatch, tiny_pkl):
    content = tiny_pkl.read_bytes()
    monkeypatch.setattr(datasets, 'MNIST_PKL_URLS', (serve(tmp_path, content, 'm.pkl.gz'),))
    monkeypatch.setattr(datasets, 'MNIST_PKL_MD5', hashlib.md5(content).hexdigest())
    data_dir = tmp_path / 'data'
    assert resolve_dataset('mnist.pkl.gz', data_dir) == data_dir / 'mnist.pkl.gz'
    assert len(load_arrays('mnist.pkl.gz', data_dir)[0][0]) == 300    # cached now


def test_offline_mnist_falls_back_to_the_shipped_sample_and_says_so(tmp_path, monkeypatch,
                                                                     tiny_pkl, caplog):
    monkeypatch.setattr(datasets, 'MNIST_PKL_URLS', ((tmp_path / 'nowhere').as_uri(),))
    (tmp_path / datasets.SAMPLE_FILE).write_bytes(tiny_pkl.read_bytes())
    with caplog.at_level(logging.WARNING):
        path = resolve_dataset('mnist.pkl.gz', tmp_path)
    assert path == tmp_path / datasets.SAMPLE_FILE
    assert 'could not download mnist.pkl.gz' in caplog.text
    assert 'sample' in caplog.text


def test_fashion_mnist_name_finds_the_system_folder(tmp_path, monkeypatch):
    system = write_idx_folder(tmp_path / 'system', (numpy.zeros((70, 28, 28)), numpy.zeros(70)),
                              (numpy.zeros((5, 28, 28)), numpy.zeros(5)))
    monkeypatch.setattr(datasets, 'SYSTEM_FASHION_DIR', system)
    assert resolve_dataset('fashion-mnist', tmp_path / 'data') == system


def test_fashion_mnist_offline_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, 'SYSTEM_FASHION_DIR', tmp_path / 'absent')
    monkeypatch.setattr(datasets, 'FASHION_IDX_MIRRORS', ((tmp_path / 'x').as_uri() + '/',))
    with pytest.raises(DownloadError, match='dataset-fashion-mnist'):
        resolve_dataset('fashion-mnist', tmp_path / 'data')


def test_the_shipped_sample_is_real_mnist():
    (train_x, train_y), valid, test = load_arrays(datasets.DATA_DIR /
                                                  datasets.SAMPLE_FILE)
    assert [len(train_x), len(valid[0]), len(test[0])] == [6000, 1000, 1000]
    assert sorted(set(train_y.tolist())) == list(range(10))


# ---------------------------------------------------------------- user images

def test_read_images_scales_resizes_and_inverts(tmp_path):
    from PIL import Image
    dark_on_white = numpy.full((56, 56), 255, numpy.uint8)
    dark_on_white[10:46, 26:30] = 0                   # a black "1" on white paper
    Image.fromarray(dark_on_white).save(tmp_path / 'one.png')
    x = read_images([tmp_path / 'one.png'])
    assert x.shape == (1, 784) and x.dtype == numpy.float32
    image = x.reshape(28, 28)
    assert image[14, 14] > 0.9 and image[0, 0] < 0.1     # now light on dark, like MNIST


def test_read_images_refuses_non_images(tmp_path):
    (tmp_path / 'notes.png').write_text('hello')
    with pytest.raises(DatasetError, match='not a readable image'):
        read_images([tmp_path / 'notes.png'])
