"""Sphinx configuration for the Deep Learning Tutorials."""
project = 'Deep Learning Tutorials on Theano'
author = 'the dltutorials authors'
copyright = '2026, the dltutorials authors; original tutorials by the LISA lab'
extensions = ['sphinx.ext.mathjax']
exclude_patterns = ['_build']
html_theme = 'alabaster'
pygments_style = 'sphinx'
