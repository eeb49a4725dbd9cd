"""Shared fixtures: tiny learnable datasets in every format the loader reads."""
import gzip
import os
import pickle
import struct
from pathlib import Path

import numpy
import pytest


def worker_engine_flags(flags=''):
    """``flags`` for THEANO_FLAGS / PYTENSOR_FLAGS, led by this test worker's own compile folder.

    pytest.ini runs the test files in parallel processes (pytest-xdist).  With
    one compile folder for both (tried, with Theano's compile lock looked at
    every 0.05 s instead of its sleeps of 5 to 10 s), Theano's module cache
    failed six tests: one process's clean-up deleted a module another had
    loaded, two processes added the same key to an entry (an assertion), and
    the lock's waiting messages reached the scripts' one-line errors.  And it
    was slower (926 s against 809 s on 2 cores): every process reads the keys
    of all the modules in its folder when it starts, and one folder held both
    workers' modules.  So each worker compiles into a folder of its own
    (beside the usual one, kept for the next run); outside xdist, ``flags``
    as given.  Later flags win, so a compile folder named in ``flags`` stays.
    """
    worker = os.environ.get('PYTEST_XDIST_WORKER')
    if not worker:
        return flags
    own_folder = ('compiledir_format=compiledir_%%(short_platform)s-%%(processor)s-'
                  '%%(python_version)s-%%(python_bitwidth)s-%s' % worker)
    return ','.join(part for part in (own_folder, flags) if part)


def add_worker_compile_folder(environ):
    """``environ`` (a mapping) with its engine flags led by :func:`worker_engine_flags`."""
    for variable in ('THEANO_FLAGS', 'PYTENSOR_FLAGS'):
        flags = worker_engine_flags(environ.get(variable, ''))
        if flags:
            environ[variable] = flags
    return environ


# Before the engine is imported (here and in every process a test starts).
add_worker_compile_folder(os.environ)

import dltutorials  # noqa: E402,F401  (sets Theano's defaults before any test imports Theano)


def one_thread_per_child(environ, cores=None):
    """``environ`` with the BLAS and OpenMP of the processes tests start on one thread each.

    When pytest.ini's ``-n auto`` runs as many test processes as there are
    cores, each script a test starts would otherwise take a thread per core
    too: two children of two threads on 2 cores, whose OpenBLAS threads wait
    for each other.  Measured (test_robust_runs.py, 2 workers, warm cache):
    166-168 s as they were, 131-148 s with one thread.  Set after the engine
    is imported, so this process's own BLAS keeps its threads (the tests that
    split work over them still run); the tests that need threads in a child
    (OpenMP with numpy's BLAS) set ``OMP_NUM_THREADS`` there themselves.  A
    user's settings stay.
    """
    workers = int(environ.get('PYTEST_XDIST_WORKER_COUNT', '0'))
    if workers and workers >= (cores or os.cpu_count() or 1):
        for variable in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS'):
            environ.setdefault(variable, '1')
    return environ


one_thread_per_child(os.environ)

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / 'shared' / 'data'


def make_digits(n, seed=0):
    """``n`` fake 28 x 28 'digits': class k lights up row block k, plus noise.

    Returns float32 x (n, 784) in [0, 1] and int64 y (n,): linearly separable,
    so a logistic regression learns it in a few epochs.
    """
    rng = numpy.random.RandomState(seed)
    y = rng.randint(0, 10, size=n).astype(numpy.int64)
    images = rng.uniform(0, 0.3, size=(n, 28, 28)).astype(numpy.float32)
    for i, label in enumerate(y):
        images[i, 2 * label + 4: 2 * label + 6, 4:24] = 1.0
    return images.reshape(n, 784), y


@pytest.fixture(scope='session')
def tiny_splits():
    return make_digits(300, seed=1), make_digits(100, seed=2), make_digits(100, seed=3)


class RunsCode:
    """A pickle payload that, if unpickled naively, creates the file ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, ('touch %s' % self.marker,))


def write_pkl_gz(path, obj, protocol=2):
    with gzip.open(path, 'wb') as stream:
        pickle.dump(obj, stream, protocol=protocol)
    return path


@pytest.fixture(scope='session')
def tiny_pkl(tmp_path_factory, tiny_splits):
    return write_pkl_gz(tmp_path_factory.mktemp('data') / 'tiny.pkl.gz', tiny_splits)


@pytest.fixture(scope='session')
def small_sample(tmp_path_factory):
    """The shipped real digits cut to 1,000 / 200 / 200 (a .pkl.gz), for the GAN's runs.

    An epoch of the fully connected GAN over all 6,000 training digits takes
    2.6 s on 2 cores; the tests that run it only need an epoch that is a few
    steps long.
    """
    return write_sample_cut(tmp_path_factory.mktemp('data') / 'small_sample.pkl.gz',
                            (1000, 200, 200))


def write_sample_cut(path, sizes):
    """Write the first ``sizes`` (train, valid, test) of the shipped real digits to ``path``."""
    with gzip.open(REPO / 'data' / 'mnist_sample.pkl.gz', 'rb') as stream:
        splits = pickle.load(stream, encoding='latin1')
    return write_pkl_gz(path, tuple((x[:n], y[:n]) for (x, y), n in zip(splits, sizes)))


def assert_same_bits(a, b):
    """``a`` and ``b`` identical: dtype, shape, values, NaN where NaN, and the sign of every zero."""
    assert a.dtype == b.dtype and a.shape == b.shape, (a.dtype, a.shape, b.dtype, b.shape)
    numpy.testing.assert_array_equal(a, b)                     # NaN where NaN
    numpy.testing.assert_array_equal(numpy.signbit(a), numpy.signbit(b))


def write_idx(path, array):
    array = numpy.asarray(array, dtype=numpy.uint8)
    header = struct.pack('>BBBB', 0, 0, 0x08, array.ndim) + struct.pack(
        '>%dI' % array.ndim, *array.shape)
    with gzip.open(path, 'wb') as stream:
        stream.write(header + array.tobytes())


def write_idx_folder(folder, train, test):
    """Write (images uint8 (n, 28, 28), labels) pairs as the four IDX files."""
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, (images, labels) in (('train', train), ('t10k', test)):
        write_idx(folder / ('%s-images-idx3-ubyte.gz' % prefix), images)
        write_idx(folder / ('%s-labels-idx1-ubyte.gz' % prefix), labels)
    return folder


@pytest.fixture
def shared_data():
    """The real data beside the repository, or a clean skip on a fresh clone."""
    if not SHARED_DATA.is_dir():
        pytest.skip('../shared/data is not present')
    return SHARED_DATA


@pytest.fixture(autouse=True)
def output_dir(tmp_path):
    """Each test writes its model files and pictures into its own ``tmp_path``, not results/."""
    from dltutorials.support.runs import run_options

    with run_options(output_dir=tmp_path):
        yield tmp_path
