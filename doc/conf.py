"""Sphinx configuration for the Deep Learning Tutorials."""
project = 'Deep Learning Tutorials on Theano'
author = 'the dltutorials authors'
copyright = '2026, the dltutorials authors; original tutorials by the LISA lab'
extensions = [
    'sphinx.ext.autodoc',
    'sphinx.ext.napoleon',
    'sphinx.ext.mathjax',
    # MathJax copied into the built pages, so the math renders offline.
    'sphinx-mathjax-offline',
]
exclude_patterns = ['_build']
# Furo's content column holds the code's 100-character lines at a 1280-pixel
# window without horizontal scrolling (alabaster's 940-pixel page did not).
html_theme = 'furo'
pygments_style = 'sphinx'
autodoc_member_order = 'bysource'
napoleon_google_docstring = False
html_static_path = ['_static']
html_css_files = ['wide.css']
html_title = project

# Without Theano (Python 3.12 and newer run PyTensor), the Theano-only
# support.fast_pooling is documented with Theano mocked.
import importlib.util  # noqa: E402

if importlib.util.find_spec('theano') is None:
    autodoc_mock_imports = ['theano']
