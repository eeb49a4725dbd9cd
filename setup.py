"""Install the tutorials as the package ``dltutorials`` (the code/ folder)."""
from setuptools import setup

setup(
    name='dltutorials',
    version='0.1.0',
    description='Deep Learning Tutorials on Theano, remade to run today',
    long_description=open('README.rst', encoding='utf-8').read(),
    long_description_content_type='text/x-rst',
    license='BSD-3-Clause',
    packages=['dltutorials'],
    package_dir={'dltutorials': 'code'},
    # Theano 1.0.5 is the last release; it does not install on Python 3.12
    # (no distutils) and needs numpy < 1.24 (np.bool and friends).
    python_requires='>=3.8,<3.12',
    install_requires=[
        'theano==1.0.5',
        'numpy>=1.21,<1.24',
        'scipy',
        'matplotlib',
        # Theano's scan imports theano.gpuarray, which imports pkg_resources,
        # gone from setuptools 81 on.
        'setuptools<81',
    ],
    extras_require={
        'test': ['pytest'],
        'doc': ['sphinx'],
    },
)
