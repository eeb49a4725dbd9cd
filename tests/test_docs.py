"""The Sphinx pages build without warnings, so every literalinclude still finds its code."""
import subprocess
import sys

import pytest

from conftest import REPO


def test_docs_build_cleanly(tmp_path):
    pytest.importorskip('sphinx')
    pytest.importorskip('furo')
    done = subprocess.run([sys.executable, '-m', 'sphinx', '-W', '-q', '-b', 'html',
                           str(REPO / 'doc'), str(tmp_path / 'html')],
                          capture_output=True, text=True, timeout=600,
                          # Not from the repository root, where code/ would shadow the
                          # standard library's code module (pdb imports it).
                          cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    html = tmp_path / 'html'
    # The included code is really there (a broken :pyobject: fails the -W build too).
    assert 'patience_increase' in (html / 'gettingstarted.html').read_text()
    assert 'flat_logistic_regression' in (html / 'logreg.html').read_text()
    # The math is rendered by the MathJax copied beside the pages, not fetched from a CDN.
    page = (html / 'lenet.html').read_text()
    assert 'src="_static/mathjax/tex-chtml.js' in page and 'cdn.' not in page
    assert (html / '_static' / 'mathjax' / 'tex-chtml.js').stat().st_size > 100000
    # The API page is generated from the docstrings.
    api = (html / 'api.html').read_text()
    assert 'dltutorials.load_model' in api and 'The model saved in' in api
