"""The quick-start notebook runs from top to bottom on the shipped sample."""
import shutil

import pytest

from conftest import REPO


def test_the_quickstart_notebook_runs(tmp_path):
    nbformat = pytest.importorskip('nbformat')
    nbclient = pytest.importorskip('nbclient')
    pytest.importorskip('ipykernel')
    path = shutil.copy(REPO / 'notebooks' / 'quickstart.ipynb', tmp_path)
    notebook = nbformat.read(path, as_version=4)
    # Raises CellExecutionError, naming the cell, if any cell fails.
    nbclient.NotebookClient(notebook, timeout=600, kernel_name='python3',
                            resources={'metadata': {'path': str(tmp_path)}}).execute()

    def text_of(cell):
        return ''.join(output.get('text', '') + str(output.get('data', {}).get('text/plain', ''))
                       for output in cell.get('outputs', []))

    printed = '\n'.join(text_of(cell) for cell in notebook.cells if cell.cell_type == 'code')
    # The training function showed its epochs as it trained, with no logging set up.
    assert 'epoch 5, minibatch 300/300, validation error' in printed
    assert 'test error of the best model' in printed and 'predicted:' in printed
    images = [output for cell in notebook.cells for output in cell.get('outputs', [])
              if 'image/png' in output.get('data', {})]
    assert len(images) == 3                  # the digits, the learning curve, the filters
    assert (tmp_path / 'quickstart_results' / 'mlp.npz').exists()


@pytest.mark.engine_independent
def test_the_model_selection_notebook_runs_a_search_and_shows_its_table_and_plots(tmp_path):
    nbformat = pytest.importorskip('nbformat')
    nbclient = pytest.importorskip('nbclient')
    pytest.importorskip('ipykernel')
    pytest.importorskip('distributed')
    path = shutil.copy(REPO / 'notebooks' / 'model_selection.ipynb', tmp_path)
    notebook = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(notebook, timeout=600, kernel_name='python3',
                            resources={'metadata': {'path': str(tmp_path)}}).execute()
    printed = '\n'.join(''.join(output.get('text', '') for output in cell.get('outputs', []))
                        for cell in notebook.cells if cell.cell_type == 'code')
    # the search's progress, one line per trial, then the table of the six trials
    assert printed.count(' ok in ') == 6 and 'best of 6 trials' in printed
    assert all('trial %d: learning_rate' % i in printed for i in range(6))
    images = [output for cell in notebook.cells for output in cell.get('outputs', [])
              if 'image/png' in output.get('data', {})]
    assert len(images) == 2
    assert (tmp_path / 'results' / 'notebook_search' / 'logistic_sgd.npz').exists()
