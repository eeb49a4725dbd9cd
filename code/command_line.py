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

from dltutorials.errors import TutorialError

logger = logging.getLogger(__name__)


def positive_int(text):
    """argparse type: an integer > 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError('%r is not an integer' % text) from None
    if value <= 0:
        raise argparse.ArgumentTypeError('must be positive, got %d' % value)
    return value


def positive_float(text):
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError('%r is not a number' % text) from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError('must be a positive number, got %s' % text)
    return value


def non_negative_float(text):
    """argparse type: a finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError('%r is not a number' % text) from None
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError('must be a number >= 0, got %s' % text)
    return value


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


def add_run_options(parser):
    """Flags of the scripts that train with early stopping: --quick, --no-plot, --predict."""
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
    :class:`~dltutorials.errors.TutorialError`); 130 on Ctrl-C.
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
