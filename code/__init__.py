"""Deep Learning Tutorials on Theano: each model one readable, runnable module.

Importing the package chooses the engine (Theano 1.0.5, or PyTensor on
Python 3.12 and newer) and prepares it (see :mod:`dltutorials.support.engine_setup`),
so ``from dltutorials.logistic_sgd import LogisticRegression`` works on a
fresh machine with no ``THEANO_FLAGS`` and no ``~/.theanorc``.
``python -m dltutorials`` says what it chose.
"""
from dltutorials.support import engine_setup as _theano_setup

__version__ = '0.1.0'

_theano_setup.configure()
