"""The precompiled common headers: g++ really reads them, results are unchanged, and failure is harmless."""
import os
import subprocess
import sys

from conftest import add_worker_compile_folder


# In a compile folder of its own: compile one function, check its values, then
# compile again, as the engine did, the last module given the header's folder,
# with -H (g++ names each header it reads; '!' marks a precompiled one used).
PROGRAM = r'''
import subprocess
import numpy
import dltutorials
from dltutorials.support.engine import ENGINE, theano, T
if ENGINE == 'theano':
    from theano.gof import cmodule
else:
    from pytensor.link.c import cmodule

commands = []
run = cmodule.output_subprocess_Popen
def recorded(command, **kwargs):
    commands.append(list(command))
    return run(command, **kwargs)
cmodule.output_subprocess_Popen = recorded

x, b = T.matrix(), T.vector()
f = theano.function([x, b], T.tanh(x * 2 + b).sum(axis=1))
xv = numpy.linspace(-2, 2, 12).reshape(3, 4).astype(x.dtype)
bv = numpy.arange(4).astype(b.dtype)
assert numpy.allclose(f(xv, bv), numpy.tanh(xv * 2 + bv).sum(axis=1), rtol=1e-5)
module = [c for c in commands if any('precompiled_headers' in a for a in c)][-1]
# -fsyntax-only: the loaded module's file is left as it is.
done = subprocess.run(module + ['-H', '-fsyntax-only'], capture_output=True, text=True)
print([line for line in done.stderr.splitlines() if line.startswith(('! ', 'x '))])
'''


def test_modules_compile_against_the_precompiled_header_and_compute_the_same(tmp_path):
    env = add_worker_compile_folder(dict(os.environ, THEANO_FLAGS='base_compiledir=%s' % tmp_path,
                                         PYTENSOR_FLAGS='base_compiledir=%s' % tmp_path))
    done = subprocess.run([sys.executable, '-c', PROGRAM], capture_output=True, text=True,
                          timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    headers = list(tmp_path.glob('precompiled_headers/*/Python.h.gch/serial.gch'))
    assert len(headers) == 1
    used = eval(done.stdout.strip().splitlines()[-1])
    assert used == ['! %s' % headers[0]], used       # read, not refused ('x ')
    # A second compile folder beside the first (another worker's) uses the same header.
    built = headers[0].stat().st_mtime_ns
    flags = 'base_compiledir=%s,compiledir_format=second_folder' % tmp_path
    second = subprocess.run([sys.executable, '-c', PROGRAM], capture_output=True, text=True,
                            timeout=600, env=dict(env, THEANO_FLAGS=flags, PYTENSOR_FLAGS=flags))
    assert second.returncode == 0, second.stderr[-3000:]
    assert any((tmp_path / 'second_folder').glob('*/*.so'))
    assert eval(second.stdout.strip().splitlines()[-1]) == used
    assert list(tmp_path.rglob('*.gch/serial.gch')) == headers
    assert headers[0].stat().st_mtime_ns == built
    assert not list(tmp_path.rglob('common_headers*'))      # each build's source removed


def test_new_headers_get_a_new_precompiled_header(tmp_path, monkeypatch):
    from dltutorials.support import precompiled_headers as ph
    built = []
    monkeypatch.setattr(ph, '_folders', {})
    monkeypatch.setattr(ph, '_build', lambda folder, variant, flags, dirs: built.append(
        (folder, variant, flags)) or folder)
    include = tmp_path / 'include'
    include.mkdir()
    (include / 'Python.h').write_text('/* one Python */\n')
    preargs = ['-O3', '-fPIC', '-DNPY_NO_DEPRECATED_API=NPY_1_7_API_VERSION',
               '-Dsgemm_=scipy_sgemm_', '-Wl,-rpath,/somewhere']
    first = ph.precompiled_header_folder(ph.COMMON_HEADERS + 'int x;', [str(include)], preargs)
    # The same again: built once.  Another BLAS's renames: the same header.
    again = ph.precompiled_header_folder(ph.COMMON_HEADERS, [str(include)],
                                         preargs[:3] + ['-Ddgemm_=other_dgemm_'])
    assert first == again and len(built) == 1
    assert built[0][1:] == ('serial', ['-O3', '-fPIC',
                                       '-DNPY_NO_DEPRECATED_API=NPY_1_7_API_VERSION'])
    # OpenMP: the same folder, a second variant in it.
    ph.precompiled_header_folder(ph.COMMON_HEADERS, [str(include)], preargs + ['-fopenmp'])
    assert built[1][0] == first and built[1][1] == 'openmp'
    # A changed Python.h (a new Python in the same place): a new folder.
    (include / 'Python.h').write_text('/* another Python, longer */\n')
    changed = ph.precompiled_header_folder(ph.COMMON_HEADERS, [str(include)], preargs)
    assert changed != first and len(built) == 3
    # Code that does not start with the common headers: none.
    assert ph.precompiled_header_folder('#include <Python.h>\n', [str(include)], preargs) is None


def test_a_header_that_cannot_be_built_leaves_no_file_and_says_none(tmp_path):
    from dltutorials.support import precompiled_headers as ph
    folder = tmp_path / 'header'
    assert ph._build(str(folder), 'serial', ['--no-such-flag'], []) is None
    assert not [path for path in folder.rglob('*') if path.is_file() and '.gch' in path.name]
