"""Save a model's parameters to ``.npz`` and load them back, checked.

Only arrays are stored, never pickled objects: a saved model loads into a
model built by the same code, and a file made for another architecture is
refused with the mismatching shapes named.  Files are written under a
temporary name, synced to disk and renamed, so an interrupted save (a kill,
a power cut) never leaves half a model.
"""
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy

from dltutorials.support.errors import DivergenceError, ModelFileError

META_KEY = '__meta__'


def _key(index, name):
    return 'p%02d_%s' % (index, name or 'param')


def _index(key):
    """The position saved in a key written by :func:`_key` ('p07_W' -> 7, 'p100_b' -> 100)."""
    return int(key[1:key.index('_')])


def _plain(value):
    """numpy scalars and arrays in ``meta`` as the Python numbers and lists JSON knows."""
    if isinstance(value, (numpy.generic, numpy.ndarray)):
        return value.tolist()
    raise TypeError('%r cannot be saved in a model file' % (value,))


def _write_npz(stream, arrays):
    """``numpy.savez``, but the same arrays always give the same bytes.

    ``numpy.savez`` stamps each entry with the time of writing; a fixed
    stamp makes two runs with the same seed write identical files.
    """
    with zipfile.ZipFile(stream, 'w', zipfile.ZIP_STORED, allowZip64=True) as archive:
        for key, value in arrays.items():
            entry = zipfile.ZipInfo(key + '.npy', date_time=(1980, 1, 1, 0, 0, 0))
            with archive.open(entry, 'w', force_zip64=True) as member:
                numpy.lib.format.write_array(member, numpy.asanyarray(value),
                                             allow_pickle=False)


def _sync_folder(folder):
    """Make a rename in ``folder`` durable (where the system allows opening a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_params(path, params, **meta):
    """Write the values of ``params`` to the ``.npz`` file ``path``.

    ``params`` are shared variables, or ``(name, array)`` pairs.  ``meta``
    (JSON-serialisable: model name, sizes, scores) is stored beside them and
    returned by :func:`read_params`.  Returns the path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pairs = [p if isinstance(p, tuple) else (p.name, p.get_value(borrow=True)) for p in params]
    for name, value in pairs:
        if not numpy.isfinite(value).all():
            raise DivergenceError('%s not written: parameter %s holds NaN or infinite values'
                                  % (path, name))
    arrays = {_key(i, name): value for i, (name, value) in enumerate(pairs)}
    arrays[META_KEY] = numpy.array(json.dumps(meta, default=_plain))
    fd, partial = tempfile.mkstemp(prefix=path.name + '.', suffix='.part', dir=path.parent)
    try:
        with os.fdopen(fd, 'wb') as stream:
            _write_npz(stream, arrays)
            # On disk before the rename, so that a power cut leaves the old
            # file or the new one, never a renamed empty one.
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(partial, path)
        _sync_folder(path.parent)
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    return path


def read_params(path):
    """Return ``(arrays, meta)`` from a file written by :func:`save_params`."""
    try:
        with numpy.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except FileNotFoundError:
        raise ModelFileError('%s: no such model file (train the model first)' % path) from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise ModelFileError('%s: not a readable .npz model file (%s)' % (path, err)) from None
    meta = json.loads(str(arrays.pop(META_KEY))) if META_KEY in arrays else {}
    try:
        keys = sorted(arrays, key=_index)
    except ValueError:
        raise ModelFileError('%s: not a model file written by dltutorials (arrays %s)'
                             % (path, ', '.join(sorted(arrays)))) from None
    return [arrays[key] for key in keys], meta


def load_params(path, params, saved=None):
    """Set ``params`` (shared variables) to the values saved in ``path``; return its meta.

    ``saved`` is what :func:`read_params` returned for ``path``, if the
    caller has read the file already (to build the model from its meta).

    Raises
    ------
    ModelFileError
        when the file is missing, unreadable, or holds a different number of
        parameters or different shapes than ``params``.
    """
    values, meta = read_params(path) if saved is None else saved
    if len(values) != len(params):
        raise ModelFileError('%s holds %d parameter arrays, this model has %d (%s)'
                             % (path, len(values), len(params),
                                ', '.join(str(p.name) for p in params)))
    for index, (param, value) in enumerate(zip(params, values)):
        expected = param.get_value(borrow=True).shape
        if value.shape != expected:
            raise ModelFileError('%s does not fit this model: parameter %d (%s) has shape %s '
                                 'in the file, %s in the model'
                                 % (path, index, param.name, value.shape, expected))
        if not numpy.isfinite(value).all():
            raise ModelFileError('%s: parameter %d (%s) holds NaN or infinite values'
                                 % (path, index, param.name))
    for param, value in zip(params, values):
        param.set_value(value.astype(param.dtype))
    return meta
