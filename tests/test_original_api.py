"""The original tutorial's test.py calls still run against these modules, imported as it did."""
import subprocess
import sys

import pytest

from conftest import REPO, write_sample_cut
from dltutorials.support.engine import ENGINE

# The calls of the original code/test.py, with its imports: the modules by
# their file names, from the code/ folder.  Its 'mnist.pkl.gz' is a file of
# that name in the folder it runs in: the shipped real digits cut to 1,200 /
# 600 / 600, one minibatch or more of each split at the calls' batch sizes (up
# to 600).  All 8,000 made the test take 32 s of training.  (The download is
# pointed at a missing file, so that nothing is fetched whatever the network.)
ORIGINAL_TEST_PY = '''
import sys
sys.path.insert(0, sys.argv[1])
from dltutorials.support import datasets
datasets.MNIST_PKL_URLS = ('file:///nonexistent/mnist.pkl.gz',)

import convolutional_mlp, dA, DBN, logistic_cg, logistic_sgd, mlp, rbm, SdA

logistic_sgd.sgd_optimization_mnist(n_epochs=10)
logistic_cg.cg_optimization_mnist(n_epochs=10)
mlp.test_mlp(n_epochs=1)
convolutional_mlp.evaluate_lenet5(n_epochs=1, nkerns=[5, 5])
dA.test_dA(training_epochs=1, output_folder='tmp_dA_plots')
SdA.test_SdA(pretraining_epochs=1, training_epochs=1, batch_size=300)
DBN.test_DBN(pretraining_epochs=1, training_epochs=1, batch_size=300)
rbm.test_rbm(training_epochs=1, batch_size=300, n_chains=1, n_samples=1, n_hidden=20,
             output_folder='tmp_rbm_plots')
print('all original calls returned')
'''


def test_the_original_test_py_calls_run(tmp_path):
    write_sample_cut(tmp_path / 'mnist.pkl.gz', (1200, 600, 600))
    done = subprocess.run([sys.executable, '-c', ORIGINAL_TEST_PY, str(REPO / 'code')],
                          capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert 'all original calls returned' in done.stdout
    # Each printed its progress (no logging set up: as the original's prints).
    assert done.stdout.count('Optimization complete') == 6     # sgd, cg, mlp, lenet, SdA, DBN
    for name in ('logistic_sgd.npz', 'logistic_cg.npz', 'mlp.npz', 'convolutional_mlp.npz',
                 'SdA.npz', 'DBN.npz'):
        assert (tmp_path / 'results' / name).exists(), name
    assert (tmp_path / 'tmp_dA_plots' / 'filters_corruption_30.png').exists()
    for name in ('filters_at_epoch_1.png', 'samples.png', 'rbm.npz'):
        assert (tmp_path / 'tmp_rbm_plots' / name).exists(), name
    assert 'Mean test log-likelihood: ' in done.stdout and '(exact; log Z' in done.stdout


# The calls the original DBN.py makes into rbm.py, mlp.py and logistic_sgd.py,
# imported and made as it made them (its own pre-training step compiled with
# theano.In for the learning rate's default).
ORIGINAL_DBN_CALLS = '''
import sys
sys.path.insert(0, sys.argv[1])
import numpy
import theano
import theano.tensor as T
from theano.sandbox.rng_mrg import MRG_RandomStreams
from logistic_sgd import LogisticRegression, load_data
from mlp import HiddenLayer
from rbm import RBM

datasets = load_data(sys.argv[2])
train_set_x = datasets[0][0]
numpy_rng = numpy.random.RandomState(123)
theano_rng = MRG_RandomStreams(numpy_rng.randint(2 ** 30))
x = T.matrix('x')
layer_input, input_size, rbms, layers = x, 784, [], []
for size in (40, 30):
    layer = HiddenLayer(rng=numpy_rng, input=layer_input, n_in=input_size, n_out=size,
                        activation=T.nnet.sigmoid)
    rbms.append(RBM(numpy_rng=numpy_rng, theano_rng=theano_rng, input=layer_input,
                    n_visible=input_size, n_hidden=size, W=layer.W, hbias=layer.b))
    layers.append(layer)
    layer_input, input_size = layer.output, size
log_layer = LogisticRegression(input=layers[-1].output, n_in=30, n_out=10)

index, learning_rate = T.lscalar('index'), T.scalar('lr')
inputs = [index, theano.In(learning_rate, value=0.1)]
for rbm in rbms:
    cost, updates = rbm.get_cost_updates(learning_rate, persistent=None, k=1)
    fn = theano.function(inputs=inputs, outputs=cost, updates=updates,
                         givens={x: train_set_x[index * 50:(index + 1) * 50]})
    costs = [float(fn(index=i, lr=0.1)) for i in range(6) for _ in range(5)]
    assert costs[-1] < costs[0], costs
print('the original DBN calls ran')
'''


@pytest.mark.skipif(ENGINE != 'theano', reason='the original DBN.py imports theano, which does '
                    'not install on Python 3.12+')
def test_the_calls_of_the_original_dbn_run_against_our_modules(tmp_path, tiny_pkl):
    done = subprocess.run([sys.executable, '-c', ORIGINAL_DBN_CALLS, str(REPO / 'code'),
                           str(tiny_pkl)], capture_output=True, text=True, timeout=600,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert 'the original DBN calls ran' in done.stdout


# The original cA.py's training, as its test_cA wrote it (its cA built on a
# symbolic x with n_batchsize, the minibatch slice in givens, L_rec and
# L_jacob returned), then its test_cA called as a user calls it.
ORIGINAL_CA_CALLS = '''
import sys
sys.path.insert(0, sys.argv[1])
import numpy
import theano
import theano.tensor as T
from logistic_sgd import load_data
from utils import tile_raster_images
from cA import cA
import cA as cA_module

batch_size = 50
train_set_x = load_data(sys.argv[2])[0][0]
n_train_batches = train_set_x.get_value(borrow=True).shape[0] // batch_size
index = T.lscalar()
x = T.matrix('x')
ca = cA(numpy_rng=numpy.random.RandomState(123), input=x, n_visible=28 * 28, n_hidden=50,
        n_batchsize=batch_size)
cost, updates = ca.get_cost_updates(contraction_level=0.1, learning_rate=0.01)
train_ca = theano.function([index], [T.mean(ca.L_rec), ca.L_jacob], updates=updates,
                           givens={x: train_set_x[index * batch_size: (index + 1) * batch_size]})
epochs = []
for epoch in range(3):
    c_array = numpy.vstack([train_ca(batch_index) for batch_index in range(n_train_batches)])
    epochs.append(numpy.mean(c_array[:, 0]))
    print('Training epoch %d, reconstruction cost ' % epoch, epochs[-1],
          ' jacobian norm ', numpy.mean(numpy.sqrt(c_array[:, 1])))
assert epochs[-1] < epochs[0], epochs
tile_raster_images(X=ca.W.get_value(borrow=True).T, img_shape=(28, 28), tile_shape=(10, 10),
                   tile_spacing=(1, 1))
result = cA_module.test_cA(training_epochs=1, batch_size=300, dataset=sys.argv[2])
assert len(result['costs']) == 1
print('the original cA calls ran')
'''


@pytest.mark.skipif(ENGINE != 'theano', reason='the original cA.py imports theano, which does '
                    'not install on Python 3.12+')
def test_the_calls_of_the_original_cA_run_against_our_modules(tmp_path):
    done = subprocess.run([sys.executable, '-c', ORIGINAL_CA_CALLS, str(REPO / 'code'),
                           str(REPO / 'data' / 'mnist_sample.pkl.gz')], capture_output=True,
                          text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert 'the original cA calls ran' in done.stdout
    assert done.stdout.count('jacobian norm') == 3
    assert (tmp_path / 'cA_plots' / 'cA.npz').exists()
    assert (tmp_path / 'cA_plots' / 'cae_filters.png').exists()
