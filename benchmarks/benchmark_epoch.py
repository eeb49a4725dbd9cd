"""Time one training epoch of each tutorial model in Theano and in PyTorch, same CPU, same run.

For each model and dtype, both frameworks train the same architecture with
the same batch size on the same 50,000 random MNIST-shaped examples.  The
runs are interleaved (Theano, PyTorch, Theano, ...) for ``--rounds`` rounds,
because these machines are shared and noisy; the table gives the median
seconds per epoch and the median of the per-round ratios Theano / PyTorch
(below 1: Theano is faster).

    pip install torch==2.13.0          # benchmark-only; a CPU wheel
    python benchmarks/benchmark_epoch.py --rounds 5

Later models add themselves to ``MODELS``: a name, the batch size of the
tutorial, and two builders that return a function running one epoch.
"""
import argparse
import statistics
import sys
import time

import numpy

import dltutorials  # noqa: F401  (sets Theano's defaults before Theano is imported)
import theano
import theano.tensor as T

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

    with theano.change_flags(floatX=str(x_value.dtype)):
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


def torch_epoch(model, x_value, y_value, batch_size, learning_rate, cost=classification_cost):
    """One epoch of plain minibatch SGD in PyTorch on the same data, minimising ``cost``."""
    import torch

    x = torch.from_numpy(x_value)
    y = torch.from_numpy(y_value)
    model = model.to(getattr(torch, str(x_value.dtype)))
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad],
                                lr=learning_rate)
    n_batches = N_EXAMPLES // batch_size

    def epoch():
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


#: name -> (tutorial batch size, Theano builder, PyTorch builder)
MODELS = {
    'logistic_sgd': (600, theano_logistic, torch_logistic),
    'mlp': (20, theano_mlp, torch_mlp),
    'lenet': (500, theano_lenet, torch_lenet),
    'dA': (20, theano_dA, torch_dA),
    'sda_layer0': (20, theano_sda_layer(0), torch_sda_layer(0)),
    'sda_layer1': (20, theano_sda_layer(1), torch_sda_layer(1)),
}


def time_epoch(epoch):
    start = time.perf_counter()
    epoch()
    return time.perf_counter() - start


def benchmark(name, dtype, rounds, batch_size=None):
    default_batch, build_theano, build_torch = MODELS[name]
    batch_size = batch_size or default_batch
    x, y = random_mnist(dtype)
    runners = {'theano': build_theano(x, y, batch_size), 'pytorch': build_torch(x, y, batch_size)}
    for epoch in runners.values():   # warm-up: compilation, caches, thread pools
        epoch()
    times = {framework: [] for framework in runners}
    for _ in range(rounds):
        for framework, epoch in runners.items():
            times[framework].append(time_epoch(epoch))
    ratios = [t / p for t, p in zip(times['theano'], times['pytorch'])]
    return dict(model=name, dtype=dtype, batch=batch_size,
                theano=statistics.median(times['theano']),
                pytorch=statistics.median(times['pytorch']),
                ratio=statistics.median(ratios), ratio_range=(min(ratios), max(ratios)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--models', nargs='+', default=list(MODELS), choices=list(MODELS))
    parser.add_argument('--dtypes', nargs='+', default=['float32', 'float64'],
                        choices=['float32', 'float64'])
    parser.add_argument('--rounds', type=int, default=5, help='interleaved timed epochs')
    parser.add_argument('--batch-size', type=int, help="override the tutorial's batch size")
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError:
        print('error: PyTorch is needed for the comparison: pip install torch==2.13.0',
              file=sys.stderr)
        return 2

    print('Theano %s (blas.ldflags=%r), PyTorch %s (%d threads), %d examples per epoch, '
          '%d rounds' % (theano.__version__, theano.config.blas.ldflags, torch.__version__,
                         torch.get_num_threads(), N_EXAMPLES, args.rounds))
    header = '%-14s %-8s %6s %12s %12s %16s' % ('model', 'dtype', 'batch', 'theano s/ep',
                                                 'pytorch s/ep', 'theano/pytorch')
    print(header)
    print('-' * len(header))
    for name in args.models:
        for dtype in args.dtypes:
            row = benchmark(name, dtype, args.rounds, args.batch_size)
            print('%-14s %-8s %6d %12.3f %12.3f %7.2fx (%.2f-%.2f)' % (
                row['model'], row['dtype'], row['batch'], row['theano'], row['pytorch'],
                row['ratio'], *row['ratio_range']))
            sys.stdout.flush()
    return 0


if __name__ == '__main__':
    sys.exit(main())
