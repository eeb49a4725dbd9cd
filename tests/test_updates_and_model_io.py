"""The SGD update rule against hand-computed numbers; saving and loading parameters."""
import numpy
import pytest

from dltutorials.support.engine import T, theano

from dltutorials.support.errors import ModelFileError
from dltutorials.support.model_files import load_params, read_params, save_params
from dltutorials.updates import sgd

floatX = theano.config.floatX


def test_sgd_steps_against_reference_numbers():
    w = theano.shared(numpy.array([1.0, -2.0], dtype=floatX), name='w')
    cost = T.sum(w ** 2)                       # gradient 2w
    step = theano.function([], cost, updates=sgd(cost, [w], learning_rate=0.1))
    step()
    numpy.testing.assert_allclose(w.get_value(), [0.8, -1.6], rtol=1e-6)
    step()
    numpy.testing.assert_allclose(w.get_value(), [0.64, -1.28], rtol=1e-6)
    assert w.get_value().dtype == floatX       # a float64 learning rate does not upcast


def test_sgd_takes_gradients_and_checks_their_number():
    w = theano.shared(numpy.ones(2, dtype=floatX))
    updates = sgd([T.ones_like(w)], [w], 0.5)
    theano.function([], [], updates=updates)()
    numpy.testing.assert_allclose(w.get_value(), [0.5, 0.5])
    with pytest.raises(ValueError, match='Got 2 gradient expressions for 1 parameters'):
        sgd([w, w], [w], 0.5)


def make_params(shapes):
    rng = numpy.random.RandomState(0)
    return [theano.shared(rng.normal(size=s).astype(floatX), name=n) for n, s in shapes]


def test_save_load_round_trip(tmp_path):
    params = make_params([('W', (3, 2)), ('b', (2,))])
    save_params(tmp_path / 'm.npz', params, model='Test', score=0.25)
    fresh = make_params([('W', (3, 2)), ('b', (2,))])
    for p in fresh:
        p.set_value(numpy.zeros_like(p.get_value()))
    meta = load_params(tmp_path / 'm.npz', fresh)
    assert meta == {'model': 'Test', 'score': 0.25}
    for saved, loaded in zip(params, fresh):
        numpy.testing.assert_array_equal(saved.get_value(), loaded.get_value())
    assert sorted(p.name for p in tmp_path.iterdir()) == ['m.npz']   # no partial left


def test_mismatched_files_are_refused(tmp_path):
    save_params(tmp_path / 'm.npz', make_params([('W', (3, 2)), ('b', (2,))]))
    with pytest.raises(ModelFileError, match=r'parameter 0 \(W\) has shape \(3, 2\) in the '
                                             r'file, \(4, 2\) in the model'):
        load_params(tmp_path / 'm.npz', make_params([('W', (4, 2)), ('b', (2,))]))
    with pytest.raises(ModelFileError, match='holds 2 parameter arrays, this model has 1'):
        load_params(tmp_path / 'm.npz', make_params([('W', (3, 2))]))


def test_unreadable_files_are_refused(tmp_path):
    with pytest.raises(ModelFileError, match='no such model file'):
        read_params(tmp_path / 'absent.npz')
    (tmp_path / 'junk.npz').write_bytes(b'junk')
    with pytest.raises(ModelFileError, match='not a readable .npz'):
        read_params(tmp_path / 'junk.npz')


def test_parameters_that_are_not_numbers_are_never_written_nor_loaded(tmp_path):
    from dltutorials.support.errors import DivergenceError

    params = make_params([('W', (3, 2)), ('b', (2,))])
    save_params(tmp_path / 'm.npz', params)
    before = (tmp_path / 'm.npz').read_bytes()
    params[1].set_value(numpy.array([1.0, numpy.nan], dtype=floatX))
    with pytest.raises(DivergenceError, match=r'm.npz not written: parameter b holds NaN'):
        save_params(tmp_path / 'm.npz', params)
    assert (tmp_path / 'm.npz').read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ['m.npz']      # no partial file left
    numpy.savez(tmp_path / 'bad.npz', p00_W=numpy.ones((3, 2)), p01_b=[numpy.inf, 0])
    with pytest.raises(ModelFileError, match=r'parameter 1 \(b\) holds NaN or infinite'):
        load_params(tmp_path / 'bad.npz', make_params([('W', (3, 2)), ('b', (2,))]))
