"""Theano's MRG generator drawn in passes over its streams: the same numbers, bit for bit."""
import numpy
import pytest

from dltutorials.support.engine import ENGINE, MRG_RandomStreams, theano

pytestmark = pytest.mark.skipif(ENGINE != 'theano', reason="Theano's MRG generator")


def draws(size, dtype, n_streams, theanos_own_code):
    """Four samples of ``size`` and the streams' states after them, from seed 1234."""
    from theano.sandbox import rng_mrg
    from dltutorials.support import fast_random

    op = rng_mrg.mrg_uniform
    if theanos_own_code:
        op.c_support_code = fast_random._theano_support_code
        op.c_code_cache_version = fast_random._theano_version
    try:
        streams = MRG_RandomStreams(1234)
        sample = streams.uniform(size=size, dtype=dtype,
                                 **({} if n_streams is None else dict(nstreams=n_streams)))
        draw = theano.function([], sample)
        values = [draw() for _ in range(4)]
    finally:
        op.c_support_code = fast_random.c_support_code
        op.c_code_cache_version = fast_random.c_code_cache_version
    assert any('mrg_uniform' in str(node.op) for node in draw.maker.fgraph.toposort())
    return values, streams.state_updates[-1][0].get_value()


@pytest.mark.parametrize('dtype', ['float32', 'float64'])
@pytest.mark.parametrize('size, n_streams', [
    ((20, 500), None),       # the RBM's hidden units: 1,666 streams, 6 passes
    ((7, 13), 5),            # 91 elements: 18 whole passes and one of 1 stream
    ((3,), 10),              # fewer elements than streams
    ((1000, 37), 777),       # a block of 512 streams and one of 265
    ((2000,), 1500),
    ((5,), 1),               # one stream
])
def test_the_numbers_and_states_are_theanos_own(size, n_streams, dtype):
    ours, our_state = draws(size, dtype, n_streams, theanos_own_code=False)
    theanos, theanos_state = draws(size, dtype, n_streams, theanos_own_code=True)
    for mine, reference in zip(ours, theanos):
        assert mine.dtype == dtype and mine.shape == size
        numpy.testing.assert_array_equal(mine, reference)
    numpy.testing.assert_array_equal(our_state, theanos_state)
    assert 0 < min(v.min() for v in ours) and max(v.max() for v in ours) < 1
    assert len({v.tobytes() for v in ours}) == 4          # each draw moves the streams on


def test_a_binomial_draw_with_many_numbers_has_the_right_frequency():
    mask = MRG_RandomStreams(7).binomial(size=(500, 784), n=1, p=0.3,
                                         dtype=theano.config.floatX)
    values = theano.function([], mask)()
    assert abs(values.mean() - 0.3) < 0.003         # 392,000 draws: 4 standard deviations
