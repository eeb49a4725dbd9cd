"""Link the engine's C modules with less work: the gold linker where g++ has it, no libpython.

Each C module the engine builds (one per elementwise loop, product, loss ...)
is compiled and then linked into a shared library, and the test suite builds
about 900 of them from an empty compile folder.  Two things in the link step
cost time and buy nothing on Linux:

- the engine links every module against ``libpython3.x``, as a program that
  embeds Python would be; a module is only ever loaded into a running
  Python, whose symbols it finds there (the way setuptools links extension
  modules on Linux);
- GNU ld, the default linker, is slower than gold for these small libraries.

Without both, LeNet's first run (``--nkerns 4 6``, one epoch, 55 modules
compiled into an empty folder) spent 17.6 and 16.5 s in g++ instead of 22.8
and 20.6 s, and took 21.0 and 19.7 s instead of 26.5 and 24.3 s (g++ 12,
GNU ld 2.40, gold 1.16; 2 cores, each way twice, interleaved).  So module
compilations (the commands that
:func:`dltutorials.support.object_cache.compilation` recognises) are given
``-fuse-ld=gold``, where a first try shows that g++ can link with it (gold is
part of GNU binutils, but not of every build), and lose ``-lpython3.x``.
Other platforms and other uses of the compiler are left as they were.  The
modules' cache keys are the engine's own, so an existing compile folder is
used as it is.
"""
import functools
import subprocess
import sys

from dltutorials.support import object_cache

_gold = {}


def gold_links(compiler):
    """Whether ``compiler`` (g++) links a small shared library with ``-fuse-ld=gold``.

    Asked once per compiler and process (about 0.04 s), at its first module.
    """
    if compiler not in _gold:
        try:
            done = subprocess.run(
                [compiler, '-fuse-ld=gold', '-shared', '-fPIC', '-x', 'c', '-', '-o', '/dev/null'],
                input=b'int dltutorials_probe(void) { return 0; }\n', capture_output=True,
                timeout=60)
            _gold[compiler] = done.returncode == 0
        except (OSError, subprocess.SubprocessError):
            _gold[compiler] = False
    return _gold[compiler]


def link_faster(command, python_libraries):
    """``command`` (a g++ argument list) with the faster link, if it compiles a module on Linux.

    ``python_libraries``: the ``-l`` flags of Python's own library, as the engine writes them.
    """
    if not sys.platform.startswith('linux') or object_cache.compilation(command) is None:
        return command
    command = [argument for argument in command if argument not in python_libraries]
    if gold_links(command[0]):
        command.insert(1, '-fuse-ld=gold')
    return command


def install(cmodule):
    """Rewrite the engine's module compilations (``cmodule.output_subprocess_Popen``'s commands).

    Put in front of the object cache, so that its digests are of the commands g++ is given.
    """
    run_compiler = cmodule.output_subprocess_Popen
    if getattr(run_compiler, 'links_faster', False):
        return

    # Asked at the first compilation, not here: on PyTensor, std_libs() imports
    # setuptools (0.1 s), which a script that compiles nothing should not pay.
    @functools.lru_cache(maxsize=None)
    def python_libraries():
        return tuple('-l' + library for library in cmodule.std_libs())

    def run_linking_faster(command, *args, **kwargs):
        return run_compiler(link_faster(command, python_libraries()), *args, **kwargs)
    run_linking_faster.__wrapped__ = run_compiler
    run_linking_faster.links_faster = True
    cmodule.output_subprocess_Popen = run_linking_faster
