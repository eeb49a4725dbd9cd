"""Generative adversarial networks: two networks, one drawing images, one judging them.

A *generator* G turns noise :math:`z \\sim \\mathcal{N}(0, I)` into an
image :math:`G(z)`; a *discriminator* D gives the probability
:math:`D(x)` that an image is a real one rather than one G drew.  They are
trained against each other (Goodfellow et al., 2014): D to tell real from
drawn, G to fool D, the minimax game

.. math::

    \\min_G \\max_D \\; \\mathbb{E}_x[\\log D(x)] + \\mathbb{E}_z[\\log(1 - D(G(z)))].

For a fixed G the best D is :math:`p_{data} / (p_{data} + p_G)`, and G's
best answer to it is :math:`p_G = p_{data}`: the game ends when G draws
like the data.  In practice each player takes a step of Adam in turn, D
first (``k`` steps of D per step of G).

**The non-saturating loss.**  Early on D rejects G's drawings easily, so
:math:`\\log(1 - D(G(z)))` is flat and gives G almost no gradient.  G
instead maximises :math:`\\log D(G(z))`: the same fixed point, strong
gradients when G is bad.  With D's output a logit :math:`l`, the losses are
softplus functions of it (stable for any :math:`l`):

.. math::

    L_D = \\operatorname{softplus}(-l_{real}) + \\operatorname{softplus}(l_{drawn}),
    \\qquad L_G = \\operatorname{softplus}(-l_{drawn}).

**Two architectures** (``architecture``):

- ``gan``, fully connected, Goodfellow et al.'s for MNIST: G has two
  layers of 1200 rectified units and a sigmoid layer of 784 pixels; D two
  maxout layers of 240 units (5 pieces each), with dropout.  Trained with
  Adam, G's drawings collapsed to one or two shapes at a time here until
  its hidden layers were batch-normalized (as the later DCGAN rules say),
  which they are.
- ``dcgan``, convolutional, after Radford et al.'s rules (2016): no
  pooling (D halves the size with strided convolutions, G doubles it with
  transposed ones), batch normalization in both (not on G's output nor D's
  input), ReLU in G with a tanh output, leaky ReLU (0.2) in D.  At 28 x 28,
  with ``n_maps`` m: G: noise -> 2m x 7 x 7 -> m x 14 x 14 -> 1 x 28 x 28;
  D the mirror.  Radford et al.'s networks are wider (m = 64 and more, for
  64 x 64 images); m = 32, the default, is four times less work in the
  widest layers: what a laptop's CPU trains in a minute or two an epoch.

A *transposed convolution* is the gradient of a convolution with respect
to its input: where a stride-2 convolution reads a 4 x 4 patch for each
output pixel, its transpose spreads each input pixel over a 4 x 4 patch of
an image twice the size.

Run it::

    python code/gan.py --dataset fashion-mnist --architecture dcgan --n-epochs 25
    python code/gan.py --sample 1000          # samples.npz and samples.png from the saved model
    python code/gan.py --quick                # smoke test: seconds

Judging the drawings (:mod:`~dltutorials.sample_measures`) needs a
classifier of the same images: ``--classifier results/convolutional_mlp.npz``
(trained by ``python code/convolutional_mlp.py --dataset fashion-mnist``).

References:

- I. Goodfellow et al., "Generative Adversarial Nets", NIPS 2014
- A. Radford, L. Metz and S. Chintala, "Unsupervised Representation
  Learning with Deep Convolutional Generative Adversarial Networks", ICLR 2016
- T. Salimans et al., "Improved Techniques for Training GANs", NIPS 2016
  (one-sided label smoothing)
"""
import contextlib
import dataclasses
import sys
import time
from pathlib import Path

import numpy

# Importing dltutorials first sets the engine's defaults (BLAS, floatX) before it reads them.
from dltutorials.data_loading import minibatch
from dltutorials.layers import BatchNorm, leaky_relu, relu
from dltutorials.sample_measures import (choose_parzen_width, class_view, feature_statistics,
                                         frechet_distance, parzen_log_likelihood)
from dltutorials.support import checks, command_line
from dltutorials.training import check_cost, load_training_data
from dltutorials.updates import adam
from dltutorials.support.checkpoints import checkpoint_for
from dltutorials.support.engine_setup import convolution_openmp
from dltutorials.support.errors import HyperparameterError, ModelFileError
from dltutorials.support.runs import (current_run, entry_point, epochs, output_path, run_options,
                                      save_samples, stop_requests, tutorial_logger)

# Theano's names, from Theano or, on Python 3.12+, PyTensor (see dltutorials.support.engine).
from dltutorials.support.engine import (MRG_RandomStreams, T, conv2d, conv2d_grad_wrt_inputs,
                                        theano)

logger = tutorial_logger(__name__)

ARCHITECTURES = ('gan', 'dcgan')
SIDE = 28


def weights(rng, shape, name, scale=0.02):
    """A floatX shared variable drawn from N(0, scale^2): DCGAN's initialisation."""
    return theano.shared(numpy.asarray(rng.normal(scale=scale, size=shape),
                                       dtype=theano.config.floatX), name=name)


def zeros(shape, name):
    return theano.shared(numpy.zeros(shape, dtype=theano.config.floatX), name=name)


class Generator(object):
    """Noise (n, n_noise) to images (n, 784) with pixels in [0, 1].

    ``generator(noise, training)`` builds the graph: in training, batch
    normalization uses the minibatch's statistics and puts the update of
    its running averages in ``updates``; otherwise it uses those averages,
    so an image does not depend on the others drawn with it.
    """

    def __init__(self, rng, architecture='dcgan', n_noise=100, n_maps=32):
        self.architecture, self.n_noise, self.n_maps = architecture, n_noise, n_maps
        if architecture == 'gan':
            sizes = [n_noise, 1200, 1200, SIDE * SIDE]
            self.layers = [(weights(rng, (n_in, n_out), 'G_W%d' % k), zeros(n_out, 'G_b%d' % k))
                           for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:]))]
            # Batch normalization of the hidden layers (Radford et al.'s rule,
            # later than the paper): without it the drawings collapsed to one
            # or two shapes at a time here, or the discriminator won outright.
            self.norms = [BatchNorm(1200), BatchNorm(1200)]
        else:
            wide = 2 * n_maps
            self.layers = [(weights(rng, (n_noise, wide * 7 * 7), 'G_W0'),
                            zeros(wide * 7 * 7, 'G_b0')),
                           # A transposed convolution's filters are those of the convolution it
                           # transposes: (its input maps, its output maps, 4, 4).
                           (weights(rng, (wide, n_maps, 4, 4), 'G_W1'), zeros(n_maps, 'G_b1')),
                           (weights(rng, (n_maps, 1, 4, 4), 'G_W2'), zeros(1, 'G_b2'))]
            self.norms = [BatchNorm(wide * 7 * 7), BatchNorm(n_maps, axes=(0, 2, 3))]
        self.params = [p for layer in self.layers for p in layer] + \
            [p for norm in self.norms for p in norm.params]
        self.statistics = [s for norm in self.norms for s in norm.statistics]
        self.updates = {}

    def __call__(self, noise, training):
        (W0, b0), (W1, b1), (W2, b2) = self.layers
        norm0, norm1 = self.norms
        if self.architecture == 'gan':
            hidden = relu(norm0(T.dot(noise, W0) + b0, training))
            hidden = relu(norm1(T.dot(hidden, W1) + b1, training))
            images = T.nnet.sigmoid(T.dot(hidden, W2) + b2)
        else:
            maps = relu(norm0(T.dot(noise, W0) + b0, training)).reshape(
                (noise.shape[0], 2 * self.n_maps, 7, 7))
            maps = relu(norm1(upsample(maps, W1, self.n_maps) + b1.dimshuffle('x', 0, 'x', 'x'),
                              training))
            # tanh's (-1, 1) to pixels in (0, 1).
            tanh = T.tanh(upsample(maps, W2, 1) + b2.dimshuffle('x', 0, 'x', 'x'))
            images = ((tanh + 1) / 2).flatten(2)
        self.updates = {**norm0.updates, **norm1.updates}
        return images

    def __repr__(self):
        return 'Generator(%s, n_noise=%d%s)' % (
            self.architecture, self.n_noise,
            ', n_maps=%d' % self.n_maps if self.architecture == 'dcgan' else '')


def upsample(maps, filters, n_out_maps):
    """A stride-2 transposed convolution, 4 x 4 filters: (n, c, h, w) -> (n, n_out_maps, 2h, 2w)."""
    rows = maps.shape[2] * 2
    return conv2d_grad_wrt_inputs(maps, filters, input_shape=(None, n_out_maps, rows, rows),
                                  filter_shape=filters.get_value().shape, border_mode=(1, 1),
                                  subsample=(2, 2))


def downsample(maps, filters):
    """A stride-2 convolution with 4 x 4 filters: (n, c, h, w) -> (n, filters, h / 2, w / 2)."""
    return conv2d(maps, filters, filter_shape=filters.get_value().shape, border_mode=(1, 1),
                  subsample=(2, 2))


class Discriminator(object):
    """Images (n, 784), pixels in [0, 1], to logits (n,): log-odds that each is real.

    ``discriminator(images, training)`` builds the graph; in training,
    dropout (``gan``) or the minibatch's batch statistics (``dcgan``) are on.
    Real and drawn images go through it separately, so each minibatch is
    normalised with its own statistics, as in Radford et al.'s code.
    """

    def __init__(self, rng, architecture='dcgan', n_maps=32):
        self.architecture, self.n_maps = architecture, n_maps
        if architecture == 'gan':
            self.pieces = 5
            self.layers = [(weights(rng, (784, 240 * 5), 'D_W0', 0.005), zeros(240 * 5, 'D_b0')),
                           (weights(rng, (240, 240 * 5), 'D_W1', 0.005), zeros(240 * 5, 'D_b1')),
                           (weights(rng, (240, 1), 'D_W2', 0.005), zeros(1, 'D_b2'))]
            self.norms = []
            self.srng = MRG_RandomStreams(rng.randint(2 ** 30))
        else:
            wide = 2 * n_maps
            self.layers = [(weights(rng, (n_maps, 1, 4, 4), 'D_W0'), zeros(n_maps, 'D_b0')),
                           (weights(rng, (wide, n_maps, 4, 4), 'D_W1'), zeros(wide, 'D_b1')),
                           (weights(rng, (wide * 7 * 7, 1), 'D_W2'), zeros(1, 'D_b2'))]
            self.norms = [BatchNorm(wide, axes=(0, 2, 3))]
        self.params = [p for layer in self.layers for p in layer] + \
            [p for norm in self.norms for p in norm.params]
        self.statistics = [s for norm in self.norms for s in norm.statistics]

    def __call__(self, images, training):
        (W0, b0), (W1, b1), (W2, b2) = self.layers
        if self.architecture == 'gan':
            hidden = images
            # Dropout on each layer's input in training: 20 % of the pixels, then half the units.
            for W, b, keep in ((W0, b0, 0.8), (W1, b1, 0.5), (W2, b2, 0.5)):
                if training:
                    hidden = hidden * self.srng.binomial(hidden.shape, p=keep,
                                                         dtype=hidden.dtype) / keep
                linear = T.dot(hidden, W) + b
                if W is W2:
                    return linear.flatten()
                # Maxout: each unit the largest of its 5 linear pieces.
                hidden = linear.reshape((hidden.shape[0], 240, self.pieces)).max(axis=2)
        maps = (images * 2 - 1).reshape((images.shape[0], 1, SIDE, SIDE))
        maps = leaky_relu(downsample(maps, W0) + b0.dimshuffle('x', 0, 'x', 'x'), 0.2)
        maps = leaky_relu(self.norms[0](downsample(maps, W1) + b1.dimshuffle('x', 0, 'x', 'x'),
                                        training), 0.2)
        return (T.dot(maps.flatten(2), W2) + b2).flatten()

    def __repr__(self):
        return 'Discriminator(%s)' % self.architecture


class GAN(object):
    """A generator and its discriminator: what a GAN's model file holds.

    ``output``: the images the generator draws from ``input`` (noise,
    (n, n_noise)), with batch normalization's running averages.
    """

    def __init__(self, rng, input=None, architecture='dcgan', n_noise=100, n_maps=32):
        self.architecture, self.n_noise, self.n_maps = architecture, n_noise, n_maps
        self.generator = Generator(rng, architecture, n_noise, n_maps)
        self.discriminator = Discriminator(rng, architecture, n_maps)
        self.input = T.matrix('noise') if input is None else input
        self.output = self.generator(self.input, training=False)
        self.params = self.generator.params + self.discriminator.params
        self.statistics = self.generator.statistics + self.discriminator.statistics
        self._draw = None

    def draw(self, noise):
        """The images (n, 784), pixels in [0, 1], of ``noise`` (n, n_noise), a numpy array."""
        if self._draw is None:
            self._draw = theano.function([self.input], self.output)
        return self._draw(numpy.asarray(noise, dtype=theano.config.floatX))

    def sample(self, n, seed=1234):
        """``n`` images (n, 784), pixels in [0, 1], drawn from the noise of ``seed``."""
        return self.draw(numpy.random.RandomState(seed).normal(size=(n, self.n_noise)))

    def __repr__(self):
        return 'GAN(%s, n_noise=%d%s)' % (
            self.architecture, self.n_noise,
            ', n_maps=%d' % self.n_maps if self.architecture == 'dcgan' else '')


def build_gan_functions(gan, train_images, batch_size, learning_rate=2e-4, beta1=0.5,
                        label_smoothing=0.0, seed=1234):
    """Compile the two players' training steps; each has its own Adam.

    Returns ``(train_discriminator, train_generator)``:
    ``train_discriminator(index)`` takes a step of D on minibatch ``index``
    of ``train_images`` and as many drawn images, and returns (D's loss, the
    mean D(x) of the real images, the mean D(G(z)) of the drawn ones);
    ``train_generator()`` takes a step of G on a new batch of noise and
    returns G's loss.  The noise is drawn on the device.  With
    ``label_smoothing`` s, D aims at 1 - s for real images (never
    over-confident: Salimans et al.'s one-sided smoothing).  The DCGAN's
    are compiled with OpenMP on more than one core (see
    :func:`~dltutorials.support.engine_setup.convolution_openmp`): a DCGAN
    step took 135 ms instead of 178 here (2 cores, minibatches of 128).  The
    fully connected GAN has no convolution, and there OpenMP's idle threads
    (after Adam's updates) slowed OpenBLAS's products: D's step took 33 ms
    with it and 21 ms without, G's 33 and 25.
    """
    compiling = (convolution_openmp if gan.architecture == 'dcgan'
                 else contextlib.nullcontext)
    generator, discriminator = gan.generator, gan.discriminator
    srng = MRG_RandomStreams(seed)
    index = T.lscalar('index')
    real = minibatch(train_images, index, batch_size)

    # The discriminator's half: real images towards 1, drawn ones towards 0.
    drawn = generator(srng.normal((batch_size, gan.n_noise)), training=True)
    real_logit = discriminator(real, training=True)
    drawn_logit = discriminator(drawn, training=True)
    target = 1 - label_smoothing
    d_loss = (target * T.nnet.softplus(-real_logit) + (1 - target) * T.nnet.softplus(real_logit)
              ).mean() + T.nnet.softplus(drawn_logit).mean()
    d_updates = adam(d_loss, discriminator.params, learning_rate, beta1=beta1)
    with compiling():
        train_discriminator = theano.function(
            [index], [d_loss, T.nnet.sigmoid(real_logit).mean(),
                      T.nnet.sigmoid(drawn_logit).mean()],
            updates=d_updates, name='train_discriminator')

    # The generator's half: new drawings, pushed towards what D calls real.
    drawn = generator(srng.normal((batch_size, gan.n_noise)), training=True)
    g_loss = T.nnet.softplus(-discriminator(drawn, training=True)).mean()
    g_updates = adam(g_loss, generator.params, learning_rate, beta1=beta1)
    g_updates.update(generator.updates)      # batch normalization's running averages
    with compiling():
        train_generator = theano.function([], g_loss, updates=g_updates, name='train_generator')
    return train_discriminator, train_generator


@dataclasses.dataclass
class GameState:
    """Where :func:`play` is: all a checkpoint needs, besides the parameters, to go on."""

    epoch: int = 1              # the epoch in progress, 1-based
    minibatch: int = 0          # its next minibatch
    sums: list = dataclasses.field(default_factory=lambda: [0.0, 0.0, 0.0, 0.0])
    first_costs: list = None    # the first (D, G) losses: the yardsticks of divergence
    history: list = dataclasses.field(default_factory=list)   # one dict per epoch
    seconds: float = 0.0

    def as_dict(self):
        return dataclasses.asdict(self)


#: What each epoch's record holds, in the order of GameState.sums.
EPOCH_MEANS = ('d_loss', 'g_loss', 'd_real', 'd_drawn')


def play(train_discriminator, train_generator, n_train_batches, n_epochs, k=1,
         checkpoint=None, on_epoch_end=None, clock=time.perf_counter):
    """The two players' game: per minibatch, ``k`` steps of D, then one of G.

    There is no validation error to stop on: the game runs ``n_epochs``.
    Each epoch's mean losses, D(x) and D(G(z)) go into a record of
    ``history``, with what ``on_epoch_end(epoch)`` returns (a dict: the
    measures of the drawings).  A loss that is not finite, or a thousand
    times its first value, raises DivergenceError; a Ctrl-C stops after the
    current minibatch, the state saved.  Returns ``(history, stopped_by,
    seconds)``; ``stopped_by`` is ``'n_epochs'`` or ``'interrupted'``.
    """
    state = GameState() if checkpoint is None or checkpoint.saved is None else \
        GameState(**checkpoint.saved)
    start = clock() - state.seconds
    stopped_by = 'n_epochs'

    def save_state(where):
        if checkpoint is not None:
            state.seconds = clock() - start
            checkpoint.save(state.as_dict(), where)

    with stop_requests() as stop:
        while state.epoch <= n_epochs:
            epoch = state.epoch
            for index in range(state.minibatch, n_train_batches):
                for step in range(k):
                    d_loss, d_real, d_drawn = train_discriminator(
                        (index * k + step) % n_train_batches)
                g_loss = float(train_generator())
                if state.first_costs is None:
                    state.first_costs = [float(d_loss), g_loss]
                check_cost(float(d_loss), state.first_costs[0], epoch, index, n_train_batches,
                           "the discriminator's")
                check_cost(g_loss, state.first_costs[1], epoch, index, n_train_batches,
                           "the generator's")
                for i, value in enumerate((d_loss, g_loss, d_real, d_drawn)):
                    state.sums[i] += float(value)
                state.minibatch = index + 1
                if stop.requested:
                    break
            else:           # the epoch ran to its end
                record = dict(epoch=epoch, **{name: total / n_train_batches
                                              for name, total in zip(EPOCH_MEANS, state.sums)})
                record['seconds'] = clock() - start
                logger.info('epoch %d: D loss %.4f, G loss %.4f, D(x) %.3f, D(G(z)) %.3f '
                            '(%.1f s)', epoch, record['d_loss'], record['g_loss'],
                            record['d_real'], record['d_drawn'], record['seconds'])
                if record['d_loss'] < 0.01:
                    logger.warning('epoch %d: the discriminator wins completely (its loss %.4f): '
                                   'the generator gets no useful gradient', epoch,
                                   record['d_loss'])
                if on_epoch_end is not None:
                    record.update(on_epoch_end(epoch))
                state.history.append(record)
                state.epoch, state.minibatch, state.sums = epoch + 1, 0, [0.0] * 4
            save_state('epoch %d, minibatch %d/%d' % (epoch, state.minibatch or n_train_batches,
                                                      n_train_batches))
            if stop.requested:
                stopped_by = 'interrupted'
                break
    return state.history, stopped_by, clock() - start


class DrawingJudge(object):
    """The measures of :mod:`~dltutorials.sample_measures` for a generator, with one classifier.

    ``classifier_file``: a :class:`~dltutorials.convolutional_mlp.LeNet5`
    trained on the same images; its last hidden layer (500 units) gives the
    features, its output layer the classes.  ``test_images`` (n, 784) are
    the real images compared with; ``validation_images`` choose the Parzen
    window.  ``n_samples`` images are drawn each time (the same noise each
    time), and the Parzen estimate uses ``n_parzen`` validation and test
    images (it costs n_samples x n_parzen distances).
    """

    def __init__(self, classifier_file, test_images, validation_images, n_samples=10000,
                 n_parzen=1000):
        from dltutorials.support.models import load_network
        network = load_network(classifier_file, 'LeNet5')
        self.classifier_file = str(classifier_file)
        self.classify = theano.function([network.input], [network.layer2.output,
                                                          network.layer3.p_y_given_x])
        self.n_samples, self.n_parzen = n_samples, n_parzen
        self.test_images = numpy.asarray(test_images)
        self.validation_images = numpy.asarray(validation_images)[:n_parzen]
        self.test_statistics = feature_statistics(self.features(self.test_images)[0])

    def features(self, images):
        """[features (n, 500), class probabilities (n, 10)] of ``images``."""
        from dltutorials.support.models import in_batches
        return in_batches(self.classify, images)

    def judge(self, images):
        """The measures of ``images`` (n, 784), pixels in [0, 1], as a dict."""
        features, probabilities = self.features(images.astype(theano.config.floatX))
        shares, confidence = class_view(probabilities)
        width, _ = choose_parzen_width(self.validation_images, images)
        parzen, parzen_error = parzen_log_likelihood(self.test_images[:self.n_parzen], images,
                                                     width)
        return dict(frechet=frechet_distance(*feature_statistics(features),
                                             *self.test_statistics),
                    class_shares=[round(float(s), 4) for s in shares],
                    confidence=confidence, parzen=parzen, parzen_error=parzen_error,
                    parzen_width=width)

    def judge_generator(self, gan, seed=2024):
        return self.judge(gan.sample(self.n_samples, seed))


def describe_measures(measures):
    """One line for the log: the Fréchet distance, the classes, the Parzen estimate."""
    shares = numpy.asarray(measures['class_shares'])
    return ('Frechet distance %.2f; classes %s %% (confidence %.2f); Parzen %.0f +- %.0f nats '
            '(window %.2f)' % (measures['frechet'], ' '.join('%.0f' % (100 * s) for s in shares),
                               measures['confidence'], measures['parzen'],
                               measures['parzen_error'], measures['parzen_width']))


def collapse_warning(measures):
    """A line saying the drawings collapsed to few classes, or None."""
    shares = numpy.asarray(measures['class_shares'])
    if shares.max() > 0.4 or (shares < 0.02).sum() > 2:
        return ('the drawings collapse to few classes: %.0f %% are class %d, and %d classes '
                'are drawn less than 2 %% of the time (mode collapse)'
                % (100 * shares.max(), shares.argmax(), (shares < 0.02).sum()))
    return None



@entry_point(architecture=checks.Choice(ARCHITECTURES), n_epochs=checks.positive_int,
             batch_size=checks.positive_int, learning_rate=checks.positive,
             beta1=checks.fraction, k=checks.positive_int, label_smoothing=checks.fraction,
             n_noise=checks.positive_int, n_maps=checks.positive_int, seed=checks.seed)
def train_gan(dataset='mnist.pkl.gz', architecture='dcgan', n_epochs=25, batch_size=128,
              learning_rate=2e-4, beta1=0.5, k=1, label_smoothing=0.0, n_noise=100, n_maps=32,
              classifier=None, saveto='gan.npz', seed=1234, verbose=True):
    """Train a GAN; after every epoch save it, draw the fixed noise and measure the drawings.

    Parameters
    ----------
    dataset : str
        a .pkl.gz file, a folder of IDX files, or a known name.
    architecture : str
        ``gan`` (fully connected, Goodfellow et al.) or ``dcgan`` (convolutional).
    n_epochs : int
        passes over the training images (there is no early stopping).
    batch_size : int
        real images per step of the discriminator (and as many drawn).
    learning_rate : float
        Adam's, for both players.
    beta1 : float
        Adam's first-moment decay (0.5: DCGAN's).
    k : int
        steps of the discriminator per step of the generator.
    label_smoothing : float
        the discriminator aims at 1 - this for real images.
    n_noise : int
        dimensions of the generator's noise.
    n_maps : int
        the DCGAN's feature maps next to the image (twice as many next to the noise).
    classifier : str
        a LeNet5 model file trained on the same images, to measure the drawings with.
    saveto : str
        the model file's name, in the output folder.
    seed : int
        seeds the weights, the noise and the fixed noise of the grids.
    verbose : bool
        show the progress where no logging is set up (a notebook).

    Returns
    -------
    dict: ``history`` (per epoch: the mean losses, D(x), D(G(z)), seconds,
    and the measures with a classifier), ``stopped_by``, ``seconds``,
    ``model_file``, ``model`` (a :class:`~dltutorials.support.models.Model`).
    """
    from dltutorials.support.models import Model, save_model

    datasets, n_train_batches = load_training_data(dataset, batch_size)
    judge = None
    if classifier is not None:
        judge = DrawingJudge(classifier, datasets[2][0].get_value(borrow=True),
                             datasets[1][0].get_value(borrow=True))
        logger.info('measuring the drawings with the classifier %s', classifier)
    rng = numpy.random.RandomState(seed)
    architecture_arguments = dict(architecture=architecture, n_noise=n_noise, n_maps=n_maps)
    gan = GAN(rng, **architecture_arguments)
    functions = build_gan_functions(gan, datasets[0][0], batch_size, learning_rate, beta1,
                                    label_smoothing, seed)
    model_file = output_path(saveto)
    checkpoint = checkpoint_for(functions, model_file.stem)
    fixed_noise = numpy.random.RandomState([seed, 1]).normal(size=(100, n_noise))

    def end_epoch(epoch):
        save_samples(gan.draw(fixed_noise).reshape(10, 10, -1),
                     '%s_epoch_%03d.png' % (model_file.stem, epoch))
        measures = {}
        if judge is not None:
            measures = judge.judge_generator(gan)
            logger.info('epoch %d: %s', epoch, describe_measures(measures))
            warning = collapse_warning(measures)
            if warning:
                logger.warning('epoch %d: %s', epoch, warning)
        save_model(model_file, gan, architecture_arguments, dataset=str(dataset), epoch=epoch,
                   measures=measures)
        return measures

    logger.info('... training %r: %d minibatches of %d per epoch, %d step(s) of the '
                'discriminator per step of the generator', gan, n_train_batches, batch_size, k)
    history, stopped_by, seconds = play(*functions, n_train_batches, epochs(n_epochs), k,
                                        checkpoint, end_epoch)
    logger.info('The code ran for %d epochs in %.1f s, %.2f s per epoch', len(history), seconds,
                seconds / max(len(history), 1))
    if history:
        logger.info('%r saved to %s', gan, model_file)
        save_progress(model_file.stem, len(history))
        save_samples(interpolate(gan), '%s_interpolation.png' % model_file.stem)
        if current_run().plot:
            from dltutorials.support.plotting import plot_gan_curves
            plot_gan_curves(history, model_file.with_name(model_file.stem + '_curves.png'),
                            '%r on %s' % (gan, Path(str(dataset)).name))
    return dict(history=history, stopped_by=stopped_by, seconds=seconds,
                model_file=str(model_file) if history else None, model=Model(gan))




def save_progress(stem, n_epochs):
    """One picture of learning: the first row of every epoch's grid, one epoch below the other.

    Read back from the grids in the output folder (a resumed run has them
    too).  Returns the path, or None when plots are off or a grid is missing.
    """
    from PIL import Image

    grids = [output_path('%s_epoch_%03d.png' % (stem, epoch)) for epoch in range(1, n_epochs + 1)]
    if not current_run().plot or not all(grid.exists() for grid in grids):
        return None
    # A grid's first row of drawings: its first 28 pixel rows, and one of spacing.
    rows = [numpy.asarray(Image.open(grid))[:SIDE + 1] for grid in grids]
    path = output_path('%s_progress.png' % stem)
    Image.fromarray(numpy.concatenate(rows)).save(path)
    logger.info('the drawings of the fixed noise by epoch written to %s', path)
    return path


def interpolate(gan, n_pairs=8, n_steps=10, seed=99):
    """Drawings along straight lines between pairs of noise vectors: (n_pairs, n_steps, 784).

    A generator that learnt a smooth map turns one drawing into the other
    through plausible images, rather than jumping.
    """
    rng = numpy.random.RandomState(seed)
    start, end = rng.normal(size=(2, n_pairs, 1, gan.n_noise))
    fractions = numpy.linspace(0, 1, n_steps)[None, :, None]
    noise = ((1 - fractions) * start + fractions * end).reshape(n_pairs * n_steps, gan.n_noise)
    return gan.draw(noise).reshape(n_pairs, n_steps, -1)


def load_gan(model_file):
    """The :class:`GAN` saved in ``model_file`` (by :func:`train_gan`)."""
    from dltutorials.support.models import load_network
    return load_network(model_file, 'GAN')


def saved_gan(model_file):
    if not model_file.exists():
        raise ModelFileError('%s: no saved GAN; train one first (python code/gan.py, with the '
                             'same --output-dir and --saveto)' % model_file)
    return load_gan(model_file)


def write_samples(model_file, n, seed=1234):
    """Draw ``n`` images with the saved GAN into ``samples.npz`` and ``samples.png``.

    Beside the model: the images as (n, 784) floats in [0, 1], and as one
    grid picture.  Returns the images.
    """
    images = saved_gan(model_file).sample(n, seed)
    path = model_file.with_name('samples.npz')
    numpy.savez_compressed(path, samples=images)
    columns = min(n, 40)
    rows = -(-n // columns)
    grid = numpy.zeros((rows * columns, images.shape[1]), dtype=images.dtype)
    grid[:n] = images
    from dltutorials.support.plotting import save_image_grid
    save_image_grid(grid.reshape(rows, columns, -1), model_file.with_name('samples.png'))
    print('%d drawings written to %s and %s' % (n, path, model_file.with_name('samples.png')))
    return images


def bad_generators(train_images, n, rng):
    """Drawings of generators that learnt nothing, for the measures' scale: name -> (n, 784)."""
    return {'uniform noise': rng.uniform(size=(n, train_images.shape[1])),
            'the training mean': numpy.repeat(train_images.mean(axis=0, keepdims=True), n, 0),
            'one training image': numpy.repeat(train_images[:1], n, 0),
            'training images (the floor)': train_images[rng.permutation(len(train_images))[:n]]}


def evaluate_gan(model_file, dataset, classifier, seed=1234):
    """Print the measures of the saved GAN's drawings, of bad generators' and of real images.

    ``classifier``: a LeNet5 model file trained on ``dataset``'s images.
    The Parzen estimate uses all the test images here.  Returns
    ``{name: measures}``.
    """
    from dltutorials.support.datasets import load_arrays

    if classifier is None:
        raise HyperparameterError('--evaluate needs --classifier, a LeNet5 model file trained on '
                                  'the same images (python code/convolutional_mlp.py --dataset '
                                  '...)')
    gan = saved_gan(model_file)
    (train_images, _), (valid_images, _), (test_images, _) = load_arrays(dataset)
    judge = DrawingJudge(classifier, test_images, valid_images, n_parzen=len(test_images))
    rng = numpy.random.RandomState(seed)
    candidates = dict({'%r' % gan: gan.sample(judge.n_samples, seed)},
                      **bad_generators(train_images, judge.n_samples, rng))
    results = {}
    print('%s: %d drawings each, against the %d test images of %s; features and classes by %s'
          % (model_file, judge.n_samples, len(test_images), dataset, classifier))
    for name, images in candidates.items():
        results[name] = judge.judge(images.astype(theano.config.floatX))
        print('%-*s  %s' % (max(map(len, candidates)), name, describe_measures(results[name])))
    return results


def main(argv=None):
    parser = command_line.build_parser(train_gan, __doc__.strip().split('\n')[0],
                                       saved_model_flags=False)
    use = parser.add_mutually_exclusive_group()
    use.add_argument('--sample', type=checks.positive_int.parse, metavar='N',
                     help='instead of training, draw N images with the model saved in '
                          '--output-dir: samples.npz and samples.png beside it')
    use.add_argument('--evaluate', action='store_true',
                     help='instead of training, measure the saved model\'s drawings (needs '
                          '--classifier)')
    arguments = vars(parser.parse_args(argv))
    using = {name: arguments.pop(name) for name in ('sample', 'evaluate')}
    options = {name: arguments.pop(name) for name in ('output_dir', 'quick', 'no_plot', 'quiet',
                                                      'resume')}

    def task():
        with run_options(output_dir=options['output_dir'], quick=options['quick'],
                         plot=not options['no_plot'], resume=options['resume'], script=True):
            model_file = output_path(arguments['saveto'])
            if using['sample'] is not None:
                return write_samples(model_file, using['sample'], arguments['seed'])
            if using['evaluate']:
                return evaluate_gan(model_file, arguments['dataset'], arguments['classifier'],
                                    arguments['seed'])
            return train_gan(**arguments)
    return command_line.run(task, options['quiet'])


if __name__ == '__main__':
    sys.exit(main())
