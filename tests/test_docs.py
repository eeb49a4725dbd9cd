"""The Sphinx pages build without warnings, so every literalinclude still finds its code."""
import subprocess
import sys

import pytest

from conftest import REPO


def test_docs_build_cleanly(tmp_path):
    pytest.importorskip('sphinx')
    done = subprocess.run([sys.executable, '-m', 'sphinx', '-W', '-q', '-b', 'html',
                           str(REPO / 'doc'), str(tmp_path / 'html')],
                          capture_output=True, text=True, timeout=600,
                          # Not from the repository root, where code/ would shadow the
                          # standard library's code module (pdb imports it).
                          cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    # The included code is really there (a broken :pyobject: fails the -W build too).
    assert 'patience_increase' in (tmp_path / 'html' / 'gettingstarted.html').read_text()
    assert 'flat_logistic_regression' in (tmp_path / 'html' / 'logreg.html').read_text()
