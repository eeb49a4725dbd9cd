"""Pictures of training: learning curves, confusion matrices, learnt filters as image tiles.

Figures are drawn with matplotlib's ``Figure`` class and saved to files,
never through ``pyplot``: no window opens in the middle of a script, a
machine with no screen needs nothing more, and a notebook keeps its own
backend (its plots still show inline after a training run has saved some).
"""
import logging
from pathlib import Path

import numpy

logger = logging.getLogger(__name__)


def save_figure(figure, path, what):
    """Write ``figure`` to the image file ``path`` (its folder created); log ``what`` it is."""
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    logger.info('%s written to %s', what, path)
    return path


def plot_learning_curve(history, n_train_batches, path, title='', score_name='error',
                        unit='%', scale=100.0):
    """Write validation and test error against epochs to the image file ``path``.

    ``history`` is :attr:`TrainingResult.history <dltutorials.training.TrainingResult>`:
    one record per validation; the test error is known only where a new best
    model was found, so it is drawn as points.  The scores are drawn as
    ``value * scale`` in ``unit`` (error rates in percent by default).
    Returns the path.
    """
    from matplotlib.figure import Figure

    epochs = [(r['iteration'] + 1) / float(n_train_batches) for r in history]
    figure = Figure(figsize=(6, 4))
    axes = figure.subplots()
    axes.plot(epochs, [scale * r['validation_error'] for r in history],
              label='validation ' + score_name)
    best = [(e, scale * r['test_error']) for e, r in zip(epochs, history)
            if r['test_error'] is not None]
    if best:
        axes.plot(*zip(*best), 'o', markersize=3,
                  label='test %s of each new best model' % score_name)
    axes.set_xlabel('epoch')
    axes.set_ylabel('%s (%s)' % (score_name, unit))
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend()
    return save_figure(figure, path, 'learning curve')


def save_filter_image(weights, path, img_shape=(28, 28), tile_shape=(10, 10)):
    """Write the first filters of ``weights`` (n_visible, n_hidden) to the image file ``path``.

    Column ``j`` of ``weights`` holds hidden unit ``j``'s incoming weights; each
    is drawn as an ``img_shape`` grey-level tile, scaled on its own to the
    full grey range, in a ``tile_shape`` grid with 1-pixel gaps (see
    :func:`~dltutorials.utils.tile_raster_images`).  Returns the path.
    """
    from PIL import Image
    from dltutorials.utils import tile_raster_images

    tiles = tile_raster_images(X=numpy.asarray(weights).T, img_shape=img_shape,
                               tile_shape=tile_shape, tile_spacing=(1, 1))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(tiles).save(path)
    logger.info('filters written to %s', path)
    return path


def save_image_grid(images, path, what='images', img_shape=(28, 28)):
    """Write ``images`` (n_rows, n_columns, height * width), values in [0, 1], as one grid to ``path``.

    Unlike filters, the images are not rescaled: grey levels are the values.
    Returns the path.
    """
    from PIL import Image
    from dltutorials.utils import tile_raster_images

    images = numpy.asarray(images)
    n_rows, n_columns = images.shape[:2]
    tiles = tile_raster_images(X=images.reshape(n_rows * n_columns, -1), img_shape=img_shape,
                               tile_shape=(n_rows, n_columns), tile_spacing=(1, 1),
                               scale_rows_to_unit_interval=False)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(tiles).save(path)
    logger.info('%s written to %s', what, path)
    return path


def plot_confusion_matrix(confusion, path, title=''):
    """Draw the confusion matrix (rows: true class, columns: predicted) to ``path``; return it.

    Each cell shows its count; the colour is the fraction of the row, so the
    classes a model confuses stand out whatever their sizes.
    """
    from matplotlib.figure import Figure

    confusion = numpy.asarray(confusion)
    fractions = confusion / numpy.maximum(confusion.sum(axis=1, keepdims=True), 1)
    figure = Figure(figsize=(6, 5.5))
    axes = figure.subplots()
    image = axes.imshow(fractions, cmap='Blues', vmin=0, vmax=1)
    for (row, column), count in numpy.ndenumerate(confusion):
        axes.text(column, row, str(count), ha='center', va='center', fontsize=7,
                  color='white' if fractions[row, column] > 0.5 else 'black')
    axes.set_xticks(range(confusion.shape[1]))
    axes.set_yticks(range(confusion.shape[0]))
    axes.set_xlabel('predicted class')
    axes.set_ylabel('true class')
    axes.set_title(title)
    figure.colorbar(image, ax=axes, label='fraction of the true class')
    return save_figure(figure, path, 'confusion matrix')


def plot_gan_curves(history, path, title=''):
    """Write a GAN's two losses by epoch, and its Fréchet distance where measured, to ``path``.

    ``history``: one record per epoch with ``epoch``, ``d_loss``, ``g_loss``
    and, when the drawings were measured, ``frechet``.  Returns the path.
    """
    from matplotlib.figure import Figure

    epochs = [record['epoch'] for record in history]
    measured = [record for record in history if 'frechet' in record]
    figure = Figure(figsize=(10 if measured else 6, 4))
    axes = figure.subplots(1, 2 if measured else 1, squeeze=False)[0]
    axes[0].plot(epochs, [record['d_loss'] for record in history], label="discriminator's loss")
    axes[0].plot(epochs, [record['g_loss'] for record in history], label="generator's loss")
    axes[0].set_xlabel('epoch')
    axes[0].set_ylabel('mean loss (nats)')
    axes[0].legend()
    if measured:
        axes[1].plot([record['epoch'] for record in measured],
                     [record['frechet'] for record in measured], 'o-', markersize=3)
        axes[1].set_xlabel('epoch')
        axes[1].set_ylabel('Fréchet distance to the test images')
        axes[1].set_yscale('log')
    for each in axes:
        each.grid(alpha=0.3)
    figure.suptitle(title)
    return save_figure(figure, path, 'loss curves')


def plot_hmc_chains(samples, history, burnin, path, title='', coordinates=None):
    """Write HMC's traces and its adaptation to ``path``.

    Left: two coordinates of every chain by draw (``samples``: kept draws,
    (n_draws, n_chains, dim); ``coordinates``: {name: index}, default the
    first two).  Right: the step size and the
    average acceptance rate after every draw (``history``, burn-in
    included; a dotted line where burn-in ends).  Returns the path.
    """
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 4))
    traces, adaptation = figure.subplots(1, 2)
    if coordinates is None:
        coordinates = {'x[%d]' % k: k for k in range(min(2, samples.shape[2]))}
    for (name, coordinate), style in zip(coordinates.items(), ('-', ':')):
        for chain in range(samples.shape[1]):
            traces.plot(samples[:, chain, coordinate], style, linewidth=0.6,
                        label='%s, chain %d' % (name, chain))
    traces.set_xlabel('draw (after burn-in)')
    traces.set_ylabel('value')
    traces.legend(fontsize='small', ncol=2)
    draws = numpy.arange(1, len(history['stepsize']) + 1)
    adaptation.plot(draws, history['stepsize'], label='step size')
    adaptation.set_xlabel('draw')
    adaptation.set_ylabel('step size')
    rate = adaptation.twinx()
    rate.plot(draws, history['acceptance'], color='tab:orange', linewidth=0.8,
              label='average acceptance rate')
    rate.set_ylabel('average acceptance rate')
    rate.set_ylim(0, 1)
    if burnin:
        adaptation.axvline(burnin, color='grey', linestyle=':')
    adaptation.legend(loc='lower left')
    rate.legend(loc='lower right')
    for axes in (traces, adaptation):
        axes.grid(alpha=0.3)
    figure.suptitle(title)
    return save_figure(figure, path, 'HMC chains')


def plot_word_map(words, points, path, title=''):
    """Write ``words`` placed at ``points`` ((n, 2): a projection of their vectors) to ``path``."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(14, 14))
    axes = figure.subplots()
    axes.scatter(points[:, 0], points[:, 1], s=4, color='tab:blue')
    for word, (x, y) in zip(words, points):
        axes.annotate(word, (x, y), fontsize=8, xytext=(2, 2), textcoords='offset points')
    axes.set_xlabel('first principal component')
    axes.set_ylabel('second principal component')
    axes.set_title(title or 'the %d most frequent words' % len(words))
    return save_figure(figure, path, 'word map')


def plot_piano_roll(piano_roll, r, dt, path, title=''):
    """Write ``piano_roll`` (n_steps, r[1] - r[0]) as a picture: time across, pitch up."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 4))
    axes = figure.subplots()
    axes.imshow(numpy.asarray(piano_roll).T, origin='lower', aspect='auto',
                interpolation='nearest', cmap='gray_r',
                extent=(0, dt * len(piano_roll), r[0], r[1]))
    axes.set_xlabel('time (s, %g s per step)' % dt)
    axes.set_ylabel('MIDI note number')
    axes.set_title(title)
    return save_figure(figure, path, 'piano roll')


def _score_axis(unit):
    """(scale, label) of a search's score: error rates in percent, or nats."""
    return (100.0, 'validation error (%)') if unit == '%' else (1.0, 'validation loss (nats)')


def plot_validation_scatter(records, space, path, unit='%', title=''):
    """Validation score of each trial against each hyper-parameter of ``space``: one panel each.

    ``records``: the trials' records (dicts with the hyper-parameters and
    ``validation_error``; failed trials are left out).  A :class:`log_uniform
    <dltutorials.model_selection.log_uniform>` hyper-parameter gets a log
    axis, a choice one position per value.  Returns the path.
    """
    from matplotlib.figure import Figure

    scale, label = _score_axis(unit)
    records = [r for r in records if r.get('validation_error') is not None]
    names = [name for name, value in space.items() if hasattr(value, 'draw')]
    figure = Figure(figsize=(3.2 * max(len(names), 1), 3.2))
    panels = figure.subplots(1, max(len(names), 1), squeeze=False)[0]
    scores = [scale * r['validation_error'] for r in records]
    for axes, name in zip(panels, names):
        values = [r[name] for r in records]
        if hasattr(space[name], 'values'):          # a choice: one position per value
            labels = [str(v) for v in space[name].values]
            axes.scatter([labels.index(str(v)) for v in values], scores, s=14)
            axes.set_xticks(range(len(labels)))
            axes.set_xticklabels(labels, rotation=30 if len(labels) > 4 else 0)
        else:
            axes.scatter(values, scores, s=14)
            if space[name].log:
                axes.set_xscale('log')
        axes.set_xlabel(name)
        axes.grid(alpha=0.3)
    panels[0].set_ylabel(label)
    if title:
        figure.suptitle(title)
    return save_figure(figure, path, 'validation against hyper-parameters')


def plot_best_so_far(curves, grid_points, path, unit='%', title=''):
    """Best validation score so far against the number of trials; grid searches as points.

    ``curves``: ``{label: [best after trial 1, 2, ...]}`` (random searches);
    ``grid_points``: ``{number of trials: the grid's best}``.  Returns the path.
    """
    from matplotlib.figure import Figure

    scale, label = _score_axis(unit)
    figure = Figure(figsize=(6, 4))
    axes = figure.subplots()
    for name, curve in curves.items():
        points = [(i + 1, scale * v) for i, v in enumerate(curve) if v is not None]
        if points:
            axes.step(*zip(*points), where='post', alpha=0.8, label=name)
    grid = [(n, scale * v) for n, v in sorted(grid_points.items()) if v is not None]
    if grid:
        axes.plot(*zip(*grid), 'ks--', label='grid search of that many trials')
    axes.set_xscale('log', base=2)
    axes.set_xlabel('trials')
    axes.set_ylabel('best ' + label)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize='small')
    return save_figure(figure, path, 'best-so-far curve')
