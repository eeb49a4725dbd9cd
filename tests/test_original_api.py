"""The original tutorial's test.py calls still run against these modules, imported as it did."""
import subprocess
import sys

from conftest import REPO

# The calls of the original code/test.py, with its imports: the modules by
# their file names, from the code/ folder.  Offline, 'mnist.pkl.gz' falls back
# to the shipped 8,000-digit sample (the download is pointed at a missing
# file so that it fails at once, whatever the network).
ORIGINAL_TEST_PY = '''
import sys
sys.path.insert(0, sys.argv[1])
from dltutorials.support import datasets
datasets.MNIST_PKL_URLS = ('file:///nonexistent/mnist.pkl.gz',)

import convolutional_mlp, dA, logistic_cg, logistic_sgd, mlp, SdA

logistic_sgd.sgd_optimization_mnist(n_epochs=10)
logistic_cg.cg_optimization_mnist(n_epochs=10)
mlp.test_mlp(n_epochs=1)
convolutional_mlp.evaluate_lenet5(n_epochs=1, nkerns=[5, 5])
dA.test_dA(training_epochs=1, output_folder='tmp_dA_plots')
SdA.test_SdA(pretraining_epochs=1, training_epochs=1, batch_size=300)
print('all original calls returned')
'''


def test_the_original_test_py_calls_run(tmp_path):
    done = subprocess.run([sys.executable, '-c', ORIGINAL_TEST_PY, str(REPO / 'code')],
                          capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert 'all original calls returned' in done.stdout
    # Each printed its progress (no logging set up: as the original's prints).
    assert done.stdout.count('Optimization complete') == 5     # sgd, cg, mlp, lenet, SdA
    for name in ('logistic_sgd.npz', 'logistic_cg.npz', 'mlp.npz', 'convolutional_mlp.npz',
                 'SdA.npz'):
        assert (tmp_path / 'results' / name).exists(), name
    assert (tmp_path / 'tmp_dA_plots' / 'filters_corruption_30.png').exists()
