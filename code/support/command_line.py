"""What every tutorial script's command line shares: flags, logging, clean errors.

Scripts keep one convention: flags spelled like the entry point's keyword
arguments with dashes (``--learning-rate``), defaults shown in ``--help``,
plus ``--dataset``, ``--seed`` and ``--output-dir``.  Bad input ends the
script with one ``error: ...`` line on stderr and exit status 2.
"""
import argparse
import logging
import math
import sys
from pathlib import Path

from dltutorials.support.errors import TutorialError

logger = logging.getLogger(__name__)


def _number_type(convert, accept, requirement):
    """An argparse type: ``convert(text)``, refused unless ``accept(value)``."""
    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError('%r is not %s' % (text, requirement)) from None
        if not (math.isfinite(value) and accept(value)):
            raise argparse.ArgumentTypeError('must be %s, got %s' % (requirement, text))
        return value
    parse.__name__ = requirement.replace(' ', '_')
    return parse


#: argparse types, each refusing what is outside its range with a clear message.
positive_int = _number_type(int, lambda v: v > 0, 'a positive integer')
non_negative_int = _number_type(int, lambda v: v >= 0, 'an integer >= 0')
positive_float = _number_type(float, lambda v: v > 0, 'a positive number')
non_negative_float = _number_type(float, lambda v: v >= 0, 'a number >= 0')
fraction = _number_type(float, lambda v: 0 <= v < 1, 'a fraction in [0, 1)')


def build_parser(description, dataset='mnist.pkl.gz', output_dir='results'):
    """An ArgumentParser with the flags every script has; add the model's own to it."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--dataset', default=dataset,
                        help='a .pkl.gz file, a folder of IDX files, or one of the names '
                             'mnist.pkl.gz, mnist, fashion-mnist')
    parser.add_argument('--seed', type=int, default=1234,
                        help='seed of the random number generators')
    parser.add_argument('--output-dir', default=output_dir,
                        help='folder for the saved model and plots')
    parser.add_argument('--quiet', action='store_true', help='log warnings only')
    return parser


class _ScriptHandler(logging.StreamHandler):
    """The handler a script puts on the ``dltutorials`` logger (one at most)."""


def add_training_arguments(parser, learning_rate, n_epochs, batch_size, patience):
    """The flags of every script that trains with early stopping, with the model's defaults.

    ``--learning-rate``, ``--n-epochs``, ``--batch-size``, ``--patience``, and
    those of :func:`add_run_arguments`.
    """
    parser.add_argument('--learning-rate', type=positive_float, default=learning_rate,
                        help='SGD step size')
    parser.add_argument('--n-epochs', type=positive_int, default=n_epochs,
                        help='the most passes over the training set')
    parser.add_argument('--batch-size', type=positive_int, default=batch_size,
                        help='examples per minibatch')
    parser.add_argument('--patience', type=positive_int, default=patience,
                        help='minibatches to look at before stopping without improvement')
    add_run_arguments(parser)


def add_run_arguments(parser):
    """``--quick``, ``--no-plot``, ``--predict``: flags of every script that saves a classifier."""
    parser.add_argument('--quick', action='store_true',
                        help='smoke test: one minibatch of each split, one epoch')
    parser.add_argument('--no-plot', action='store_true',
                        help='do not write the learning-curve image')
    parser.add_argument('--predict', nargs='*', metavar='IMAGE',
                        help='instead of training, load the saved model from --output-dir and '
                             'classify these image files (none: the first 10 test images)')


def setup_logging(quiet=False):
    """Log dltutorials' INFO lines (WARNING with ``quiet``) to stderr, bare, as the tutorial prints them.

    Only the package's own logger is set up, so whatever else the process
    logs keeps its own configuration.
    """
    # '__main__' too: a model module run as a script logs under that name.
    for name in ('dltutorials', '__main__'):
        script_logger = logging.getLogger(name)
        for handler in [h for h in script_logger.handlers if isinstance(h, _ScriptHandler)]:
            script_logger.removeHandler(handler)
        handler = _ScriptHandler(sys.stderr)
        handler.setFormatter(logging.Formatter('%(message)s'))
        script_logger.addHandler(handler)
        script_logger.setLevel(logging.WARNING if quiet else logging.INFO)


def run(task, quiet=False):
    """Run ``task()`` for a script; return the process exit status.

    0 on success; 2 with a one-line ``error:`` message for bad input (a
    :class:`~dltutorials.support.errors.TutorialError`); 130 on Ctrl-C.
    """
    setup_logging(quiet)
    try:
        task()
    except TutorialError as err:
        print('error: %s' % err, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print('interrupted', file=sys.stderr)
        return 130
    return 0


def train_or_predict(args, train, predict, model_file):
    """Run a training script: with --predict, ``predict(saved model, dataset, images)``, else ``train()``.

    Returns the exit status, as :func:`run`.
    """
    def task():
        if args.predict is not None:
            predict(Path(args.output_dir) / model_file, args.dataset, args.predict)
        else:
            train()
    return run(task, args.quiet)
