"""Compile each C module once for all the engine's compile folders: a g++ output cache.

The engine keeps the modules it compiles in a compile folder
(``~/.theano/compiledir_*``), and the tutorials give several processes a
folder of their own where sharing one breaks the engine's cache: each
worker of a model-selection search (see
:func:`dltutorials.support.parallel.use_own_compile_folder`), and each of
the test suite's processes.  Each folder compiled the same modules again:
347 of the 1,246 modules the test suite's two processes compiled, about
0.35 s of g++ each.

So the compiler's output is kept once more (a hard link where it can be),
in ``compiled_objects`` beside the compile folders (in ``base_compiledir``),
under a digest of everything g++ is given: the command line (with the
module's own folder left out and the compile folder's path written as a
placeholder), the source, and the compiler's own file.  A compilation whose digest is there
is not run again: the library is linked (or copied) to where g++ would have
written it.  The
engine's own cache, keys and checks are untouched; only ``g++`` is skipped.
Entries unused for 30 days are removed.  ``DLTUTORIALS_OBJECT_CACHE=0``
turns the cache off.
"""
import hashlib
import os
import shutil
import time

STORE_NAME = 'compiled_objects'
KEEP_SECONDS = 30 * 24 * 3600
#: Module compilations of this process: run by g++ ('compiled') or taken from the cache.
counts = {'compiled': 0, 'reused': 0}
_pruned = set()


def compilation(command):
    """``(library, source)`` that ``command`` (a g++ argument list) compiles, or None.

    Only the engine's module compilations (``-shared``, one ``mod.cpp``, ``-o``
    a library) are cached; other uses of the compiler pass through.
    """
    if '-shared' not in command or '-o' not in command:
        return None
    library = command[command.index('-o') + 1]
    sources = [argument for argument in command if os.path.basename(argument) == 'mod.cpp']
    if len(sources) != 1 or not library.endswith(('.so', '.dylib', '.pyd')):
        return None
    return library, sources[0]


def digest(command, library, source):
    """The cache key of a compilation: what g++ is given, less the paths of this compile folder.

    The module's own folder (``tmp...``) is left out, and the compile folder
    (the one above it) is written as ``<compiledir>``, wherever it appears.
    (The precompiled header's folder is beside the compile folders, named by
    a digest of the compiler, flags and headers: the same for all of them.)
    """
    compile_folder = os.path.dirname(os.path.dirname(library))
    parts = []
    for argument in command:
        if argument == library:
            argument = '<library>' + os.path.basename(library)
        elif argument == source:
            argument = '<source>'
        elif compile_folder and compile_folder in argument:
            argument = argument.replace(compile_folder, '<compiledir>')
        parts.append(argument)
    compiler = shutil.which(command[0]) or command[0]
    status = os.stat(compiler)
    hashed = hashlib.sha256()
    hashed.update(repr((parts, compiler, status.st_size, status.st_mtime_ns)).encode('utf-8'))
    with open(source, 'rb') as stream:
        hashed.update(stream.read())
    return hashed.hexdigest()


def _place(entry, library):
    """Put the cached library at ``library``: a hard link, else a copy."""
    if os.path.exists(library):
        os.remove(library)
    try:
        os.link(entry, library)
    except OSError:
        shutil.copyfile(entry, library)


def _keep(library, entry):
    """Store a freshly compiled library, whole or not at all (another process may read it).

    A hard link to the library where the file system allows (no second copy on disk), else a copy.
    """
    partial = '%s.%d.tmp' % (entry, os.getpid())
    try:
        try:
            os.link(library, partial)
        except OSError:
            shutil.copyfile(library, partial)
        os.replace(partial, entry)
    except OSError:
        if os.path.exists(partial):
            os.remove(partial)


def prune(store, now=None):
    """Remove the entries of ``store`` unused for ``KEEP_SECONDS``; once per process and store."""
    if store in _pruned:
        return
    _pruned.add(store)
    now = time.time() if now is None else now
    try:
        entries = list(os.scandir(store))
    except OSError:
        return
    for entry in entries:
        try:
            if now - entry.stat().st_mtime > KEEP_SECONDS:
                os.remove(entry.path)
        except OSError:
            pass


def cached(run_compiler, store_folder):
    """``run_compiler`` (the engine's ``output_subprocess_Popen``) with the cache in front.

    ``store_folder()`` names the cache's folder, asked at each compilation
    (the engine's configuration may change after import).
    """
    def compile_or_reuse(command, *args, **kwargs):
        target = compilation(command)
        if target is None:
            return run_compiler(command, *args, **kwargs)
        if os.environ.get('DLTUTORIALS_OBJECT_CACHE') == '0':
            counts['compiled'] += 1
            return run_compiler(command, *args, **kwargs)
        library, source = target
        store = store_folder()
        try:
            entry = os.path.join(store, digest(command, library, source) + '.so')
        except OSError:                              # no compiler or source file: g++ says so
            counts['compiled'] += 1
            return run_compiler(command, *args, **kwargs)
        if os.path.isfile(entry):
            try:
                _place(entry, library)
                os.utime(entry)                      # used: kept another 30 days
                counts['reused'] += 1
                return b'', b'', 0
            except OSError:
                pass                                 # compile it, as if not cached
        output = run_compiler(command, *args, **kwargs)
        counts['compiled'] += 1
        if output[2] == 0 and os.path.isfile(library):
            try:
                os.makedirs(store, exist_ok=True)
            except OSError:                          # a folder we cannot write: no cache
                return output
            prune(store)
            _keep(library, entry)
        return output
    compile_or_reuse.__wrapped__ = run_compiler
    return compile_or_reuse


def install(cmodule, config):
    """Put the cache in front of the engine's compiler calls (``cmodule.output_subprocess_Popen``)."""
    if not hasattr(cmodule.output_subprocess_Popen, '__wrapped__'):
        cmodule.output_subprocess_Popen = cached(
            cmodule.output_subprocess_Popen,
            lambda: os.path.join(str(config.base_compiledir), STORE_NAME))
