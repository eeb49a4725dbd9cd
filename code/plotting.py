"""Pictures of training: learning curves (and, later, filters as image tiles).

Uses matplotlib's file-only Agg backend, so plots are written on machines
with no screen and never open windows in the middle of a script.
"""
import logging
from pathlib import Path

logger = logging.getLogger(__name__)


def plot_learning_curve(history, n_train_batches, path, title=''):
    """Write validation and test error against epochs to the image file ``path``.

    ``history`` is :attr:`TrainingResult.history <dltutorials.training.TrainingResult>`:
    one record per validation; the test error is known only where a new best
    model was found, so it is drawn as points.  Returns the path.
    """
    import matplotlib
    matplotlib.use('Agg', force=False)
    from matplotlib.figure import Figure

    epochs = [(r['iteration'] + 1) / float(n_train_batches) for r in history]
    figure = Figure(figsize=(6, 4))
    axes = figure.subplots()
    axes.plot(epochs, [100 * r['validation_error'] for r in history], label='validation error')
    best = [(e, 100 * r['test_error']) for e, r in zip(epochs, history)
            if r['test_error'] is not None]
    if best:
        axes.plot(*zip(*best), 'o', markersize=3, label='test error of each new best model')
    axes.set_xlabel('epoch')
    axes.set_ylabel('error (%)')
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    logger.info('learning curve written to %s', path)
    return path
