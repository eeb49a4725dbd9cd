"""The engine imports and runs with no user configuration, with a linked BLAS; user settings win."""
import doctest
import importlib.util
import json
import os
import site
import subprocess
import sys

import numpy
import pytest

from conftest import REPO, add_worker_compile_folder

from dltutorials.support import engine_setup
from dltutorials.support.engine import ENGINE
from dltutorials.support import openblas, vector_math
from dltutorials.support.engine_setup import (default_flags, engine_name, parse_theano_flags,
                                      user_has_set)

theano_only = pytest.mark.skipif(ENGINE != 'theano', reason='Theano-only setting')


def test_doctests():
    assert doctest.testmod(engine_setup).failed == 0
    assert doctest.testmod(openblas).failed == 0


def test_flags_are_parsed_like_theano_does():
    assert parse_theano_flags('') == {}
    assert parse_theano_flags('floatX=float64, blas.ldflags=-lblas') == {
        'floatX': 'float64', 'blas.ldflags': '-lblas'}
    assert parse_theano_flags('blas.ldflags="-L/opt/x -lopenblas"') == {
        'blas.ldflags': '-L/opt/x -lopenblas'}


def no_blas():
    return None


def test_user_settings_in_flags_or_rc_file_win(tmp_path):
    rc = tmp_path / 'theanorc'
    rc.write_text('[global]\nfloatX = float64\nallow_gc = True\noptimizer_excluding = fusion\n'
                  '[blas]\nldflags = -lmkl_rt\n[gcc]\ncxxflags = -O2\n')
    env = {'THEANORC': str(rc)}
    assert user_has_set('floatX', env) and user_has_set('blas.ldflags', env)
    assert default_flags(env) == ({}, None)
    env = {'THEANORC': str(tmp_path / 'none'), 'THEANO_FLAGS': 'floatX=float16'}
    assert user_has_set('floatX', env) and not user_has_set('blas.ldflags', env)
    compile_flags = ' '.join(['-g0'] + ([vector_math.FLAG, vector_math.CODE_VERSION_FLAG]
                                        if vector_math.vector_functions() else []))
    assert default_flags(env, find_blas=no_blas) == (
        {'blas.ldflags': '', 'allow_gc': 'False', 'gcc.cxxflags': compile_flags,
         'optimizer_excluding': 'local_dot22_to_dot22scalar'}, None)
    # PyTensor spells sections with '__' in its flags, and has its own rc file.
    env = {'PYTENSORRC': str(rc), 'PYTENSOR_FLAGS': 'linker=c'}
    assert user_has_set('blas.ldflags', env, 'pytensor')
    assert default_flags(env, 'pytensor') == ({}, None)
    env = {'PYTENSORRC': str(tmp_path / 'none'), 'PYTENSOR_FLAGS': 'blas__ldflags=-lblas'}
    assert default_flags(env, 'pytensor') == (
        {'floatX': 'float32', 'allow_gc': 'False', 'gcc.cxxflags': compile_flags,
         'optimizer_excluding': 'local_dot22_to_dot22scalar', 'linker': 'cvm'}, None)
    env['PYTENSOR_FLAGS'] += ',allow_gc=True,optimizer_excluding=inplace,gcc__cxxflags=-O2'
    assert default_flags(env, 'pytensor') == ({'floatX': 'float32', 'linker': 'cvm'}, None)


def test_an_unreadable_rc_file_is_left_to_the_engine(tmp_path):
    rc = tmp_path / 'theanorc'
    rc.write_text('no section header\n')
    assert not user_has_set('floatX', {'THEANORC': str(rc)})


def test_defaults_link_a_real_blas(tmp_path):
    import glob
    flags, blas = default_flags({'THEANORC': str(tmp_path / 'none')})
    assert flags['floatX'] == 'float32'
    # Expected from the machine, not from the code under test: a system
    # OpenBLAS where its library resolves (a hidden one dangles), else the
    # wheel, which is a dependency, so there always is one.
    system = [path for path in glob.glob('/usr/lib*/libopenblas.so')
              + glob.glob('/usr/lib*/*-linux-gnu*/libopenblas.so') if os.path.exists(path)]
    if system:
        assert flags['blas.ldflags'] == '-lopenblas'
    else:
        import scipy_openblas32
        assert flags['blas.ldflags'].startswith(
            '-L%s -l%s ' % (scipy_openblas32.get_lib_dir(), scipy_openblas32.get_library()))
        assert '-Dsgemm_=scipy_sgemm_' in flags['blas.ldflags'].split()


def test_an_unknown_compiler_finds_no_system_openblas():
    assert openblas.system_openblas('no-such-compiler') is None


def test_engine_choice():
    assert engine_name({'DLTUTORIALS_ENGINE': 'PyTensor'}) == 'pytensor'
    assert engine_name({'DLTUTORIALS_ENGINE': 'theano'}) == 'theano'
    expected = 'theano' if sys.version_info < (3, 12) else 'pytensor'
    try:
        import theano  # noqa: F401
    except ImportError:
        expected = 'pytensor'
    assert engine_name({}) == expected
    with pytest.raises(ImportError, match='DLTUTORIALS_ENGINE must be theano or pytensor'):
        engine_name({'DLTUTORIALS_ENGINE': 'torch'})


# ------------------------------------------------------------------ the BLAS libraries

def blas_libraries():
    found = [openblas.system_openblas(), openblas.wheel_openblas()]
    return [blas for blas in found if blas is not None]


@pytest.mark.parametrize('blas', blas_libraries(), ids=lambda blas: blas.source)
def test_each_blas_reports_its_kernel_and_multiplies_exactly(blas):
    kernel, error = openblas.probe(blas, check=True)
    assert kernel and error == 0


def test_the_wheel_is_linked_under_renamed_symbols():
    blas = openblas.wheel_openblas()
    assert blas is not None, 'scipy-openblas32 is a dependency'
    assert '-Dsgemm_=scipy_sgemm_' in blas.ldflags.split()
    assert '-Dopenblas_set_num_threads=scipy_openblas_set_num_threads' in blas.ldflags.split()


def test_a_generic_kernel_is_replaced_by_the_cpus_own(monkeypatch):
    """OpenBLAS saw 'Prescott': we ask for the CPU's kernel, check it, and set it.

    Haswell on an AVX2 CPU, SkylakeX on an AVX-512 one.
    """
    flags = openblas.cpu_flags()
    if not openblas.AVX2_FLAGS <= flags:
        pytest.skip('needs an AVX2 CPU')
    expected = 'SkylakeX' if openblas.AVX512_FLAGS <= flags else 'Haswell'
    blas = openblas.wheel_openblas()
    real_probe = openblas.probe

    def generic_first(blas, coretype=None, check=False):
        return ('Prescott', -1.0) if coretype is None else real_probe(blas, coretype, check)
    monkeypatch.setattr(openblas, 'probe', generic_first)
    environ = {}
    assert openblas.choose_kernel(blas, environ) == expected
    assert environ == {'OPENBLAS_CORETYPE': expected} and blas.kernel_chosen_by_us
    # A user's own choice wins, and nothing is set for a recognised kernel.
    environ = {'OPENBLAS_CORETYPE': 'Sandybridge'}
    assert openblas.choose_kernel(openblas.wheel_openblas(), environ) == 'Sandybridge'
    assert environ == {'OPENBLAS_CORETYPE': 'Sandybridge'}
    monkeypatch.setattr(openblas, 'probe', real_probe)
    environ = {}
    openblas.choose_kernel(openblas.wheel_openblas(), environ, flags=frozenset())
    assert environ == {}


def test_a_kernel_the_cpu_cannot_run_is_not_chosen(monkeypatch):
    """A kernel that dies in the child process (SIGILL) is refused, and this process lives."""
    if openblas.AVX512_FLAGS <= openblas.cpu_flags():
        pytest.skip('this CPU runs AVX-512 kernels')
    monkeypatch.setattr(openblas, 'better_coretype', lambda kernel, flags: 'SkylakeX')
    blas = openblas.wheel_openblas()
    environ = {}
    assert openblas.choose_kernel(blas, environ) == blas.kernel
    assert 'OPENBLAS_CORETYPE' not in environ and not blas.kernel_chosen_by_us


# ------------------------------------------------------------------ fresh processes

def clean_env(tmp_path, **extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(('THEANO', 'PYTENSOR', 'OPENBLAS_CORETYPE',
                                'OPENBLAS_THREAD_TIMEOUT'))}
    env['THEANORC'] = str(tmp_path / 'no-theanorc')
    env['PYTENSORRC'] = str(tmp_path / 'no-pytensorrc')
    env.update(extra)
    return add_worker_compile_folder(env)


def run_python(code, env, timeout=900):
    return subprocess.run([sys.executable, '-W', 'default', '-c', code], env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_fresh_import_is_quiet_configured_and_links_a_blas(tmp_path):
    code = ('import dltutorials.logistic_sgd, numpy\n'
            'from dltutorials.support.engine import theano, T\n'
            'a = T.matrix(); f = theano.function([a], T.dot(a, a))\n'
            'x = numpy.random.RandomState(0).rand(300, 300).astype("float32")\n'
            'assert abs(f(x) - x.astype("float64") @ x).max() < 1e-3\n'
            'with open("/proc/self/maps") as maps:\n'
            '    linked = "openblas" in maps.read()\n'
            'print(theano.config.floatX, linked)')
    done = run_python(code, clean_env(tmp_path))
    assert done.returncode == 0, done.stderr
    assert 'Traceback' not in done.stderr
    assert 'Warning' not in done.stderr and 'WARNING' not in done.stderr, done.stderr
    assert done.stdout.split() == ['float32', 'True']


# setuptools puts its distutils in front of Python's (with this file) in the virtualenvs it is in.
SETUPTOOLS_DISTUTILS_FIRST = any(os.path.exists(os.path.join(folder, 'distutils-precedence.pth'))
                                 for folder in site.getsitepackages())


@theano_only
@pytest.mark.skipif(not SETUPTOOLS_DISTUTILS_FIRST, reason="no setuptools' distutils here")
@pytest.mark.parametrize('choice', [None, 'local'])
def test_theano_gets_pythons_own_distutils_unless_the_user_chose(choice, tmp_path):
    code = ('import sys, dltutorials.mlp, distutils\n'
            'print(distutils.__file__, "setuptools" in sys.modules)')
    extra = {} if choice is None else {'SETUPTOOLS_USE_DISTUTILS': choice}
    done = run_python(code, clean_env(tmp_path, **extra))
    assert done.returncode == 0 and not done.stderr, done.stderr
    location, setuptools_imported = done.stdout.split()
    if choice is None:        # Python's own, and none of setuptools imported
        assert os.path.dirname(os.path.dirname(location)) == os.path.dirname(os.__file__)
        assert setuptools_imported == 'False'
    else:
        assert 'setuptools' in location


SCIPY_USE = (
    'import numpy, scipy, theano, theano.tensor as T\n'
    'from theano.scalar import basic_scipy\n'
    'from theano.tensor.nnet import conv, abstract_conv\n'
    'x = T.dvector()\n'
    'chi2sf = theano.function([x], T.chi2sf(x, 2), mode=theano.Mode(linker="py"))\n'
    'import scipy.stats, scipy.signal\n'
    'print(basic_scipy.imported_scipy_special, conv.imported_scipy_signal,\n'
    '      abstract_conv.imported_scipy_signal, chi2sf(numpy.array([3.0]))[0],\n'
    '      scipy.stats.chi2.sf(3.0, 2), scipy.signal.convolve([1, 2], [1, 1]).tolist())\n')


@theano_only
def test_theano_is_imported_without_scipy_stats_and_signal_and_works_as_with_them(tmp_path):
    """They cost 0.2 s a start; Theano's operations that use scipy, and scipy, work the same."""
    deferred = run_python('import sys, dltutorials.mlp\n'
                          'print(sorted({"scipy.stats", "scipy.signal"} & set(sys.modules)))\n'
                          + SCIPY_USE, clean_env(tmp_path))
    assert deferred.returncode == 0 and not deferred.stderr, deferred.stderr
    # The user's scipy.stats imported first: Theano's import as it always was.
    loaded = run_python('import scipy.stats, dltutorials.mlp\nprint([])\n' + SCIPY_USE,
                        clean_env(tmp_path))
    assert loaded.returncode == 0 and not loaded.stderr, loaded.stderr
    imported_before, rest = deferred.stdout.split('\n', 1)
    assert imported_before == '[]'
    assert rest == loaded.stdout.split('\n', 1)[1]
    assert rest.split()[-5:] == ['0.22313016014842982', '0.22313016014842982', '[1,', '3,', '2]']


def test_the_wheels_openblas_links_and_multiplies(tmp_path):
    """What a machine without a system OpenBLAS gets: the wheel's library, symbols renamed."""
    blas = openblas.wheel_openblas()
    variable, key = (('THEANO_FLAGS', 'blas.ldflags') if ENGINE == 'theano'
                     else ('PYTENSOR_FLAGS', 'blas__ldflags'))
    code = ('import dltutorials, numpy\n'
            'from dltutorials.support.engine import theano, T\n'
            'a, b = T.matrix(), T.matrix()\n'
            'f = theano.function([a, b], [T.dot(a, b), T.dot(a, b[:, 0])])\n'
            'rng = numpy.random.RandomState(0)\n'
            'x, y = rng.rand(200, 300).astype("float32"), rng.rand(300, 100).astype("float32")\n'
            'product, vector = f(x, y)\n'
            'exact = x.astype("float64") @ y\n'
            'assert abs(product - exact).max() < 1e-3 and abs(vector - exact[:, 0]).max() < 1e-3\n'
            'with open("/proc/self/maps") as maps:\n'
            '    print(%r in maps.read())' % os.path.realpath(blas.library))
    done = run_python(code, clean_env(tmp_path, **{variable: '%s=%s' % (key, blas.ldflags)}))
    assert done.returncode == 0, done.stderr[-3000:]
    assert 'WARNING' not in done.stderr and 'Warning' not in done.stderr, done.stderr
    assert done.stdout.strip() == 'True'


def test_user_flags_reach_the_engine(tmp_path):
    variable = 'THEANO_FLAGS' if ENGINE == 'theano' else 'PYTENSOR_FLAGS'
    done = run_python('import dltutorials; from dltutorials.support.engine import theano; '
                      'print(theano.config.floatX)',
                      clean_env(tmp_path, **{variable: 'floatX=float64'}))
    assert done.stdout.strip() == 'float64', done.stderr


def test_an_engine_that_is_not_installed_is_named(tmp_path):
    other = 'pytensor' if ENGINE == 'theano' else 'theano'
    if importlib.util.find_spec(other) is not None:
        pytest.skip('both engines are installed here')
    done = run_python('import dltutorials.mlp', clean_env(tmp_path, DLTUTORIALS_ENGINE=other))
    assert done.returncode != 0
    assert ('ImportError: the engine is %s (set by DLTUTORIALS_ENGINE), but it is not '
            'installed in this Python' % other) in done.stderr


def test_python_m_dltutorials_says_what_runs(tmp_path):
    done = subprocess.run([sys.executable, '-m', 'dltutorials'], env=clean_env(tmp_path),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    fields = dict(line.split(None, 1) for line in done.stdout.splitlines())
    assert set(fields) == {'Python', 'engine', 'floatX', 'BLAS', 'OpenMP', 'cores', 'math'}
    assert fields['engine'].startswith('Theano 1.0.5' if ENGINE == 'theano' else 'PyTensor')
    assert fields['floatX'] == 'float32'
    assert 'OpenBLAS' in fields['BLAS'] or 'openblas' in fields['BLAS']
    assert 'kernel' in fields['BLAS'] and 'kernel unknown' not in fields['BLAS']
    assert fields['math'].startswith('vectorised' if vector_math.vector_functions() else 'scalar')


def test_an_empty_blas_setting_is_reported_as_the_users(tmp_path):
    variable, key = (('THEANO_FLAGS', 'blas.ldflags') if ENGINE == 'theano'
                     else ('PYTENSOR_FLAGS', 'blas__ldflags'))
    done = subprocess.run([sys.executable, '-m', 'dltutorials'], capture_output=True, text=True,
                          env=clean_env(tmp_path, **{variable: key + '='}), timeout=300)
    assert done.returncode == 0, done.stderr
    assert "BLAS    numpy's BLAS through the C-API (slower; you set it empty)" in done.stdout


# A child's script: LeNet's training step on 40 random images (``train``) and its ops (``ops``).
LENET_TRAINING_STEP = [
    'import numpy',
    'import dltutorials',
    'from dltutorials.support.engine import theano, T',
    'from dltutorials.convolutional_mlp import LeNet5, build_lenet_functions',
    'from dltutorials.data_loading import shared_dataset',
    'rng = numpy.random.RandomState(0)',
    'data = shared_dataset((rng.uniform(0, 1, (40, 784)), rng.randint(0, 10, 40)))',
    'x, y = T.matrix("x"), T.ivector("y")',
    'train = build_lenet_functions(LeNet5(rng, x, nkerns=(4, 6)), x, y, '
    '[data, data, data], 20, 0.1)[0]',
    'ops = [node.op for node in train.maker.fgraph.toposort()]',
]


@theano_only
def test_numpy_blas_gets_no_openmp_and_lenet_trains(tmp_path):
    """With blas.ldflags empty, OpenMP in the convolution aborted the process: now it is off.

    The check is of the configuration (no compiled op has OpenMP) and a few
    real training steps in a child process, whose exit status shows a crash
    that pytest's capture would hide.
    """
    code = '\n'.join(LENET_TRAINING_STEP + [
        'from dltutorials.support.engine_setup import openmp_refusal',
        'assert not any(getattr(op, "openmp", False) for op in ops)',
        'costs = [float(train(i % 2)) for i in range(6)]',
        'assert all(numpy.isfinite(costs)) and costs[4] < costs[0], costs',
        'print(openmp_refusal())'])
    done = run_python(code, clean_env(tmp_path, THEANO_FLAGS='blas.ldflags=',
                                      OMP_NUM_THREADS='2'))
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "unsafe with numpy's BLAS"


@theano_only
def test_a_users_openmp_with_numpy_blas_is_refused_not_a_crash(tmp_path):
    """openmp=True and blas.ldflags empty, both the user's: LeNet aborted; now a warning."""
    env = clean_env(tmp_path, THEANO_FLAGS='blas.ldflags=,openmp=True', OMP_NUM_THREADS='2')
    done = subprocess.run([sys.executable, 'code/convolutional_mlp.py', '--quick', '--dataset',
                           'data/mnist_sample.pkl.gz', '--output-dir', str(tmp_path)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert ("dltutorials: openmp=True is ignored: with numpy's BLAS (blas.ldflags empty) "
            "Theano's convolution aborts under OpenMP") in done.stderr
    described = subprocess.run([sys.executable, '-m', 'dltutorials'], env=env,
                               capture_output=True, text=True, timeout=300)
    assert "OpenMP  off (unsafe with numpy's BLAS)" in described.stdout


@theano_only
def test_linked_blas_gets_openmp_in_the_convolution_and_lenet_trains_the_same(tmp_path):
    """With a linked BLAS and two threads, LeNet's convolutions run under OpenMP.

    (The other tests' scripts run on one thread each: see conftest.)  A few
    training steps in a child process with two threads and in one with one
    (no OpenMP), from the same seed: the same costs.
    """
    code = '\n'.join(LENET_TRAINING_STEP + [
        'import json',
        'print(json.dumps([any(getattr(op, "openmp", False) for op in ops), '
        '[float(train(i % 2)) for i in range(6)]]))'])
    runs = {}
    for threads in ('2', '1'):
        done = run_python(code, clean_env(tmp_path, OMP_NUM_THREADS=threads))
        assert done.returncode == 0, done.stderr[-3000:]
        runs[threads] = json.loads(done.stdout)
    assert runs['2'][0] == ((os.cpu_count() or 1) > 1)
    assert runs['1'][0] is False
    costs = runs['1'][1]
    assert costs[4] < costs[0], costs
    numpy.testing.assert_allclose(runs['2'][1], costs, rtol=1e-5)


@theano_only
def test_scan_runs_on_its_python_implementation():
    from dltutorials.support.engine import T, theano
    x = T.vector('x')
    partial_sums, _ = theano.scan(lambda value, total: total + value, sequences=x,
                                  outputs_info=T.zeros((), dtype=x.dtype))
    cumsum = theano.function([x], partial_sums)
    values = numpy.arange(1, 6, dtype=theano.config.floatX)
    numpy.testing.assert_allclose(cumsum(values), numpy.cumsum(values))
    assert sys.version_info < (3, 11) or sys.modules[
        'theano.scan_module.scan_perform_ext'] is None


def test_intermediate_results_stay_allocated_unless_the_user_says(tmp_path):
    # allow_gc=False saves the engine asking the system for fresh buffers on every call.
    variable = 'THEANO_FLAGS' if ENGINE == 'theano' else 'PYTENSOR_FLAGS'
    code = ('import dltutorials; from dltutorials.support.engine import theano; '
            'print(theano.config.allow_gc)')
    assert run_python(code, clean_env(tmp_path)).stdout.strip() == 'False'
    done = run_python(code, clean_env(tmp_path, **{variable: 'allow_gc=True'}))
    assert done.stdout.strip() == 'True', done.stderr


def test_a_product_scaled_by_a_scalar_is_computed_once():
    # The engines' dot22-to-dot22scalar rewrite computed a product twice when its
    # plain value was needed too (here by the norm of gradient clipping).
    from dltutorials.updates import clip_grad_norm
    from dltutorials.support.engine import T, theano
    a, b = T.matrix('a'), T.matrix('b')
    product = T.dot(a, b)
    clipped, = clip_grad_norm([product], [product], 1.0)
    f = theano.function([a, b], clipped)
    products = [node for node in f.maker.fgraph.toposort() if 'Dot' in type(node.op).__name__
                or 'Gemm' in type(node.op).__name__]
    assert len(products) == 1, products
    x, y = numpy.ones((3, 4), dtype=a.dtype), numpy.ones((4, 2), dtype=a.dtype)
    expected = (x @ y) / max(1.0, numpy.linalg.norm(x @ y))
    assert numpy.allclose(f(x, y), expected, rtol=1e-5)


def test_openblas_is_loaded_after_its_settings_and_its_threads_stop_spinning_soon(tmp_path):
    # OpenBLAS reads OPENBLAS_CORETYPE and OPENBLAS_THREAD_TIMEOUT when it is loaded:
    # importing dltutorials must set them and leave the loading to the engine.
    code = ('import os, dltutorials\n'
            'from dltutorials.support import engine_setup\n'
            'blas = engine_setup.blas_in_use\n'
            'with open("/proc/self/maps") as maps:\n'
            '    loaded = blas is not None and os.path.realpath(blas.library) in maps.read()\n'
            'print(blas is not None, loaded, os.environ.get("OPENBLAS_THREAD_TIMEOUT"))')
    done = run_python(code, clean_env(tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ['True', 'False', '20']
    done = run_python(code, clean_env(tmp_path, OPENBLAS_THREAD_TIMEOUT='12'))
    assert done.stdout.split() == ['True', 'False', '12'], done.stderr
