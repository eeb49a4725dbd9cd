"""Datasets: find, fetch, verify and read them (the plumbing under ``load_data``).

:func:`load_arrays` returns the tutorial's three splits as plain numpy
arrays, ``((train_x, train_y), (valid_x, valid_y), (test_x, test_y))``, with
``x`` float (n, 784) in [0, 1] and ``y`` int64 labels in 0..9;
:func:`dltutorials.data_loading.load_data` puts them into Theano shared
variables.  :func:`read_images` reads image files the way MNIST is drawn.

What ``dataset`` may name
-------------------------
* a tutorial-format ``.pkl.gz`` file: a gzipped pickle of
  ``((train_x, train_y), (valid_x, valid_y), (test_x, test_y))``, such as the
  original ``mnist.pkl.gz`` (50,000 / 10,000 / 10,000 digits);
* a folder holding the four standard IDX files of MNIST or Fashion-MNIST
  (``train-images-idx3-ubyte.gz`` ...); the last 10,000 training images become
  the validation set, as in the tutorial's 50k/10k split;
* a name: ``mnist.pkl.gz`` or ``mnist`` (looked for in ``data/``, else
  downloaded, verified and cached there) or ``fashion-mnist`` (``data/``, then
  ``/usr/share/datasets/fashion-mnist`` from Debian's ``dataset-fashion-mnist``
  package, then downloaded).  Offline, the MNIST names fall back to the
  8,000-digit sample shipped in ``data/``, and say so.

Nothing is trusted: pickles are read with an unpickler that builds only plain
containers and numpy arrays, and every split is checked (shapes, finite pixels
in [0, 1], integer labels in 0..9) before use.  Each problem raises a
:class:`~dltutorials.support.errors.DatasetError` whose message names the file.
"""
import gzip
import hashlib
import logging
import os
import pickle
import struct
import sys
import tempfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import numpy

from dltutorials.support.errors import DatasetError, DownloadError

logger = logging.getLogger(__name__)

#: Where named datasets are looked for and downloaded to: the repository's data/ folder.
DATA_DIR = Path(__file__).resolve().parents[2] / 'data'
#: 8,000 real MNIST digits (6,000 / 1,000 / 1,000), used when mnist.pkl.gz can't be had.
SAMPLE_FILE = 'mnist_sample.pkl.gz'
#: Where Debian's dataset-fashion-mnist package installs Fashion-MNIST.
SYSTEM_FASHION_DIR = Path('/usr/share/datasets/fashion-mnist')

N_PIXELS = 28 * 28
N_CLASSES = 10
VALID_SIZE = 10000

IDX_FILES = ('train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz',
             't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz')

# Published checksums of the files as their authors distribute them.
MNIST_PKL_MD5 = 'a02cd19f81d51c426d7ca14024243ce9'
MNIST_PKL_URLS = ('http://www.iro.umontreal.ca/~lisa/deep/data/mnist/mnist.pkl.gz',
                  'http://deeplearning.net/data/mnist/mnist.pkl.gz')
MNIST_IDX_MD5 = dict(zip(IDX_FILES, ('f68b3c2dcbeaaa9fbdd348bbdeb94873',
                                     'd53e105ee54ea40749a09fcbcd1e9432',
                                     '9fb629c4189551a2d022fa330f9573f3',
                                     'ec29112dd5afa0611ce80d1b7f02629c')))
MNIST_IDX_MIRRORS = ('https://ossci-datasets.s3.amazonaws.com/mnist/',
                     'http://yann.lecun.com/exdb/mnist/')
FASHION_IDX_MD5 = dict(zip(IDX_FILES, ('8d4fb7e6c68d591d4c3dfef9ec88bf0d',
                                       '25c81989df183df01b3e8a0aad5dffbe',
                                       'bef4ecab320f06d8554ea6380940ec79',
                                       'bb300cfdad3c16e7a12a480ee83cd310')))
FASHION_IDX_MIRRORS = ('http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/',)


# --------------------------------------------------------------------------
# Finding and fetching
# --------------------------------------------------------------------------

def md5sum(path):
    """Hex MD5 digest of the file at ``path``."""
    digest = hashlib.md5()
    with open(path, 'rb') as stream:
        for block in iter(lambda: stream.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def download(urls, destination, md5, timeout=30):
    """Fetch the first of ``urls`` whose content has checksum ``md5`` into ``destination``.

    ``md5`` None: no checksum is published for the file; the caller checks
    its content instead.

    The file is written beside ``destination`` under a temporary name and
    renamed only once verified, so an interrupted or corrupt download never
    leaves a file that looks complete.  Progress goes to stderr.

    Raises
    ------
    DownloadError
        when no URL gives a file with the right checksum; the message lists
        what went wrong with each.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    for url in urls:
        fd, partial = tempfile.mkstemp(prefix=destination.name + '.', suffix='.part',
                                       dir=destination.parent)
        try:
            with os.fdopen(fd, 'wb') as out:
                _copy_with_progress(url, out, timeout)
            found = md5sum(partial)
            if md5 is not None and found != md5:
                failures.append('%s: checksum %s, expected %s' % (url, found, md5))
                continue
            os.replace(partial, destination)
            logger.info('downloaded %s to %s (%s)', url, destination,
                        'md5 verified' if md5 else 'md5 %s' % found)
            return destination
        except (urllib.error.URLError, OSError, ValueError) as err:
            failures.append('%s: %s' % (url, getattr(err, 'reason', err)))
        finally:
            if os.path.exists(partial):
                os.remove(partial)
    raise DownloadError('could not download %s: %s' % (destination.name, '; '.join(failures)))


def _copy_with_progress(url, out, timeout):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        total = int(response.headers.get('Content-Length') or 0)
        done, shown = 0, None
        for block in iter(lambda: response.read(1 << 16), b''):
            out.write(block)
            done += len(block)
            # Every 10 % of a known size, else every megabyte.
            step = 100 * done // total // 10 if total else done >> 20
            if step != shown:
                shown = step
                sys.stderr.write('\rdownloading %s: %s' % (
                    url, '%d %%' % (100 * done // total) if total else '%d kB' % (done // 1024)))
                sys.stderr.flush()
        sys.stderr.write('\n')


def resolve_dataset(dataset, data_dir=None):
    """Return the local path for ``dataset``: a file or folder, or a known name.

    A name missing from ``data_dir`` is downloaded there (verified).  When the
    MNIST names can't be downloaded, the shipped 8,000-digit sample is used,
    with a warning.
    """
    data_dir = Path(data_dir) if data_dir is not None else DATA_DIR
    path = Path(os.path.expanduser(str(dataset)))
    if path.exists():
        return path
    name = str(dataset)
    if name == 'mnist.pkl.gz':
        return _named_mnist(data_dir / name, lambda target: download(
            MNIST_PKL_URLS, target, MNIST_PKL_MD5))
    if name == 'mnist':
        return _named_mnist(data_dir / name, lambda target: _download_idx(
            MNIST_IDX_MIRRORS, MNIST_IDX_MD5, target))
    if name == 'fashion-mnist':
        for folder in (data_dir / name, SYSTEM_FASHION_DIR):
            if _has_idx_files(folder):
                return folder
        try:
            return _download_idx(FASHION_IDX_MIRRORS, FASHION_IDX_MD5, data_dir / name)
        except DownloadError as err:
            raise DownloadError('%s (offline? apt-get install dataset-fashion-mnist, or put '
                                'the four IDX files in %s)' % (err, data_dir / name)) from None
    raise DatasetError('%s: no such file or folder (known names: mnist.pkl.gz, mnist, '
                       'fashion-mnist)' % dataset)


def _named_mnist(target, fetch):
    if target.exists() and (target.is_file() or _has_idx_files(target)):
        return target
    try:
        return fetch(target)
    except DownloadError as err:
        sample = target.parent / SAMPLE_FILE
        if not sample.exists():
            raise
        logger.warning('%s; using the 8,000-digit MNIST sample %s instead', err, sample)
        return sample


def _download_idx(mirrors, checksums, folder):
    for name, md5 in checksums.items():
        if not (folder / name).exists():
            download([mirror + name for mirror in mirrors], folder / name, md5)
    return folder


def _has_idx_files(folder):
    return all((Path(folder) / name).is_file() for name in IDX_FILES)


# --------------------------------------------------------------------------
# Reading: restricted unpickling and IDX
# --------------------------------------------------------------------------

class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that builds containers and numpy arrays, and nothing else.

    A pickle can name any importable callable and have it called while
    loading (``os.system``, say).  The tutorial's datasets need only numpy's
    array reconstruction, so anything else is refused before it is imported.
    """

    ALLOWED = frozenset([
        ('numpy', 'ndarray'), ('numpy', 'dtype'),
        ('numpy.core.multiarray', '_reconstruct'), ('numpy.core.multiarray', 'scalar'),
        ('numpy._core.multiarray', '_reconstruct'), ('numpy._core.multiarray', 'scalar'),
        # Protocol-2 pickles written by Python 3 store bytes as _codecs.encode(str, 'latin1'),
        # and empty bytes (an empty array's data) as a call to bytes().
        ('_codecs', 'encode'), ('builtins', 'bytes'), ('__builtin__', 'bytes'),
        # Protocol 5 (pickle.dump's default since Python 3.8) stores an array's
        # data as a buffer, rebuilt by frombuffer: plain bytes, never objects
        # (numpy refuses an object dtype there).
        ('numpy.core.numeric', '_frombuffer'), ('numpy._core.numeric', '_frombuffer'),
    ])

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            'refusing to load %s.%s: only plain containers and numpy arrays are allowed'
            % (module, name))


def read_pickle_gz(path):
    """Return the object in the gzipped pickle ``path``, built by :class:`RestrictedUnpickler`."""
    try:
        with gzip.open(path, 'rb') as stream:
            # latin1: the original mnist.pkl.gz is a Python 2 pickle of byte strings.
            return RestrictedUnpickler(stream, encoding='latin1').load()
    except (OSError, EOFError, zlib.error) as err:
        raise DatasetError('%s: not a readable gzip file (%s)' % (path, err)) from None
    except (pickle.UnpicklingError, AttributeError, ValueError, TypeError,
            IndexError, KeyError, struct.error) as err:
        raise DatasetError('%s: not a valid dataset pickle (%s)' % (path, err)) from None


def read_idx(path, expected_ndim):
    """Return the array stored in the gzipped IDX file ``path`` (images or labels).

    IDX: two zero bytes, a type code (0x08 = unsigned byte), the number of
    dimensions, each dimension as a big-endian 32-bit integer, then the data.
    """
    try:
        with gzip.open(path, 'rb') as stream:
            raw = stream.read()
    except (OSError, EOFError, zlib.error) as err:
        raise DatasetError('%s: not a readable gzip file (%s)' % (path, err)) from None
    if len(raw) < 4 or raw[:2] != b'\0\0' or raw[2] != 0x08 or raw[3] != expected_ndim:
        raise DatasetError('%s: not an IDX file of unsigned bytes with %d dimension(s)'
                           % (path, expected_ndim))
    header = 4 + 4 * expected_ndim
    if len(raw) < header:
        raise DatasetError('%s: truncated IDX header' % path)
    shape = struct.unpack('>%dI' % expected_ndim, raw[4:header])
    if len(raw) - header != int(numpy.prod(shape)):
        raise DatasetError('%s: header says shape %s (%d bytes), file holds %d bytes'
                           % (path, shape, int(numpy.prod(shape)), len(raw) - header))
    return numpy.frombuffer(raw, dtype=numpy.uint8, offset=header).reshape(shape)


def read_idx_folder(folder, valid_size=None):
    """Return the three splits from the four IDX files in ``folder``.

    Pixels are scaled to float32 in [0, 1], labels become int64.  The last
    ``valid_size`` training images form the validation set: 10,000 by
    default, as in the tutorial's 50k/10k split; a file of fewer than 20,000
    images keeps its last seventh instead (6,000 / 1,000 for the 7,000
    training images of the 8k sample, the split of ``mnist_8k.pkl.gz``).
    """
    folder = Path(folder)
    missing = [name for name in IDX_FILES if not (folder / name).is_file()]
    if missing:
        raise DatasetError('%s: missing IDX file(s) %s' % (folder, ', '.join(missing)))
    arrays = []
    for images_name, labels_name in (IDX_FILES[:2], IDX_FILES[2:]):
        images = read_idx(folder / images_name, 3)
        labels = read_idx(folder / labels_name, 1)
        if images.shape[1:] != (28, 28):
            raise DatasetError('%s: images are %s pixels, expected 28 x 28'
                               % (folder / images_name, ' x '.join(map(str, images.shape[1:]))))
        if len(images) != len(labels):
            raise DatasetError('%s: %d images but %d labels' % (folder, len(images), len(labels)))
        x = images.reshape(len(images), N_PIXELS).astype(numpy.float32) / numpy.float32(255)
        arrays.append((x, labels.astype(numpy.int64)))
    (train_x, train_y), test = arrays
    n_train = len(train_x)
    if valid_size is None:
        valid_size = VALID_SIZE if n_train >= 2 * VALID_SIZE else n_train // 7
    if not 0 < valid_size < n_train:
        raise DatasetError('%s: cannot hold out %d of %d training images for validation'
                           % (folder, valid_size, n_train))
    cut = n_train - valid_size
    return (train_x[:cut], train_y[:cut]), (train_x[cut:], train_y[cut:]), test


# --------------------------------------------------------------------------
# Checking and loading
# --------------------------------------------------------------------------

def validate_splits(splits, source):
    """Check that ``splits`` is three (x, y) pairs of tutorial-shaped arrays.

    Returns them as a tuple of (float x, int64 y) pairs; raises
    :class:`DatasetError` naming ``source`` and the first problem found.
    """
    if not isinstance(splits, (tuple, list)) or len(splits) != 3:
        raise DatasetError('%s: expected 3 splits (train, valid, test), found %s'
                           % (source, _describe(splits)))
    checked = []
    for split_name, pair in zip(('train', 'valid', 'test'), splits):
        where = '%s: %s split' % (source, split_name)
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise DatasetError('%s: expected a pair (x, y), found %s' % (where, _describe(pair)))
        x, y = pair
        if not isinstance(x, numpy.ndarray) or not isinstance(y, numpy.ndarray):
            raise DatasetError('%s: x and y must be numpy arrays, found %s and %s'
                               % (where, _describe(x), _describe(y)))
        if x.ndim != 2 or x.shape[1] != N_PIXELS or x.shape[0] == 0:
            raise DatasetError('%s: images must be N x %d with N > 0, found shape %s'
                               % (where, N_PIXELS, x.shape))
        if x.dtype.kind != 'f':
            raise DatasetError('%s: pixels must be floats in [0, 1], found dtype %s'
                               % (where, x.dtype))
        if not numpy.isfinite(x).all():
            raise DatasetError('%s: images contain NaN or infinite pixels' % where)
        if x.min() < 0 or x.max() > 1:
            raise DatasetError('%s: pixels must lie in [0, 1], found [%g, %g]'
                               % (where, x.min(), x.max()))
        if y.ndim != 1 or y.dtype.kind not in 'iu':
            raise DatasetError('%s: labels must be a vector of integers, found %s of shape %s'
                               % (where, y.dtype, y.shape))
        if len(y) != len(x):
            raise DatasetError('%s: %d images but %d labels' % (where, len(x), len(y)))
        if y.min() < 0 or y.max() >= N_CLASSES:
            raise DatasetError('%s: labels must lie in 0..%d, found %d..%d'
                               % (where, N_CLASSES - 1, y.min(), y.max()))
        checked.append((x, y.astype(numpy.int64, copy=False)))
    return tuple(checked)


def _describe(value):
    if isinstance(value, numpy.ndarray):
        return 'an array of shape %s' % (value.shape,)
    if isinstance(value, (tuple, list)):
        return 'a %s of length %d' % (type(value).__name__, len(value))
    return 'a %s' % type(value).__name__


def load_arrays(dataset, data_dir=None, valid_size=None):
    """Return ``((train_x, train_y), (valid_x, valid_y), (test_x, test_y))`` as numpy arrays.

    Parameters
    ----------
    dataset : str or path
        a ``.pkl.gz`` file, a folder of IDX files, or a name (see the module
        docstring).
    data_dir : path, optional
        where names are looked for and downloaded to (default: ``data/``).
    valid_size : int, optional
        for IDX folders: how many of the last training images to hold out.

    Returns
    -------
    Three (x, y) pairs: x float (n, 784) in [0, 1], y int64 (n,) in 0..9.

    Raises
    ------
    DatasetError
        missing, unreadable, unsafe or malformed data; the message names the file.
    """
    path = resolve_dataset(dataset, data_dir)
    if path.is_dir():
        splits = read_idx_folder(path, valid_size)
    else:
        splits = read_pickle_gz(path)
    splits = validate_splits(splits, path)
    logger.info('loaded %s: %s train / %s valid / %s test examples', path,
                *('{:,}'.format(len(x)) for x, _ in splits))
    return splits


def read_images(paths):
    """Return the image files ``paths`` as a float32 (n, 784) array, MNIST-style.

    Each image is turned to grey, resized to 28 x 28 if needed and scaled to
    [0, 1].  MNIST digits are light on a dark ground; an image that is mostly
    light (a dark digit on white paper) is inverted to match.
    """
    from PIL import Image, UnidentifiedImageError  # Pillow comes with matplotlib

    rows = []
    for path in paths:
        try:
            with Image.open(path) as image:
                grey = image.convert('L')
                if grey.size != (28, 28):
                    grey = grey.resize((28, 28), Image.LANCZOS)
                pixels = numpy.asarray(grey, dtype=numpy.float32) / numpy.float32(255)
        except FileNotFoundError:
            raise DatasetError('%s: no such image file' % path) from None
        except (UnidentifiedImageError, OSError) as err:
            raise DatasetError('%s: not a readable image (%s)' % (path, err)) from None
        if pixels.mean() > 0.5:
            pixels = 1 - pixels
        rows.append(pixels.reshape(N_PIXELS))
    return numpy.stack(rows)


# --------------------------------------------------------------------------
# IMDB movie reviews (the original lstm.py's data)
# --------------------------------------------------------------------------

#: The original tutorial's file: two pickles, (reviews, labels) for training, then for testing.
IMDB_URLS = ('http://www.iro.umontreal.ca/~lisa/deep/data/imdb.pkl',)
IMDB_FILE = 'imdb.pkl'


def resolve_imdb(path=IMDB_FILE, data_dir=None):
    """The local path of the IMDB pickle: ``path`` itself, else in ``data/``, else downloaded there.

    Only the bare name ``imdb.pkl`` is looked for in ``data/`` and downloaded;
    no checksum is published for the file, so :func:`read_imdb` checks its
    content.
    """
    data_dir = Path(data_dir) if data_dir is not None else DATA_DIR
    path = Path(os.path.expanduser(str(path)))
    if path.exists():
        return path
    if str(path) != IMDB_FILE:
        raise DatasetError('%s: no such file' % path)
    cached = data_dir / IMDB_FILE
    if cached.exists():
        return cached
    try:
        return download(IMDB_URLS, cached, md5=None)
    except DownloadError as err:
        raise DownloadError('%s (offline? put the original tutorial\'s imdb.pkl in %s, or '
                            'train on images read row by row: --dataset fashion-mnist)'
                            % (err, data_dir)) from None


def read_imdb(path):
    """``(train_set, test_set)`` from the IMDB pickle ``path``, each ``(sequences, labels)``.

    Sequences are lists of word indices (integers >= 0), labels integers
    >= 0; the file is read with :class:`RestrictedUnpickler` (gzipped or
    not) and checked.  Raises DatasetError naming the file.
    """
    opener = gzip.open if str(path).endswith('.gz') else open
    try:
        with opener(path, 'rb') as stream:
            unpickler = RestrictedUnpickler(stream, encoding='latin1')
            sets = [unpickler.load(), unpickler.load()]
    except (OSError, EOFError, zlib.error) as err:
        raise DatasetError('%s: not a readable IMDB pickle (%s)' % (path, err)) from None
    except (pickle.UnpicklingError, AttributeError, ValueError, TypeError,
            IndexError, KeyError, struct.error) as err:
        raise DatasetError('%s: not a valid IMDB pickle (%s)' % (path, err)) from None
    for name, split in zip(('training', 'test'), sets):
        if not (isinstance(split, (tuple, list)) and len(split) == 2
                and len(split[0]) == len(split[1]) > 0):
            raise DatasetError('%s: the %s set must be a pair (sequences, labels) of equal, '
                               'non-zero lengths' % (path, name))
        for sequence in split[0]:
            if not (isinstance(sequence, (list, tuple)) and len(sequence) > 0 and all(
                    isinstance(w, (int, numpy.integer)) and w >= 0 for w in sequence)):
                raise DatasetError('%s: a %s sequence is not a non-empty list of word '
                                   'indices >= 0: %s' % (path, name, _describe(sequence)))
        if not all(isinstance(label, (int, numpy.integer)) and label >= 0 for label in split[1]):
            raise DatasetError('%s: the %s labels must be integers >= 0' % (path, name))
    return tuple((list(split[0]), list(split[1])) for split in sets)


# --------------------------------------------------------------------------
# Text: Tiny Shakespeare, or any UTF-8 file
# --------------------------------------------------------------------------

TINY_SHAKESPEARE = 'tinyshakespeare'
TINY_SHAKESPEARE_FILE = 'tinyshakespeare.txt'
TINY_SHAKESPEARE_URLS = (
    'https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt',)
TINY_SHAKESPEARE_MD5 = '6fb458f1232090904fb40fe944165e91'
#: The first 99,843 characters of Tiny Shakespeare, shipped for offline use (see data/README).
TINY_SHAKESPEARE_EXCERPT = 'tinyshakespeare_excerpt.txt'


def resolve_text(dataset, data_dir=None):
    """The local path of a text: ``dataset`` itself, or Tiny Shakespeare by its name.

    The name ``tinyshakespeare`` is looked for in ``data_dir`` and else
    downloaded there (MD5-checked); offline, the shipped excerpt is used, with
    a warning.
    """
    data_dir = Path(data_dir) if data_dir is not None else DATA_DIR
    path = Path(os.path.expanduser(str(dataset)))
    if path.exists():
        return path
    if str(dataset) != TINY_SHAKESPEARE:
        raise DatasetError('%s: no such file (known name: %s)' % (dataset, TINY_SHAKESPEARE))
    cached = data_dir / TINY_SHAKESPEARE_FILE
    if cached.exists():
        return cached
    try:
        return download(TINY_SHAKESPEARE_URLS, cached, TINY_SHAKESPEARE_MD5)
    except DownloadError as err:
        excerpt = data_dir / TINY_SHAKESPEARE_EXCERPT
        if not excerpt.exists():
            raise
        logger.warning('%s; using the shipped excerpt %s (the first 100 kB) instead', err,
                       excerpt)
        return excerpt


def read_text(path):
    """The text of the UTF-8 file ``path``, a str; DatasetError if it is empty or not text."""
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise DatasetError('%s: cannot read it (%s)' % (path, err.strerror or err)) from None
    if not data.strip():
        raise DatasetError('%s: the file is empty' % path)
    try:
        text = data.decode('utf-8')
    except UnicodeDecodeError as err:
        raise DatasetError('%s: not UTF-8 text (byte %d is %#04x)'
                           % (path, err.start, data[err.start])) from None
    if '\x00' in text:
        raise DatasetError('%s: not a text file (it holds NUL bytes)' % path)
    return text
