"""Deep Learning Tutorials on Theano: each model one readable, runnable module.

Importing the package chooses the engine (Theano 1.0.5, or PyTensor on
Python 3.12 and newer) and prepares it (see
:mod:`dltutorials.support.engine_setup`), so ``from dltutorials.logistic_sgd
import LogisticRegression`` works on a fresh machine with no
``THEANO_FLAGS`` and no ``~/.theanorc``.  ``python -m dltutorials`` says what
it chose.  :func:`load_model` reads back any model a tutorial saved.
"""
if __name__ == 'code':
    # This folder is the package dltutorials, but it is also named code/, so
    # Python, started in the repository's root, finds it for "import code",
    # the standard library's module (pdb imports it).  Hand that import the
    # standard library's module instead: Python returns what sys.modules
    # holds once this file has run.
    import os as _os
    import sys as _sys
    import sysconfig as _sysconfig
    from importlib import util as _util

    _spec = _util.spec_from_file_location(
        'code', _os.path.join(_sysconfig.get_paths()['stdlib'], 'code.py'))
    _sys.modules['code'] = _util.module_from_spec(_spec)
    _spec.loader.exec_module(_sys.modules['code'])
else:
    from dltutorials.support import engine_setup as _engine_setup
    from dltutorials.support.models import load_model

    __version__ = '0.1.0'
    __all__ = ['load_model']

    _engine_setup.configure()
