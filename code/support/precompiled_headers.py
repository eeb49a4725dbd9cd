"""Compile the engine's C modules against a precompiled header: a model's first run compiles faster.

Every C module the engine compiles (one per elementwise loop, product,
loss ...; about 60 for LeNet's quick run, 650 for the test suite) starts with
the same six headers: ``Python.h``, NumPy's ``arrayobject.h`` ... and g++
spends most of each compilation parsing them: 0.63 s of a median module,
0.26 s with the parsed headers loaded from a precompiled header (measured
here on 16 of the test suite's modules, Theano's flags, g++ 12).

So the first module compiled builds that header once, with the module's own
flags, into ``precompiled_headers`` beside the compile folders (in
``~/.theano`` or ``~/.pytensor``, the engine's ``base_compiledir``), where
every compile folder finds it (a model-selection worker's, each test
process's: building it took 1.3 s each), and every compilation whose code
starts with those headers is given its folder first on the include path.  g++ then
reads ``Python.h.gch`` in place of ``Python.h`` and its followers, and only
where the precompiled header is valid for that compilation: it checks the
flags and macros that matter (``-fopenmp`` defines one: a second header) and
otherwise reads the headers as before, so a module compiles to the same code
either way.  g++ does not check that the headers themselves are unchanged, so
the folder is named by a digest of the compiler, the flags, the include
folders and the headers' sizes and times: a new NumPy or Python gets a new
one.  Nothing else changes: the modules' cache keys are the engine's own (an
existing cache is reused), and if the header cannot be built, modules
compile as before.
"""
import hashlib
import json
import logging
import os
import subprocess

from dltutorials.support import vector_math
from dltutorials.support.engine_setup import engine_name

logger = logging.getLogger(__name__)

# The first lines of every module the engine's CLinker writes.
if engine_name() == 'theano':
    from theano import config
    from theano.gof import cmodule
    COMMON_HEADERS = ('#include <Python.h>\n#include <iostream>\n#include "theano_mod_helper.h"\n'
                      '#include <math.h>\n#include <numpy/arrayobject.h>\n'
                      '#include <numpy/arrayscalars.h>\n')
    _remove_gxx_opt = lambda: config.cmodule.remove_gxx_opt   # noqa: E731
    _compiler_version = lambda: cmodule.GCC_compiler.version_str()   # noqa: E731
else:
    from pytensor import config
    from pytensor.link.c import cmodule
    COMMON_HEADERS = ('#include <Python.h>\n#include "pytensor_mod_helper.h"\n#include <math.h>\n'
                      '#include <numpy/arrayobject.h>\n#include <numpy/arrayscalars.h>\n'
                      '#include <numpy/npy_math.h>\n')
    _remove_gxx_opt = lambda: config.cmodule__remove_gxx_opt   # noqa: E731
    _compiler_version = lambda: config.cxx + ' ' + config.gcc_version_str   # noqa: E731
# Flags that do not change how the headers compile (linking, the BLAS's
# renamed symbols): left out of the precompiled header's, so that one header
# serves all modules.  g++ refuses the header where one does matter.
_LINK_ONLY = ('-Wl,', '-L', '-l')

_folders = {}


def header_flags(preargs):
    """The compile flags of ``preargs`` (a module's) that the precompiled header is built with."""
    return [flag for flag in preargs if not flag.startswith(_LINK_ONLY) and
            not (flag.startswith('-D') and not flag.startswith('-DNPY_')) and
            not (flag.startswith('-O') and _remove_gxx_opt())]


def _fingerprint(include_dirs):
    """Size and time of the common headers where the include folders hold them."""
    found = []
    for name in ('Python.h', 'theano_mod_helper.h', 'pytensor_mod_helper.h',
                 os.path.join('numpy', 'arrayobject.h'),
                 os.path.join('numpy', '_multiarray_api.h')):
        for folder in include_dirs:
            path = os.path.join(folder, name)
            if os.path.isfile(path):
                status = os.stat(path)
                found.append([path, status.st_size, status.st_mtime_ns])
                break
    return found


def precompiled_header_folder(src_code, include_dirs, preargs):
    """The folder holding ``Python.h.gch`` for this module's flags, built if needed; or None.

    None where the module does not start with the common headers, or the
    header could not be built (the reason is logged once, at debug level).
    ``Python.h.gch`` is a folder of headers that differ in OpenMP only (its
    macro ``_OPENMP``): g++ takes the first one valid.
    """
    if not src_code.lstrip().startswith(COMMON_HEADERS):
        return None
    flags = header_flags(preargs)
    variant = 'openmp' if '-fopenmp' in flags else 'serial'
    include_dirs = [folder for folder in include_dirs if folder] + cmodule.std_include_dirs()
    description = json.dumps([config.cxx, _compiler_version(),
                              [flag for flag in flags if flag != '-fopenmp'],
                              include_dirs, _fingerprint(include_dirs)])
    digest = hashlib.sha256(description.encode('utf-8')).hexdigest()[:20]
    if (digest, variant) not in _folders:
        _folders[digest, variant] = _build(
            os.path.join(str(config.base_compiledir), 'precompiled_headers', digest), variant,
            flags, include_dirs)
    return _folders[digest, variant]


def _build(folder, variant, flags, include_dirs):
    header = os.path.join(folder, 'Python.h.gch', variant + '.gch')
    if os.path.isfile(header):
        return folder
    os.makedirs(os.path.dirname(header), exist_ok=True)
    # This process's own source and output files: processes beside us (other
    # compile folders, a search's workers) may build the same header at once.
    source = os.path.join(folder, 'common_headers.%d.hpp' % os.getpid())
    partial = '%s.%d.tmp' % (header, os.getpid())
    with open(source, 'w') as stream:
        stream.write(COMMON_HEADERS)
    # -g as the engine compiles every module with it: g++ wants the same debug info.
    command = ([config.cxx, '-g'] + flags + ['-I' + path for path in include_dirs] +
               ['-x', 'c++-header', source, '-o', partial])
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.SubprocessError) as error:
        logger.debug('no precompiled header: %s', error)
        done = None
    finally:
        os.remove(source)
    if done is None or done.returncode != 0:
        if done is not None:
            logger.debug('no precompiled header: %s', done.stderr[-2000:])
        if os.path.exists(partial):
            os.remove(partial)
        return None
    os.replace(partial, header)          # whole or not at all, for a process beside us
    return folder


_engine_compile_str = cmodule.GCC_compiler.compile_str


def compile_str(module_name, src_code, location=None, include_dirs=None, lib_dirs=None,
                libs=None, preargs=None, py_module=True, hide_symbols=True):
    """The engine's ``GCC_compiler.compile_str``, the precompiled header's folder searched first.

    The code also gets the declarations of :mod:`~dltutorials.support.vector_math`.
    """
    preargs = list(preargs or [])
    src_code = vector_math.with_declarations(src_code, preargs, COMMON_HEADERS)
    folder = precompiled_header_folder(src_code, include_dirs or [], preargs)
    if folder:
        preargs.insert(0, '-I' + folder)
    return _engine_compile_str(module_name, src_code, location, include_dirs, lib_dirs, libs,
                               preargs, py_module, hide_symbols)


cmodule.GCC_compiler.compile_str = staticmethod(compile_str)
