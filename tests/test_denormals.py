"""Subnormal numbers count as zero inside compiled functions, and only there."""
import os
import subprocess
import sys

import numpy
import pytest

from dltutorials.support import denormals
from dltutorials.support.engine import T, theano

pytestmark = pytest.mark.skipif(denormals._libm is None,
                                reason='flushing subnormals is set up on x86-64 Linux only')

TINY = numpy.float32(1e-20)       # TINY * TINY = 1e-40, below float32's normal range (1.2e-38)


def test_inside_a_function_subnormal_results_are_zero_and_numpy_outside_keeps_them():
    x = T.vector()
    square = theano.function([x], x * x)
    values = numpy.array([TINY, 1e-10, 1e-18], dtype=numpy.float32)
    assert list(square(values)) == [0.0, values[1] * values[1], values[2] * values[2]]
    assert values[0] * values[0] > 0                       # numpy, after the call


def test_subnormal_inputs_count_as_zero_and_nan_and_infinity_pass_unchanged():
    x = T.vector()
    scaled = theano.function([x], x * 1e30)
    subnormal = numpy.float32(1e-40)
    result = scaled(numpy.array([subnormal, numpy.nan, numpy.inf, -numpy.inf, 1e-30],
                                dtype=numpy.float32))
    assert result[0] == 0.0                                # numpy: 1e-10
    assert numpy.isnan(result[1]) and result[2] == numpy.inf and result[3] == -numpy.inf
    assert result[4] == pytest.approx(1.0)


def test_the_threads_modes_come_back_after_a_function_that_fails():
    x, y = T.vector(), T.vector()
    add = theano.function([x, y], x + y)
    with pytest.raises(ValueError):
        add(numpy.ones(3, dtype=x.dtype), numpy.ones(2, dtype=x.dtype))   # shapes differ
    assert TINY * TINY > 0
    with pytest.raises(TypeError):
        add(numpy.ones(3, dtype=x.dtype))                                  # an input missing
    assert TINY * TINY > 0


def test_an_environment_variable_keeps_subnormals_inside_too():
    program = ('import numpy, dltutorials\n'
               'from dltutorials.support.engine import theano, T\n'
               'x = T.vector()\n'
               'print(theano.function([x], x * x)(numpy.full(1, 1e-20, dtype=x.dtype))[0] > 0)\n')
    for setting, expected in (('0', 'True'), ('1', 'False')):
        environ = dict(os.environ, DLTUTORIALS_FLUSH_DENORMALS=setting)
        done = subprocess.run([sys.executable, '-c', program], capture_output=True, text=True,
                              timeout=300, env=environ)
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stdout.split() == [expected]
