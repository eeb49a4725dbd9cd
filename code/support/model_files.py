"""Save a model's parameters to ``.npz`` and load them back, checked.

Only arrays are stored, never pickled objects: a saved model loads into a
model built by the same code, and a file made for another architecture is
refused with the mismatching shapes named.  Files are written under a
temporary name and renamed, so an interrupted save never leaves half a model.
"""
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy

from dltutorials.support.errors import ModelFileError

META_KEY = '__meta__'


def _key(index, param):
    return 'p%02d_%s' % (index, param.name or 'param')


def save_params(path, params, **meta):
    """Write the values of ``params`` (shared variables) to the ``.npz`` file ``path``.

    ``meta`` (JSON-serialisable: model name, sizes, scores) is stored beside
    them and returned by :func:`read_params`.  Returns the path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {_key(i, p): p.get_value(borrow=True) for i, p in enumerate(params)}
    arrays[META_KEY] = numpy.array(json.dumps(meta))
    fd, partial = tempfile.mkstemp(prefix=path.name + '.', suffix='.part', dir=path.parent)
    try:
        with os.fdopen(fd, 'wb') as stream:
            numpy.savez(stream, **arrays)
        os.replace(partial, path)
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
    return [arrays[key] for key in sorted(arrays)], meta


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
    for param, value in zip(params, values):
        param.set_value(value.astype(param.dtype))
    return meta


def report_predictions(predict_fn, dataset='mnist.pkl.gz', images=None, n=10):
    """Classify image files, or the first ``n`` test images of ``dataset``; print and return.

    ``predict_fn`` maps a floatX matrix of images (one 784-pixel row each)
    to their predicted classes: a compiled ``theano.function``.
    """
    from dltutorials.support.engine import theano
    from dltutorials.support.datasets import load_arrays, read_images

    if images:
        predicted = predict_fn(read_images(images).astype(theano.config.floatX))
        for path, label in zip(images, predicted):
            print('%s: %d' % (path, label))
    else:
        test_x = load_arrays(dataset)[2][0][:n]
        predicted = predict_fn(test_x.astype(theano.config.floatX))
        print('Predicted values for the first %d examples in test set:' % len(test_x))
        print(predicted)
    return predicted
