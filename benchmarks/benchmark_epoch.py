"""Time one training epoch of each tutorial model on each engine and in PyTorch, same CPU, same run.

For each model and dtype, every engine and PyTorch train the same
architecture with the same batch size on the same 50,000 random MNIST-shaped
examples.  Each engine runs in a worker process of its own (Theano and
PyTensor need different numpy versions, so they live in different
virtualenvs), PyTorch in this one.  The runs are interleaved (each engine,
then PyTorch, round after round) for ``--rounds`` rounds, because these
machines are shared and noisy; the table gives the median seconds per epoch
and the median of the per-round ratios engine / PyTorch (below 1: the
engine is faster).  The header gives each engine's BLAS and kernel.

    pip install torch==2.13.0 'setuptools<81'   # benchmark-only; a CPU wheel (torch alone
                                                # upgrades setuptools, which breaks Theano's scan)
    python benchmarks/benchmark_epoch.py --rounds 5
    # Theano here, and PyTensor (C and Numba backends) from a Python 3.12 virtualenv:
    python benchmarks/benchmark_epoch.py --engine theano \\
        pytensor-cvm=.venv312/bin/python pytensor-numba=.venv312/bin/python

Later models add themselves to ``MODELS``: a name, the batch size of the
tutorial, and two builders that return a function running one epoch.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

import numpy

# Before dltutorials adds its defaults to it: the workers choose their own.
USER_ENVIRON = dict(os.environ)

import dltutorials  # noqa: E402  (sets the engine's defaults before it is imported)
from dltutorials.support.engine import T, change_flags, theano  # noqa: E402

N_EXAMPLES = 50000
N_IN, N_OUT = 28 * 28, 10


def random_mnist(dtype, seed=0):
    rng = numpy.random.RandomState(seed)
    x = rng.uniform(0, 1, (N_EXAMPLES, N_IN)).astype(dtype)
    y = rng.randint(0, N_OUT, N_EXAMPLES).astype('int64')
    return x, y


# ---------------------------------------------------------------- logistic regression

def theano_epoch(build, x_value, y_value, batch_size, learning_rate):
    """One epoch of a tutorial model's own compiled training function.

    ``build(datasets, batch_size, learning_rate)`` builds the model and
    returns its training function ``train_fn(minibatch_index)``, compiled
    the tutorial's way (for the supervised models, the first of
    ``(train_fn, validate_fn, test_fn)``).
    """
    from dltutorials.data_loading import shared_dataset

    with change_flags(floatX=str(x_value.dtype)):
        train = shared_dataset((x_value, y_value))
        small = shared_dataset((x_value[:batch_size], y_value[:batch_size]))
        train_fn = build([train, small, small], batch_size, learning_rate)
    n_batches = N_EXAMPLES // batch_size

    def epoch():
        for index in range(n_batches):
            train_fn(index)
    return epoch


def classification_cost(model, x, y):
    import torch
    return torch.nn.functional.cross_entropy(model(x), y)


def torch_epoch(model, x_value, y_value, batch_size, learning_rate, cost=classification_cost,
                optimizer='SGD'):
    """One epoch of minibatch SGD (or ``optimizer``, a torch.optim name) in PyTorch on ``cost``."""
    import torch

    x = torch.from_numpy(x_value)
    y = torch.from_numpy(y_value)
    model = model.to(getattr(torch, str(x_value.dtype)))
    optimizer = getattr(torch.optim, optimizer)(
        [p for p in model.parameters() if p.requires_grad], lr=learning_rate)
    n_batches = N_EXAMPLES // batch_size

    def epoch():
        model.train()           # dropout and batch normalization in their training mode
        for index in range(n_batches):
            batch = slice(index * batch_size, (index + 1) * batch_size)
            optimizer.zero_grad()
            cost(model, x[batch], y[batch]).backward()
            optimizer.step()
    return epoch


# ---------------------------------------------------------------- logistic regression

def theano_logistic(x_value, y_value, batch_size):
    from dltutorials.logistic_sgd import LogisticRegression, build_sgd_functions

    def build(datasets, batch_size, learning_rate):
        x, y = T.matrix('x'), T.ivector('y')
        model = LogisticRegression(x, N_IN, N_OUT)
        return build_sgd_functions(model, x, y, datasets, batch_size, learning_rate)[0]
    return theano_epoch(build, x_value, y_value, batch_size, 0.13)


def torch_logistic(x_value, y_value, batch_size):
    import torch
    return torch_epoch(torch.nn.Linear(N_IN, N_OUT), x_value, y_value, batch_size, 0.13)


# ---------------------------------------------------------------- multilayer perceptron

def theano_mlp(x_value, y_value, batch_size):
    from dltutorials.mlp import MLP, build_mlp_functions

    def build(datasets, batch_size, learning_rate):
        x, y = T.matrix('x'), T.ivector('y')
        model = MLP(numpy.random.RandomState(1234), x, N_IN, 500, N_OUT)
        return build_mlp_functions(model, x, y, datasets, batch_size, learning_rate, 0.0,
                                   0.0001)[0]
    return theano_epoch(build, x_value, y_value, batch_size, 0.01)


def torch_mlp(x_value, y_value, batch_size):
    from torch import nn
    model = nn.Sequential(nn.Linear(N_IN, 500), nn.Tanh(), nn.Linear(500, N_OUT))
    weights = [model[0].weight, model[2].weight]   # the same L2 penalty, weights only
    return torch_epoch(model, x_value, y_value, batch_size, 0.01,
                       cost=lambda model, x, y: classification_cost(model, x, y)
                       + 0.0001 * sum((w ** 2).sum() for w in weights))


def theano_mlp_adam(x_value, y_value, batch_size):
    """The MLP with tricks: 784-512-512 ReLU, He init, dropout 0.2, Adam."""
    from dltutorials.mlp import MLP, build_mlp_functions

    def build(datasets, batch_size, learning_rate):
        x, y = T.matrix('x'), T.ivector('y')
        model = MLP(numpy.random.RandomState(1234), x, N_IN, [512, 512], N_OUT,
                    activation='relu', init='he_uniform', dropout=0.2)
        return build_mlp_functions(model, x, y, datasets, batch_size, learning_rate, 0.0, 0.0,
                                   optimizer='adam')[0]
    return theano_epoch(build, x_value, y_value, batch_size, 0.001)


def torch_mlp_adam(x_value, y_value, batch_size):
    from torch import nn
    model = nn.Sequential(nn.Linear(N_IN, 512), nn.ReLU(), nn.Dropout(0.2),
                          nn.Linear(512, 512), nn.ReLU(), nn.Dropout(0.2),
                          nn.Linear(512, N_OUT))
    return torch_epoch(model, x_value, y_value, batch_size, 0.001, optimizer='Adam')


# ---------------------------------------------------------------- LeNet

def theano_lenet(x_value, y_value, batch_size):
    from dltutorials.convolutional_mlp import LeNet5, build_lenet_functions

    def build(datasets, batch_size, learning_rate):
        x, y = T.matrix('x'), T.ivector('y')
        model = LeNet5(numpy.random.RandomState(23455), x, nkerns=(20, 50))
        return build_lenet_functions(model, x, y, datasets, batch_size, learning_rate)[0]
    return theano_epoch(build, x_value, y_value, batch_size, 0.1)


def torch_lenet(x_value, y_value, batch_size):
    from torch import nn
    model = nn.Sequential(
        nn.Unflatten(1, (1, 28, 28)),
        nn.Conv2d(1, 20, 5), nn.MaxPool2d(2), nn.Tanh(),
        nn.Conv2d(20, 50, 5), nn.MaxPool2d(2), nn.Tanh(),
        nn.Flatten(), nn.Linear(50 * 4 * 4, 500), nn.Tanh(), nn.Linear(500, N_OUT))
    return torch_epoch(model, x_value, y_value, batch_size, 0.1)


def theano_lenet_bn(x_value, y_value, batch_size):
    """The conv net with tricks: 32 and 64 5x5 filters and 256 units, batch norm, ReLU,
    dropout 0.5 on the dense layer, Adam."""
    from dltutorials.convolutional_mlp import LeNet5, build_lenet_functions

    def build(datasets, batch_size, learning_rate):
        x, y = T.matrix('x'), T.ivector('y')
        model = LeNet5(numpy.random.RandomState(23455), x, nkerns=(32, 64), n_hidden=256,
                       activation='relu', init='he_normal', dropout=0.5, batch_norm=True)
        return build_lenet_functions(model, x, y, datasets, batch_size, learning_rate,
                                     optimizer='adam')[0]
    return theano_epoch(build, x_value, y_value, batch_size, 0.001)


def torch_lenet_bn(x_value, y_value, batch_size):
    from torch import nn
    # The same order as LeNetConvPoolLayer's: convolution, pooling, batch norm, ReLU.
    model = nn.Sequential(
        nn.Unflatten(1, (1, 28, 28)),
        nn.Conv2d(1, 32, 5), nn.MaxPool2d(2), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Conv2d(32, 64, 5), nn.MaxPool2d(2), nn.BatchNorm2d(64), nn.ReLU(),
        nn.Flatten(), nn.Linear(64 * 4 * 4, 256), nn.BatchNorm1d(256), nn.ReLU(),
        nn.Dropout(0.5), nn.Linear(256, N_OUT))
    return torch_epoch(model, x_value, y_value, batch_size, 0.001, optimizer='Adam')


# ---------------------------------------------------------------- denoising autoencoders

def theano_dA(x_value, y_value, batch_size):
    """The dA of dA.py: 784 -> 500, 30 % corruption, learning rate 0.1."""
    from dltutorials.dA import build_dA_function, dA

    def build(datasets, batch_size, learning_rate):
        model = dA(numpy.random.RandomState(123), n_visible=N_IN, n_hidden=500)
        return build_dA_function(model, datasets[0][0], batch_size, 0.3, learning_rate)
    return theano_epoch(build, x_value, y_value, batch_size, 0.1)


def theano_sda_layer(layer):
    """Pre-training of SdA layer ``layer`` ([500, 500], corruption 0.1 / 0.2, rate 0.01)."""
    def runner(x_value, y_value, batch_size):
        from dltutorials.SdA import SdA

        def build(datasets, batch_size, learning_rate):
            model = SdA(numpy.random.RandomState(89677), n_ins=N_IN,
                        hidden_layers_sizes=[500, 500], n_outs=N_OUT,
                        corruption_levels=[0.1, 0.2])
            train_fn = model.pretraining_functions(datasets[0][0], batch_size)[layer]
            level = model.corruption_levels[layer]
            return lambda index: train_fn(index, corruption=level, lr=learning_rate)
        return theano_epoch(build, x_value, y_value, batch_size, 0.01)
    return runner


def torch_denoising_autoencoder(n_visible, n_hidden, corruption_level, below=None):
    """A dA in PyTorch: tied weights, sigmoid units, the same cross-entropy, summed per example.

    ``below`` (an nn.Module, frozen) maps the data to this dA's input, as the
    lower layers of an SdA do in pre-training.
    """
    import torch
    from torch import nn

    class DenoisingAutoencoder(nn.Module):
        def __init__(self):
            super().__init__()
            bound = 4 * numpy.sqrt(6.0 / (n_visible + n_hidden))
            self.W = nn.Parameter(torch.empty(n_visible, n_hidden).uniform_(-bound, bound))
            self.b = nn.Parameter(torch.zeros(n_hidden))
            self.b_prime = nn.Parameter(torch.zeros(n_visible))
            self.below = below
            if below is not None:
                below.requires_grad_(False)

        def cost(self, x):
            if self.below is not None:
                with torch.no_grad():
                    x = self.below(x)
            keep = torch.rand_like(x) >= corruption_level
            hidden = torch.sigmoid((x * keep) @ self.W + self.b)
            logits = hidden @ self.W.t() + self.b_prime
            return nn.functional.binary_cross_entropy_with_logits(
                logits, x, reduction='sum') / x.shape[0]

    return DenoisingAutoencoder()


def torch_dA(x_value, y_value, batch_size):
    model = torch_denoising_autoencoder(N_IN, 500, 0.3)
    return torch_epoch(model, x_value, y_value, batch_size, 0.1,
                       cost=lambda model, x, y: model.cost(x))


def torch_sda_layer(layer):
    def runner(x_value, y_value, batch_size):
        from torch import nn
        below = nn.Sequential(nn.Linear(N_IN, 500), nn.Sigmoid()) if layer == 1 else None
        model = torch_denoising_autoencoder(500 if layer else N_IN, 500, [0.1, 0.2][layer],
                                            below)
        return torch_epoch(model, x_value, y_value, batch_size, 0.01,
                           cost=lambda model, x, y: model.cost(x))
    return runner


# ---------------------------------------------------------------- RBMs and DBNs

def theano_rbm_pcd15(x_value, y_value, batch_size):
    """The RBM of rbm.py: 784 -> 500, PCD-15 (20 persistent chains), rate 0.1."""
    from dltutorials.rbm import RBM, build_rbm_function

    def build(datasets, batch_size, learning_rate):
        model = RBM(n_visible=N_IN, n_hidden=500, numpy_rng=numpy.random.RandomState(123))
        return build_rbm_function(model, datasets[0][0], batch_size, learning_rate, k=15,
                                  persistent=True)
    return theano_epoch(build, x_value, y_value, batch_size, 0.1)


def theano_dbn_layer(layer):
    """CD-1 pre-training of DBN layer ``layer`` ([500, 500], rate 0.01)."""
    def runner(x_value, y_value, batch_size):
        from dltutorials.DBN import DBN

        def build(datasets, batch_size, learning_rate):
            model = DBN(numpy.random.RandomState(123), n_ins=N_IN, hidden_layers_sizes=[500, 500],
                        n_outs=N_OUT)
            train_fn = model.pretraining_functions(datasets[0][0], batch_size, k=1)[layer]
            return lambda index: train_fn(index, lr=learning_rate)
        return theano_epoch(build, x_value, y_value, batch_size, 0.01)
    return runner


def torch_rbm(n_visible, n_hidden, k, persistent, batch_size, below=None):
    """An RBM in PyTorch trained as rbm.py trains it: the same cost, chain and monitor.

    The gradient is that of mean F(data) - mean F(chain end), the chain's end
    detached; PCD keeps the hidden states between updates and monitors the
    one-bit pseudo-likelihood, CD monitors the reconstruction cross-entropy.
    ``below`` (frozen) maps the data to this RBM's input, as in a DBN.
    """
    import torch
    from torch import nn

    class RBM(nn.Module):
        def __init__(self):
            super().__init__()
            bound = 4 * numpy.sqrt(6.0 / (n_visible + n_hidden))
            self.W = nn.Parameter(torch.empty(n_visible, n_hidden).uniform_(-bound, bound))
            self.hbias = nn.Parameter(torch.zeros(n_hidden))
            self.vbias = nn.Parameter(torch.zeros(n_visible))
            self.below = below
            if below is not None:
                below.requires_grad_(False)
            self.chain = torch.zeros(batch_size, n_hidden) if persistent else None
            self.bit = 0

        def free_energy(self, v):
            return -v @ self.vbias - nn.functional.softplus(v @ self.W + self.hbias).sum(dim=1)

        def cost(self, x):
            if self.below is not None:
                with torch.no_grad():
                    x = self.below(x)
            with torch.no_grad():
                h = (torch.bernoulli(torch.sigmoid(x @ self.W + self.hbias))
                     if self.chain is None else self.chain.to(x.dtype))
                for _ in range(k):
                    pre_v = h @ self.W.t() + self.vbias
                    v = torch.bernoulli(torch.sigmoid(pre_v))
                    h = torch.bernoulli(torch.sigmoid(v @ self.W + self.hbias))
                if self.chain is not None:
                    self.chain = h
                    rounded = torch.round(x)
                    flipped = rounded.clone()
                    flipped[:, self.bit] = 1 - flipped[:, self.bit]
                    self.bit = (self.bit + 1) % n_visible
                    monitor = (n_visible * nn.functional.softplus(
                        self.free_energy(rounded) - self.free_energy(flipped))).mean()
                else:
                    monitor = nn.functional.binary_cross_entropy_with_logits(
                        pre_v, x, reduction='sum') / x.shape[0]
            monitor.item()      # as the tutorial's step returns its cost
            return self.free_energy(x).mean() - self.free_energy(v).mean()

    return RBM()


def torch_rbm_pcd15(x_value, y_value, batch_size):
    model = torch_rbm(N_IN, 500, 15, True, batch_size)
    return torch_epoch(model, x_value, y_value, batch_size, 0.1,
                       cost=lambda model, x, y: model.cost(x))


def torch_dbn_layer(layer):
    def runner(x_value, y_value, batch_size):
        from torch import nn
        below = nn.Sequential(nn.Linear(N_IN, 500), nn.Sigmoid()) if layer == 1 else None
        model = torch_rbm(500 if layer else N_IN, 500, 1, False, batch_size, below)
        return torch_epoch(model, x_value, y_value, batch_size, 0.01,
                           cost=lambda model, x, y: model.cost(x))
    return runner


#: name -> (tutorial batch size, Theano builder, PyTorch builder)
# ---------------------------------------------------------------- recurrent networks
#
# A scan over time is far slower per example than the models above, so these
# rows time RECURRENT_MINIBATCHES minibatches, not 50,000 examples: their
# "s/ep" is seconds per that many minibatches (forward, backward and an Adam
# step with the gradient clipped to norm 1, as the scripts train).  Fifty,
# not ten: after the quiet pause the first minibatches run slower (threads
# asleep, caches cold), which over ten minibatches of the fused op added
# 20-50 % to the engines' time.

RECURRENT_MINIBATCHES = 50
TORCH_RECURRENT = {'lstm': 'LSTM', 'gru': 'GRU', 'rnn': 'RNN'}


def theano_recurrent_step(cost_of, x_batch, y_batch):
    """The scripts' two-step Adam update (lstm.two_step) on the network ``cost_of()`` builds.

    ``cost_of()`` returns ``(x, y, cost, params)``.
    """
    from dltutorials import lstm
    from dltutorials.updates import adam, clip_grad_norm

    x, y, cost, params = cost_of()
    grads = clip_grad_norm(T.grad(cost, params), params, 1.0)
    tparams = dict((p.name + str(k), p) for k, p in enumerate(params))
    f_grad_shared, f_update = lstm.two_step(adam, T.scalar('lr'), tparams, grads, x, None, y,
                                            cost)

    def epoch():
        for _ in range(RECURRENT_MINIBATCHES):
            f_grad_shared(x_batch, y_batch)
            f_update(0.001)
    return epoch


def torch_recurrent_step(model, cost, x_batch, y_batch):
    import torch
    x, y = torch.from_numpy(x_batch), torch.from_numpy(y_batch)
    model = model.to(getattr(torch, str(x_batch.dtype)))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)

    def epoch():
        for _ in range(RECURRENT_MINIBATCHES):
            optimizer.zero_grad()
            cost(model, x, y).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
    return epoch


def image_rows(x_value, y_value, batch_size):
    return x_value[:batch_size], y_value[:batch_size]


def theano_rows(encoder, loop='fused'):
    """The row-by-row classifier of lstm.py: 28 steps of 28 pixels, 128 units, mean state."""
    def build(x_value, y_value, batch_size):
        from dltutorials import lstm
        options = dict(dim_proj=128, ydim=N_OUT, encoder=encoder, use_dropout=False,
                       n_words=None, image_rows=28, n_in=28, rng=numpy.random.RandomState(1),
                       loop=loop)

        def cost_of():
            with change_flags(floatX=str(x_value.dtype)):
                tparams = lstm.init_tparams(lstm.init_params(options, options['rng']))
                network, x, mask, y = lstm.build_classifier(tparams, options)
            return x, y, network.negative_log_likelihood(y), network.params
        return theano_recurrent_step(cost_of, *image_rows(x_value, y_value, batch_size))
    return build


def torch_rows(encoder):
    def build(x_value, y_value, batch_size):
        from torch import nn

        class RowReader(nn.Module):
            def __init__(self):
                super().__init__()
                self.recurrent = getattr(nn, TORCH_RECURRENT[encoder])(28, 128)
                self.classifier = nn.Linear(128, N_OUT)

            def forward(self, images):
                rows = images.reshape(-1, 28, 28).transpose(0, 1)   # (time, batch, 28)
                return self.classifier(self.recurrent(rows)[0].mean(dim=0))
        return torch_recurrent_step(RowReader(), classification_cost,
                                    *image_rows(x_value, y_value, batch_size))
    return build


N_CHARACTERS, N_CHAR_STEPS = 65, 100


def characters(dtype, batch_size):
    """One minibatch of the language model: one-hot characters (time, batch, 65), next ones."""
    rng = numpy.random.RandomState(0)
    text = rng.randint(0, N_CHARACTERS, size=(N_CHAR_STEPS + 1, batch_size))
    one_hot = numpy.eye(N_CHARACTERS, dtype=dtype)[text[:-1]]
    return one_hot, text[1:].astype('int64')


def theano_chars(encoder, loop='fused'):
    """A character-level language model's step: one-hot input, 256 units, softmax per step."""
    def build(x_value, y_value, batch_size):
        from dltutorials.recurrent import ENCODERS
        inputs, targets = characters(str(x_value.dtype), batch_size)

        def cost_of():
            with change_flags(floatX=str(x_value.dtype)):
                x, y = T.tensor3('x'), T.lmatrix('y')
                rng = numpy.random.RandomState(1)
                layer = ENCODERS[encoder](rng, x, N_CHARACTERS, 256, loop=loop)
                W = theano.shared(numpy.zeros((256, N_CHARACTERS), dtype=x_value.dtype),
                                  name='W')
                b = theano.shared(numpy.zeros(N_CHARACTERS, dtype=x_value.dtype), name='b')
                scores = T.dot(layer.output.reshape((-1, 256)), W) + b
                probabilities = T.nnet.softmax(scores)
                flat = y.flatten()
                cost = -T.mean(T.log(probabilities[T.arange(flat.shape[0]), flat]))
            return x, y, cost, layer.params + [W, b]
        return theano_recurrent_step(cost_of, inputs, targets)
    return build


def torch_chars(encoder):
    def build(x_value, y_value, batch_size):
        from torch import nn
        inputs, targets = characters(str(x_value.dtype), batch_size)

        class CharModel(nn.Module):
            def __init__(self):
                super().__init__()
                self.recurrent = getattr(nn, TORCH_RECURRENT[encoder])(N_CHARACTERS, 256)
                self.decoder = nn.Linear(256, N_CHARACTERS)

            def forward(self, x):
                return self.decoder(self.recurrent(x)[0])

        def cost(model, x, y):
            return nn.functional.cross_entropy(model(x).reshape(-1, N_CHARACTERS),
                                               y.reshape(-1))
        return torch_recurrent_step(CharModel(), cost, inputs, targets)
    return build


#: Steps (both players) timed per row of the GANs: an epoch is minutes.
GAN_STEPS = 20


def theano_gan(architecture):
    """gan.py's two training steps, D then G, on minibatches of the random images."""
    def build(x_value, y_value, batch_size):
        from dltutorials import gan
        with change_flags(floatX=str(x_value.dtype)):
            images = theano.shared(x_value[:batch_size * GAN_STEPS])
            network = gan.GAN(numpy.random.RandomState(1), architecture=architecture)
            train_discriminator, train_generator = gan.build_gan_functions(network, images,
                                                                           batch_size)

        def epoch():
            for index in range(GAN_STEPS):
                train_discriminator(index)
                train_generator()
        return epoch
    return build


def torch_gan(architecture):
    """The same two networks and steps in PyTorch (Adam 2e-4, beta1 0.5, each its own)."""
    def build(x_value, y_value, batch_size):
        import torch
        from torch import nn
        m = 32
        if architecture == 'dcgan':
            generator = nn.Sequential(
                nn.Linear(100, 2 * m * 49), nn.BatchNorm1d(2 * m * 49), nn.ReLU(),
                nn.Unflatten(1, (2 * m, 7, 7)),
                nn.ConvTranspose2d(2 * m, m, 4, 2, 1), nn.BatchNorm2d(m), nn.ReLU(),
                nn.ConvTranspose2d(m, 1, 4, 2, 1), nn.Tanh(), nn.Flatten())
            discriminator = nn.Sequential(
                nn.Unflatten(1, (1, 28, 28)), nn.Conv2d(1, m, 4, 2, 1), nn.LeakyReLU(0.2),
                nn.Conv2d(m, 2 * m, 4, 2, 1), nn.BatchNorm2d(2 * m), nn.LeakyReLU(0.2),
                nn.Flatten(), nn.Linear(2 * m * 49, 1))
        else:
            class Maxout(nn.Module):
                def forward(self, x):
                    return x.reshape(len(x), 240, 5).max(dim=2).values
            generator = nn.Sequential(nn.Linear(100, 1200), nn.ReLU(), nn.Linear(1200, 1200),
                                      nn.ReLU(), nn.Linear(1200, 784), nn.Sigmoid())
            discriminator = nn.Sequential(
                nn.Dropout(0.2), nn.Linear(784, 1200), Maxout(), nn.Dropout(0.5),
                nn.Linear(240, 1200), Maxout(), nn.Dropout(0.5), nn.Linear(240, 1))
        dtype = getattr(torch, str(x_value.dtype))
        generator, discriminator = generator.to(dtype), discriminator.to(dtype)
        d_optimizer = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
        g_optimizer = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
        images = torch.from_numpy(x_value[:batch_size * GAN_STEPS])
        softplus = nn.functional.softplus

        def epoch():
            for index in range(GAN_STEPS):
                real = images[index * batch_size:(index + 1) * batch_size]
                drawn = generator(torch.randn(batch_size, 100, dtype=dtype)).detach()
                d_loss = softplus(-discriminator(real)).mean() + \
                    softplus(discriminator(drawn)).mean()
                d_optimizer.zero_grad()
                d_loss.backward()
                d_optimizer.step()
                g_loss = softplus(-discriminator(
                    generator(torch.randn(batch_size, 100, dtype=dtype)))).mean()
                g_optimizer.zero_grad()
                g_loss.backward()
                g_optimizer.step()
        return epoch
    return build


# ---------------------------------------------------------------- the rest of the catalogue

def theano_cA(x_value, y_value, batch_size):
    """The cA of cA.py: 784 -> 500, contraction level 0.1, learning rate 0.01."""
    from dltutorials.cA import build_cA_function, cA

    def build(datasets, batch_size, learning_rate):
        model = cA(numpy.random.RandomState(123), n_visible=N_IN, n_hidden=500)
        return build_cA_function(model, datasets[0][0], batch_size, 0.1, learning_rate)
    return theano_epoch(build, x_value, y_value, batch_size, 0.01)


def torch_cA(x_value, y_value, batch_size):
    """The same cA in PyTorch: the cross-entropy and the closed-form Jacobian penalty."""
    import torch
    from torch import nn

    class Contractive(nn.Module):
        def __init__(self):
            super().__init__()
            bound = 4 * numpy.sqrt(6.0 / (N_IN + 500))
            self.W = nn.Parameter(torch.empty(N_IN, 500).uniform_(-bound, bound))
            self.b = nn.Parameter(torch.zeros(500))
            self.b_prime = nn.Parameter(torch.zeros(N_IN))

        def cost(self, x):
            hidden = torch.sigmoid(x @ self.W + self.b)
            logits = hidden @ self.W.t() + self.b_prime
            reconstruction = nn.functional.binary_cross_entropy_with_logits(
                logits, x, reduction='sum') / x.shape[0]
            jacobian = ((hidden * (1 - hidden)) ** 2 @ (self.W ** 2).sum(0)).mean()
            return reconstruction + 0.1 * jacobian
    return torch_epoch(Contractive(), x_value, y_value, batch_size, 0.01,
                       cost=lambda model, x, y: model.cost(x))


#: HMC: draws per timed 'epoch', chains, leapfrog steps (hmc.py's logistic posterior).
HMC_DRAWS, HMC_CHAINS, HMC_STEPS = 20, 4, 20


def theano_hmc(x_value, y_value, batch_size):
    """hmc.py's sampler on the logistic posterior of ``batch_size`` examples: HMC_DRAWS draws."""
    from dltutorials.hmc import HMC_sampler, logistic_posterior_energy
    with change_flags(floatX=str(x_value.dtype)):
        x = theano.shared(x_value[:batch_size])
        y = theano.shared(y_value[:batch_size])
        energy = logistic_posterior_energy(x, y, HMC_CHAINS, N_IN, N_OUT, 1.0)
        positions = theano.shared(numpy.random.RandomState(0).normal(
            0, 0.01, (HMC_CHAINS, N_IN * N_OUT + N_OUT)).astype(x_value.dtype))
        sampler = HMC_sampler.new_from_shared_positions(positions, energy, n_steps=HMC_STEPS)

    def epoch():
        for _ in range(HMC_DRAWS):
            sampler.draw()
    return epoch


def torch_hmc(x_value, y_value, batch_size):
    """The same sampler in PyTorch: leapfrog with autograd, the Metropolis test, the adaptation."""
    import torch
    dtype = getattr(torch, str(x_value.dtype))
    x, y = torch.from_numpy(x_value[:batch_size]), torch.from_numpy(y_value[:batch_size])
    positions = torch.from_numpy(numpy.random.RandomState(0).normal(
        0, 0.01, (HMC_CHAINS, N_IN * N_OUT + N_OUT)).astype(x_value.dtype))
    state = dict(positions=positions, stepsize=0.01, rate=0.9)

    def energy(theta):
        W = theta[:, :N_IN * N_OUT].reshape(HMC_CHAINS, N_IN, N_OUT)
        logits = torch.einsum('nd,cdk->cnk', x, W) + theta[:, None, N_IN * N_OUT:]
        nll = -torch.log_softmax(logits, dim=2)[:, torch.arange(len(y)), y].sum(dim=1)
        return nll + 0.5 * (theta ** 2).sum(dim=1)

    def force(theta):
        theta = theta.detach().requires_grad_()
        return torch.autograd.grad(energy(theta).sum(), theta)[0]

    def draw():
        pos, eps = state['positions'], state['stepsize']
        vel = torch.randn_like(pos)
        start = energy(pos) + 0.5 * (vel ** 2).sum(dim=1)
        new_vel = vel - 0.5 * eps * force(pos)
        new_pos = pos + eps * new_vel
        for _ in range(HMC_STEPS - 1):
            new_vel = new_vel - eps * force(new_pos)
            new_pos = new_pos + eps * new_vel
        new_vel = new_vel - 0.5 * eps * force(new_pos)
        with torch.no_grad():
            end = energy(new_pos) + 0.5 * (new_vel ** 2).sum(dim=1)
            accept = torch.exp(start - end) - torch.rand(HMC_CHAINS, dtype=dtype) >= 0
            state['positions'] = torch.where(accept[:, None], new_pos, pos)
            state['stepsize'] = min(max(eps * (1.02 if state['rate'] > 0.9 else 0.98), 0.001),
                                    0.25)
            state['rate'] = 0.9 * state['rate'] + 0.1 * float(accept.to(dtype).mean())

    def epoch():
        for _ in range(HMC_DRAWS):
            draw()
    return epoch


#: The RNN-RBM: chunks per timed 'epoch', steps per chunk, pitches, note density.
RNNRBM_CHUNKS, RNNRBM_STEPS, RNNRBM_PITCHES = 20, 100, 88


def random_rolls(dtype):
    rng = numpy.random.RandomState(0)
    return [(rng.uniform(size=(RNNRBM_STEPS, RNNRBM_PITCHES)) < 0.05).astype(dtype)
            for _ in range(RNNRBM_CHUNKS)]


def theano_rnnrbm(x_value, y_value, batch_size):
    """rnnrbm.py's training step (CD-15, 150 hidden, 100 recurrent) on chunks of 100 steps."""
    from dltutorials.rnnrbm import RnnRbm
    with change_flags(floatX=str(x_value.dtype)):
        model = RnnRbm()
        train = model.train_function
    rolls = random_rolls(x_value.dtype)

    def epoch():
        for roll in rolls:
            train(roll)
    return epoch


def torch_rnnrbm(x_value, y_value, batch_size):
    """The same RNN-RBM step in PyTorch: the recurrence, a CD-15 chain, the cost's gradient, SGD."""
    import torch
    dtype = getattr(torch, str(x_value.dtype))
    rng = numpy.random.RandomState(1234)

    def parameter(*shape, scale=0.0):
        value = rng.normal(scale=scale, size=shape) if scale else numpy.zeros(shape)
        return torch.tensor(value, dtype=dtype, requires_grad=True)
    W = parameter(88, 150, scale=0.01)
    bv, bh = parameter(88), parameter(150)
    Wuh, Wuv = parameter(100, 150, scale=1e-4), parameter(100, 88, scale=1e-4)
    Wvu, Wuu = parameter(88, 100, scale=1e-4), parameter(100, 100, scale=1e-4)
    bu = parameter(100)
    params = [W, bv, bh, Wuh, Wuv, Wvu, Wuu, bu]
    rolls = [torch.from_numpy(roll) for roll in random_rolls(x_value.dtype)]
    softplus = torch.nn.functional.softplus

    def free_energy(v, bv_t, bh_t):
        return -(v * bv_t).sum() - softplus(v @ W + bh_t).sum()

    def step(v):
        u = torch.zeros(100, dtype=dtype)
        bvs, bhs = [], []
        for t in range(len(v)):
            bvs.append(bv + u @ Wuv)
            bhs.append(bh + u @ Wuh)
            u = torch.tanh(bu + v[t] @ Wvu + u @ Wuu)
        bv_t, bh_t = torch.stack(bvs), torch.stack(bhs)
        with torch.no_grad():
            sample = v
            for _ in range(15):
                h = torch.bernoulli(torch.sigmoid(sample @ W + bh_t))
                sample = torch.bernoulli(torch.sigmoid(h @ W.t() + bv_t))
            h = torch.bernoulli(torch.sigmoid(sample @ W + bh_t))
            activation = h @ W.t() + bv_t
            monitor = (v * activation - softplus(activation)).sum() / len(v)
        cost = (free_energy(v, bv_t, bh_t) - free_energy(sample, bv_t, bh_t)) / len(v)
        grads = torch.autograd.grad(cost, params)
        with torch.no_grad():
            for p, g in zip(params, grads):
                p -= 0.001 * g
        return monitor

    def epoch():
        for roll in rolls:
            step(roll)
    return epoch


MODELS = {
    'logistic_sgd': (600, theano_logistic, torch_logistic),
    'mlp': (20, theano_mlp, torch_mlp),
    'lenet': (500, theano_lenet, torch_lenet),
    'mlp_adam': (128, theano_mlp_adam, torch_mlp_adam),
    'lenet_bn': (128, theano_lenet_bn, torch_lenet_bn),
    'dA': (20, theano_dA, torch_dA),
    'sda_layer0': (20, theano_sda_layer(0), torch_sda_layer(0)),
    'sda_layer1': (20, theano_sda_layer(1), torch_sda_layer(1)),
    'rbm_pcd15': (20, theano_rbm_pcd15, torch_rbm_pcd15),
    'dbn_layer0': (20, theano_dbn_layer(0), torch_dbn_layer(0)),
    'dbn_layer1': (20, theano_dbn_layer(1), torch_dbn_layer(1)),
    # Seconds per RECURRENT_MINIBATCHES minibatches (see above), not per epoch;
    # the fused op (the scripts' default), then the scan of the page.
    'lstm_rows': (128, theano_rows('lstm'), torch_rows('lstm')),
    'gru_rows': (128, theano_rows('gru'), torch_rows('gru')),
    'rnn_rows': (128, theano_rows('rnn'), torch_rows('rnn')),
    'lstm_chars': (64, theano_chars('lstm'), torch_chars('lstm')),
    'gru_chars': (64, theano_chars('gru'), torch_chars('gru')),
    'rnn_chars': (64, theano_chars('rnn'), torch_chars('rnn')),
    'lstm_rows_scan': (128, theano_rows('lstm', 'scan'), torch_rows('lstm')),
    'gru_rows_scan': (128, theano_rows('gru', 'scan'), torch_rows('gru')),
    'rnn_rows_scan': (128, theano_rows('rnn', 'scan'), torch_rows('rnn')),
    'lstm_chars_scan': (64, theano_chars('lstm', 'scan'), torch_chars('lstm')),
    'gru_chars_scan': (64, theano_chars('gru', 'scan'), torch_chars('gru')),
    'rnn_chars_scan': (64, theano_chars('rnn', 'scan'), torch_chars('rnn')),
    # Seconds per GAN_STEPS steps of both players.
    'dcgan': (128, theano_gan('dcgan'), torch_gan('dcgan')),
    'gan': (128, theano_gan('gan'), torch_gan('gan')),
    'cA': (10, theano_cA, torch_cA),
    # Seconds per HMC_DRAWS draws; the batch size is the number of digits.
    'hmc_logistic': (500, theano_hmc, torch_hmc),
    # Seconds per RNNRBM_CHUNKS chunks of RNNRBM_STEPS steps (the batch size is not used).
    'rnnrbm': (100, theano_rnnrbm, torch_rnnrbm),
}


def time_epoch(epoch):
    start = time.perf_counter()
    epoch()
    return time.perf_counter() - start


#: engine label -> (DLTUTORIALS_ENGINE, extra PYTENSOR_FLAGS)
ENGINES = {
    'theano': ('theano', ''),
    'pytensor-cvm': ('pytensor', 'linker=cvm'),
    'pytensor-numba': ('pytensor', 'linker=numba'),
}


def worker(name, dtype, batch_size):
    """Build ``name`` on this process's engine, then time one epoch per line read from stdin."""
    from dltutorials.support.engine_setup import describe
    x, y = random_mnist(dtype)
    epoch = MODELS[name][1](x, y, batch_size)
    start = time.perf_counter()
    epoch()   # warm-up: caches, thread pools (compilation was in the build)
    print('ready %.1f | %s' % (time.perf_counter() - start, ' | '.join(describe())), flush=True)
    for _ in sys.stdin:
        print('%.6f' % time_epoch(epoch), flush=True)


class Worker:
    """An engine in its own process: ``python benchmark_epoch.py --worker ...``."""

    def __init__(self, label, python, name, dtype, batch_size):
        engine, flags = ENGINES[label]
        env = dict(USER_ENVIRON, DLTUTORIALS_ENGINE=engine)
        if flags:
            env['PYTENSOR_FLAGS'] = ','.join(filter(None, [env.get('PYTENSOR_FLAGS'), flags]))
        self.process = subprocess.Popen(
            [python, os.path.abspath(__file__), '--worker', name, dtype, str(batch_size)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        ready = self.process.stdout.readline()
        if not ready.startswith('ready'):
            raise RuntimeError('the %s worker (%s) did not start' % (label, python))
        self.description = ready.split('|', 1)[1].strip()

    def epoch(self):
        self.process.stdin.write('epoch\n')
        self.process.stdin.flush()
        return float(self.process.stdout.readline())

    def close(self):
        self.process.stdin.close()
        self.process.wait()


#: A pause before each timed epoch.  After a call, OpenBLAS's threads keep
#: spinning on the cores for about 2**28 cycles (0.1 s here) waiting for more
#: work; the contender timed next would share the cores with them (the
#: recurrent rows' epochs take 0.1 to 1 s).
QUIET_SECONDS = 0.5


def benchmark(name, dtype, rounds, engines, batch_size=None):
    """Median seconds per epoch of each engine and PyTorch, and each engine's median ratio."""
    default_batch, _, build_torch = MODELS[name]
    batch_size = batch_size or default_batch
    workers = {label: Worker(label, python, name, dtype, batch_size)
               for label, python in engines}
    x, y = random_mnist(dtype)
    torch_epoch = build_torch(x, y, batch_size)
    torch_epoch()   # warm-up
    times = {label: [] for label in list(workers) + ['pytorch']}
    for _ in range(rounds):
        for label, engine in workers.items():
            time.sleep(QUIET_SECONDS)
            times[label].append(engine.epoch())
        time.sleep(QUIET_SECONDS)
        times['pytorch'].append(time_epoch(torch_epoch))
    descriptions = {label: engine.description for label, engine in workers.items()}
    for engine in workers.values():
        engine.close()
    rows = []
    for label in workers:
        ratios = [t / p for t, p in zip(times[label], times['pytorch'])]
        rows.append(dict(model=name, dtype=dtype, batch=batch_size, engine=label,
                         seconds=statistics.median(times[label]),
                         pytorch=statistics.median(times['pytorch']),
                         ratio=statistics.median(ratios), ratio_range=(min(ratios), max(ratios))))
    return rows, descriptions


def engine_argument(text):
    label, _, python = text.partition('=')
    if label not in ENGINES:
        raise argparse.ArgumentTypeError('engine must be one of %s, optionally =PYTHON'
                                         % ', '.join(ENGINES))
    return label, python or sys.executable


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--models', nargs='+', default=list(MODELS), choices=list(MODELS))
    parser.add_argument('--dtypes', nargs='+', default=['float32', 'float64'],
                        choices=['float32', 'float64'])
    parser.add_argument('--rounds', type=int, default=5, help='interleaved timed epochs')
    parser.add_argument('--batch-size', type=int, help="override the tutorial's batch size")
    parser.add_argument('--engine', nargs='+', type=engine_argument,
                        default=[engine_argument(dltutorials.support.engine_setup.engine_name()
                                                 .replace('pytensor', 'pytensor-cvm'))],
                        metavar='LABEL[=PYTHON]',
                        help='engines to time: %s, each run by PYTHON (default: this one)'
                        % ', '.join(ENGINES))
    parser.add_argument('--worker', nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        name, dtype, batch_size = args.worker
        worker(name, dtype, int(batch_size))
        return 0
    try:
        import torch
    except ImportError:
        print("error: PyTorch is needed for the comparison: pip install torch==2.13.0 "
              "'setuptools<81'",
              file=sys.stderr)
        return 2

    print('PyTorch %s (%d threads), %d examples per epoch, %d rounds' % (
        torch.__version__, torch.get_num_threads(), N_EXAMPLES, args.rounds))
    header = '%-14s %-8s %6s %-15s %10s %12s %16s' % (
        'model', 'dtype', 'batch', 'engine', 'engine s/ep', 'pytorch s/ep', 'engine/pytorch')
    for name in args.models:
        for dtype in args.dtypes:
            rows, descriptions = benchmark(name, dtype, args.rounds, args.engine,
                                           args.batch_size)
            if header:   # after the first model: every engine has described itself
                for label, description in descriptions.items():
                    print('%s: %s' % (label, description))
                print(header)
                print('-' * len(header))
                header = None
            for row in rows:
                print('%-14s %-8s %6d %-15s %10.3f %12.3f %7.2fx (%.2f-%.2f)' % (
                    row['model'], row['dtype'], row['batch'], row['engine'], row['seconds'],
                    row['pytorch'], row['ratio'], *row['ratio_range']))
            sys.stdout.flush()
    return 0


if __name__ == '__main__':
    sys.exit(main())
