"""Theano imports and runs with no user configuration; user settings win."""
import doctest
import os
import subprocess
import sys

import numpy

from dltutorials import theano_setup
from dltutorials.theano_setup import default_flags, parse_theano_flags, user_has_set


def test_doctests():
    assert doctest.testmod(theano_setup).failed == 0


def test_flags_are_parsed_like_theano_does():
    assert parse_theano_flags('') == {}
    assert parse_theano_flags('floatX=float64, blas.ldflags=-lblas') == {
        'floatX': 'float64', 'blas.ldflags': '-lblas'}
    assert parse_theano_flags('blas.ldflags="-L/opt/x -lopenblas"') == {
        'blas.ldflags': '-L/opt/x -lopenblas'}


def test_user_settings_in_flags_or_theanorc_win(tmp_path):
    rc = tmp_path / 'theanorc'
    rc.write_text('[global]\nfloatX = float64\n[blas]\nldflags = -lmkl_rt\n')
    env = {'THEANORC': str(rc)}
    assert user_has_set('floatX', env) and user_has_set('blas.ldflags', env)
    assert default_flags(env) == {}
    env = {'THEANORC': str(tmp_path / 'none'), 'THEANO_FLAGS': 'floatX=float16'}
    assert user_has_set('floatX', env) and not user_has_set('blas.ldflags', env)
    assert set(default_flags(env)) == {'blas.ldflags'}


def test_defaults_pick_openblas_when_the_compiler_finds_it(tmp_path):
    env = {'THEANORC': str(tmp_path / 'none')}
    flags = default_flags(env)
    assert flags['floatX'] == 'float32'
    expected = '-lopenblas' if theano_setup.find_openblas_ldflags() else ''
    assert flags['blas.ldflags'] == expected


def test_an_unknown_compiler_finds_no_openblas():
    assert theano_setup.find_openblas_ldflags('no-such-compiler') is None


def clean_env(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith('THEANO')}
    env['THEANORC'] = str(tmp_path / 'no-theanorc')
    return env


def test_fresh_import_is_quiet_and_configured(tmp_path):
    code = ('import dltutorials.logistic_sgd, theano, theano.tensor as T; '
            'theano.scan(lambda v: 2 * v, sequences=T.vector()); '
            'print(theano.config.floatX, repr(theano.config.blas.ldflags))')
    done = subprocess.run([sys.executable, '-W', 'default', '-c', code], env=clean_env(tmp_path),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert 'Traceback' not in done.stderr
    assert 'Warning' not in done.stderr
    floatx, ldflags = done.stdout.split()
    assert floatx == 'float32'
    if theano_setup.find_openblas_ldflags():
        assert ldflags == "'-lopenblas'"


def test_user_flags_reach_theano(tmp_path):
    env = clean_env(tmp_path)
    env['THEANO_FLAGS'] = 'floatX=float64'
    done = subprocess.run([sys.executable, '-c', 'import dltutorials, theano; '
                           'print(theano.config.floatX)'], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.stdout.strip() == 'float64', done.stderr


def test_scan_runs_on_its_python_implementation():
    import theano
    import theano.tensor as T
    x = T.vector('x')
    partial_sums, _ = theano.scan(lambda value, total: total + value, sequences=x,
                                  outputs_info=T.zeros((), dtype=x.dtype))
    cumsum = theano.function([x], partial_sums)
    values = numpy.arange(1, 6, dtype=theano.config.floatX)
    numpy.testing.assert_allclose(cumsum(values), numpy.cumsum(values))
    assert sys.version_info < (3, 11) or sys.modules[
        'theano.scan_module.scan_perform_ext'] is None
