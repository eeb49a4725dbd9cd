"""The g++ output cache: a module compiled in one compile folder is not compiled again in another."""
import json
import os
import subprocess
import sys
import time

import numpy
import pytest

from dltutorials.support import object_cache

# Compiles a few modules (fused elementwise, a product, softmax); prints the compilations
# run and reused, and the values.
PROGRAM = '''
import json, numpy
from dltutorials.support.engine import theano, T
from dltutorials.support import object_cache
x, b = T.matrix('x'), T.vector('b')
f = theano.function([x, b], [T.tanh(x + b) * T.exp(-x) + T.log1p(x * x), T.dot(x, x.T),
                             T.nnet.softmax(x)])
values = f(numpy.linspace(-2, 2, 12).reshape(3, 4).astype(theano.config.floatX),
           numpy.arange(4).astype(theano.config.floatX))
print(json.dumps(dict(object_cache.counts, values=[v.tolist() for v in values])))
'''


def compile_in(base, folder, **environ):
    flags = 'base_compiledir=%s,compiledir_format=%s' % (base, folder)
    env = dict(os.environ, THEANO_FLAGS=flags, PYTENSOR_FLAGS=flags, **environ)
    done = subprocess.run([sys.executable, '-c', PROGRAM], capture_output=True, text=True,
                          timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_second_compile_folder_reuses_the_first_ones_modules(tmp_path):
    first = compile_in(tmp_path, 'first')
    second = compile_in(tmp_path, 'second')
    assert first['compiled'] >= 3 and first['reused'] == 0
    assert second['compiled'] == 0 and second['reused'] == first['compiled']
    for a, b in zip(first['values'], second['values']):
        numpy.testing.assert_array_equal(a, b)
    x = numpy.linspace(-2, 2, 12).reshape(3, 4)
    numpy.testing.assert_allclose(second['values'][1], x @ x.T, rtol=1e-5, atol=1e-5)
    # The second folder's libraries are the cached files themselves, which are the first
    # folder's (hard links: one file on disk for three names).
    # (Theano compiles two helper modules as it is imported, before the cache is installed.)
    libraries = list((tmp_path / 'second').glob('tmp*/*.so'))
    assert len(libraries) >= second['reused'] - 2
    assert all(library.stat().st_nlink == 3 for library in libraries)
    assert len(list((tmp_path / 'compiled_objects').glob('*.so'))) == first['compiled']
    # Turned off, each module is compiled again.
    third = compile_in(tmp_path, 'third', DLTUTORIALS_OBJECT_CACHE='0')
    assert third['compiled'] == first['compiled'] and third['reused'] == 0


def test_the_key_leaves_out_the_folders_and_keeps_flags_source_and_compiler(tmp_path):
    def compile_command(folder, flags=('-O3',)):
        # A compile folder's layout: the module in a folder of its own (named at random),
        # the precompiled header in a folder named by its own digest.
        module_folder = tmp_path / folder / ('tmp_' + folder)
        module_folder.mkdir(parents=True, exist_ok=True)
        source = module_folder / 'mod.cpp'
        if not source.exists():
            source.write_text('int f() { return 1; }\n')
        header_folder = tmp_path / folder / 'precompiled_headers' / '0123abcd'
        return (['g++', '-shared', '-I%s' % header_folder] + list(flags)
                + ['-o', str(module_folder / 'mabc.so'), str(source)])

    def key(command):
        library, source = object_cache.compilation(command)
        return object_cache.digest(command, library, source)

    here, there = compile_command('here'), compile_command('there')
    assert key(here) == key(there)
    assert key(compile_command('here', ('-O2',))) != key(here)
    (tmp_path / 'there' / 'tmp_there' / 'mod.cpp').write_text('int f() { return 2; }\n')
    assert key(there) != key(here)
    # Not a module compilation (the engine asks g++ for its version and flags): passed through.
    assert object_cache.compilation(['g++', '-E', '-v', '-']) is None
    assert object_cache.compilation(['g++', '-shared', '-o', 'x.so', 'other.cpp']) is None


def test_entries_unused_for_thirty_days_are_removed(tmp_path):
    old, recent = tmp_path / 'old.so', tmp_path / 'recent.so'
    for path in (old, recent):
        path.write_bytes(b'\x7fELF')
    now = time.time()
    os.utime(old, (now - 31 * 24 * 3600,) * 2)
    os.utime(recent, (now - 29 * 24 * 3600,) * 2)
    object_cache.prune(str(tmp_path), now=now)
    assert not old.exists() and recent.exists()


@pytest.mark.parametrize('status', [0, 1])
def test_only_successful_compilations_are_kept(tmp_path, status):
    source = tmp_path / 'mod.cpp'
    source.write_text('int f();\n')
    library = tmp_path / 'm1.so'
    calls = []

    def run_compiler(command):
        calls.append(command)
        if status == 0:
            library.write_bytes(b'library')
        return b'', b'error' if status else b'', status

    compile_or_reuse = object_cache.cached(run_compiler, lambda: str(tmp_path / 'store'))
    command = ['g++', '-shared', '-o', str(library), str(source)]
    assert compile_or_reuse(command)[2] == status
    library.unlink(missing_ok=True)
    assert compile_or_reuse(command)[2] == status
    assert len(calls) == (1 if status == 0 else 2)
    assert library.exists() == (status == 0)
