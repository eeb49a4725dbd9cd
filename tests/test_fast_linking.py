"""The engine's modules linked with gold where g++ can, never against libpython, and still right."""
import json
import os
import shutil
import subprocess
import sys

import numpy
import pytest

from dltutorials.support import fast_linking

pytestmark = pytest.mark.skipif(not sys.platform.startswith('linux') or not shutil.which('readelf'),
                                reason='the faster link is for Linux; readelf reads the libraries')

# Compiles a fused elementwise loop and a product in a compile folder of the test's own.
PROGRAM = '''
import json, numpy
from dltutorials.support.engine import theano, T
x = T.matrix('x')
f = theano.function([x], [T.tanh(x) * 3 + 1, T.dot(x, x.T)])
x = numpy.linspace(-1, 1, 6).reshape(2, 3).astype(theano.config.floatX)
print(json.dumps([value.tolist() for value in f(x)]))
'''


def compile_and_run(folder, cxx=None):
    flags = 'base_compiledir=%s' % folder + (',cxx=%s' % cxx if cxx else '')
    done = subprocess.run([sys.executable, '-c', PROGRAM], capture_output=True, text=True,
                          timeout=600, env=dict(os.environ, THEANO_FLAGS=flags,
                                                PYTENSOR_FLAGS=flags))
    assert done.returncode == 0, done.stderr[-3000:]
    tanh, product = json.loads(done.stdout.strip().splitlines()[-1])
    x = numpy.linspace(-1, 1, 6).reshape(2, 3)
    numpy.testing.assert_allclose(tanh, numpy.tanh(x) * 3 + 1, rtol=1e-5)
    numpy.testing.assert_allclose(product, x @ x.T, rtol=1e-5, atol=1e-6)
    # The modules of the graph (each in a folder tmp*; the engine's own helpers are elsewhere).
    libraries = list(folder.glob('compiledir_*/tmp*/*.so'))
    assert len(libraries) >= 2
    return libraries


def linked_by_gold(library):
    notes = subprocess.run(['readelf', '--notes', str(library)], capture_output=True, text=True)
    return 'NT_GNU_GOLD_VERSION' in notes.stdout


def needed(library):
    dynamic = subprocess.run(['readelf', '--dynamic', str(library)], capture_output=True,
                             text=True).stdout
    return [line.split('[')[1].rstrip(']') for line in dynamic.splitlines() if '(NEEDED)' in line]


def test_modules_link_with_gold_where_gxx_has_it_and_never_with_libpython(tmp_path):
    libraries = compile_and_run(tmp_path)
    gold = fast_linking.gold_links('g++')
    for library in libraries:
        assert linked_by_gold(library) == gold, library
        assert not any(name.startswith('libpython') for name in needed(library)), library


def test_a_gxx_without_gold_links_the_modules_as_before(tmp_path):
    # A g++ whose gold is missing, as in builds of binutils without it.
    compiler = tmp_path / 'g++-without-gold'
    compiler.write_text('#!/bin/sh\nfor argument in "$@"; do\n'
                        '  if [ "$argument" = -fuse-ld=gold ]; then\n'
                        '    echo "collect2: fatal error: cannot find \'ld\'" >&2; exit 1\n'
                        '  fi\ndone\nexec %s "$@"\n' % shutil.which('g++'))
    compiler.chmod(0o755)
    assert not fast_linking.gold_links(str(compiler))
    for library in compile_and_run(tmp_path / 'compiled', cxx=compiler):
        assert not linked_by_gold(library), library


def test_only_module_compilations_change_and_only_their_python_library():
    module = ['g++', '-shared', '-O3', '-fPIC', '-o', '/c/tmpa/m1.so', '/c/tmpa/mod.cpp',
              '-lpython3.11', '-lopenblas']
    faster = fast_linking.link_faster(module, ('-lpython3.11',))
    assert [a for a in faster if a != '-fuse-ld=gold'] == [
        'g++', '-shared', '-O3', '-fPIC', '-o', '/c/tmpa/m1.so', '/c/tmpa/mod.cpp', '-lopenblas']
    assert module[-2] == '-lpython3.11'                     # the engine's list is left alone
    # The engine asks g++ for its version and its flags; the precompiled header is no module.
    for other in (['g++', '-dumpversion'], ['g++', '-E', '-v', '-', '-lpython3.11'],
                  ['g++', '-O3', '-x', 'c++-header', 'common_headers.hpp', '-o', 'x.gch']):
        assert fast_linking.link_faster(other, ('-lpython3.11',)) == other
