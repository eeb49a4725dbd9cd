"""Install the tutorials as the package ``dltutorials`` (the code/ folder).

The engine: Theano 1.0.5 up to Python 3.11, PyTensor from 3.12 on.
``DLTUTORIALS_ENGINE=pytensor pip install -e .`` installs PyTensor on 3.11
too (the two cannot share a virtualenv: Theano needs numpy < 1.24, PyTensor
numpy >= 2).
"""
import os

from setuptools import setup

if os.environ.get('DLTUTORIALS_ENGINE', '').strip().lower() == 'pytensor':
    ENGINE_REQUIRES = ['pytensor>=3.0.7,<4']
else:
    ENGINE_REQUIRES = [
        # Theano 1.0.5 is the last release; it does not install on Python 3.12
        # (no distutils) and needs numpy < 1.24 (np.bool and friends).  From
        # 3.12 on, the same tutorials run on PyTensor, Theano's continuation.
        'theano==1.0.5; python_version < "3.12"',
        'numpy>=1.21,<1.24; python_version < "3.12"',
        # Theano's scan imports theano.gpuarray, which imports pkg_resources,
        # gone from setuptools 81 on.
        'setuptools<81; python_version < "3.12"',
        'pytensor>=3.0.7,<4; python_version >= "3.12"',
    ]

# music21 from 9.7.1 on needs numpy >= 1.26, which Theano (Python 3.11 and
# older here) cannot take; pinned, so that pip does not download five
# 20 MB wheels to find that out.
MUSIC_REQUIRES = ['music21<=9.7.0; python_version < "3.12"', 'music21; python_version >= "3.12"',
                  'mido']

# Model selection runs its trials on Dask (a local cluster or a real one).
SEARCH_REQUIRES = ['distributed']

setup(
    name='dltutorials',
    version='0.1.0',
    description='Deep Learning Tutorials on Theano, remade to run today',
    long_description=open('README.rst', encoding='utf-8').read(),
    long_description_content_type='text/x-rst',
    license='BSD-3-Clause',
    packages=['dltutorials', 'dltutorials.support'],
    package_dir={'dltutorials': 'code'},
    python_requires='>=3.8',
    install_requires=ENGINE_REQUIRES + [
        'scipy',
        'matplotlib',
        # A BLAS for the engine's C code without system packages (used when
        # there is no system OpenBLAS).
        'scipy-openblas32>=0.3.27',
    ],
    extras_require={
        # The RNN-RBM's music: music21's corpus holds Bach's chorales; mido
        # reads and writes MIDI files.
        'music': MUSIC_REQUIRES,
        'search': SEARCH_REQUIRES,
        # nbclient and ipykernel run the quick-start notebook in the tests;
        # pytest-xdist runs the test files on every core (pytest.ini); the
        # RNN-RBM's tests read the chorales and write MIDI files; the model
        # selection's start Dask clusters.
        'test': ['pytest', 'pytest-xdist', 'nbclient', 'nbformat', 'ipykernel'] + MUSIC_REQUIRES
        + SEARCH_REQUIRES,
        # furo: a theme whose column holds the code's lines; the MathJax
        # copied into the pages renders the math offline.
        'doc': ['sphinx', 'furo', 'sphinx-mathjax-offline'],
    },
)
