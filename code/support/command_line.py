"""What every tutorial script's command line shares: flags, logging, clean errors.

Scripts keep one convention: flags spelled like the training function's
keyword arguments with dashes (``--learning-rate`` for ``learning_rate``),
defaults shown in ``--help``, plus the run's own flags (``--output-dir``,
``--quick``, ``--no-plot``, ``--quiet``) and the two that use a saved model
instead of training (``--predict``, ``--evaluate``).  :func:`main` turns
the rest into keyword arguments: ``train(**vars(args))``.  Bad input ends
the script with one ``error: ...`` line on stderr and exit status 2.
"""
import argparse
import inspect
import logging
import re
import sys
from pathlib import Path

import numpy

from dltutorials.support.checks import Choice, Switch
from dltutorials.support.errors import DivergenceError, TutorialError
from dltutorials.support.runs import ConsoleHandler, checkpoints_of_run, run_options

#: Exit statuses of the scripts.
EXIT_BAD_INPUT = 2       # a bad argument, dataset, model file or output folder
EXIT_DIVERGED = 3        # the cost became NaN or infinite
EXIT_INTERRUPTED = 130   # Ctrl-C (128 + SIGINT), as shells report it

#: Flags that say how to run, not what to train: they never reach the training function.
RUN_FLAGS = ('output_dir', 'quick', 'no_plot', 'quiet', 'resume', 'predict', 'evaluate')


def parameter_help(docstring):
    """``{argument name: its description}`` from a numpydoc ``Parameters`` section.

    An argument documented by its type alone is described by its type.
    """
    lines = inspect.cleandoc(docstring or '').splitlines()
    if 'Parameters' not in lines:
        return {}
    kinds, helps, names = {}, {}, []
    for line in lines[lines.index('Parameters') + 2:]:
        if not line.strip():
            continue
        if not line.startswith(' '):
            if ' : ' not in line:
                break                               # the next section's title
            names, kind = line.split(' : ', 1)
            names = [name.strip() for name in names.split(',')]
            for name in names:
                kinds[name], helps[name] = kind.strip(), ''
        else:                                       # a description, indented
            for name in names:
                helps[name] = (helps[name] + ' ' + line.strip()).strip()
    # Sphinx cross-references read as their last name: ":func:`~a.b`" -> "b".
    return {name: re.sub(r':\w+:`~?([^`]*)`', lambda m: m.group(1).split('.')[-1],
                         helps[name] or kinds[name]).rstrip('.')
            for name in kinds}


def build_parser(train, description, skip=(), saved_model_flags=True):
    """The command line of a script whose work is ``train(**flags)``.

    One flag per argument of ``train`` (an :func:`~dltutorials.support.runs.entry_point`),
    spelled like it with dashes, with its default, the rule it is checked
    by as the flag's type (sequences take several values) and its docstring
    description as help; then the run's own flags, with ``--predict`` and
    ``--evaluate`` for image models (``saved_model_flags``).  ``skip``:
    arguments with no flag (besides ``verbose``, which ``--quiet`` stands for).
    """
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    rules = getattr(train, 'rules', {})
    helps = parameter_help(train.__doc__)
    for name, parameter in inspect.signature(train).parameters.items():
        if (name in ('verbose', 'resume') or name in skip
                or parameter.kind is parameter.VAR_KEYWORD):
            continue
        rule = rules.get(name)
        options = dict(default=parameter.default, help=helps.get(name, ' '))
        if isinstance(parameter.default, tuple):
            options['default'] = list(parameter.default)
        elif callable(parameter.default):      # (the original lstm.py's optimizer=adadelta)
            options['default'] = parameter.default.__name__
        if isinstance(rule, Switch):
            # --batch-norm / --no-batch-norm
            if hasattr(argparse, 'BooleanOptionalAction'):
                options['action'] = argparse.BooleanOptionalAction
            else:           # (Python 3.8: the two flags by hand)
                parser.add_argument('--no-' + name.replace('_', '-'), dest=name,
                                    action='store_false', default=parameter.default,
                                    help='not: ' + options['help'])
                options['action'] = 'store_true'
        elif rule is not None:
            options['type'] = rule.parse
            if rule.each:
                options['nargs'] = rule.length or '+'
            if isinstance(rule, Choice):
                options['metavar'] = '{%s}' % ','.join(rule.choices)
        parser.add_argument('--' + name.replace('_', '-'), **options)
    parser.add_argument('--output-dir', default='results',
                        help='folder for the saved model and plots')
    parser.add_argument('--quiet', action='store_true', help='log warnings only')
    parser.add_argument('--quick', action='store_true',
                        help='smoke test: one minibatch of each split, one epoch')
    parser.add_argument('--no-plot', action='store_true',
                        help='do not write the learning-curve and filter images')
    parser.add_argument('--resume', action='store_true',
                        help='go on from where an interrupted run with the same flags '
                             'stopped (its checkpoint in --output-dir)')
    if not saved_model_flags:
        return parser
    use = parser.add_mutually_exclusive_group()
    use.add_argument('--predict', nargs='*', metavar='IMAGE',
                     help='instead of training, load the saved model from --output-dir and '
                          'classify these image files (none: the first 10 test images)')
    use.add_argument('--evaluate', action='store_true',
                     help='instead of training, load the saved model from --output-dir and '
                          'report its error rate and confusion matrix on the test split of '
                          '--dataset')
    return parser


class _ScriptHandler(ConsoleHandler):
    """The handler a script puts on the ``dltutorials`` logger (one at most)."""


def setup_logging(quiet=False):
    """Log the package's INFO lines (WARNING with ``quiet``) to stderr, bare, as the tutorial did.

    Only the package's own logger is set up, so whatever else the process
    logs keeps its own configuration.
    """
    # '__main__' too: a model module run as a script logs under that name.
    for name in ('dltutorials', '__main__'):
        script_logger = logging.getLogger(name)
        for handler in [h for h in script_logger.handlers if isinstance(h, _ScriptHandler)]:
            script_logger.removeHandler(handler)
        handler = _ScriptHandler('stderr')
        script_logger.addHandler(handler)
        script_logger.setLevel(logging.WARNING if quiet else logging.INFO)


def run(task, quiet=False):
    """Run ``task()`` for a script; return the process exit status.

    0 on success; with a one-line ``error:`` message, :data:`EXIT_DIVERGED`
    when training diverged and :data:`EXIT_BAD_INPUT` for other bad input
    (a :class:`~dltutorials.support.errors.TutorialError`);
    :data:`EXIT_INTERRUPTED` on Ctrl-C, also when the training loop caught it
    and returned what it had, with one line saying how to go on.
    """
    setup_logging(quiet)
    try:
        result = task()
    except DivergenceError as err:
        print('error: %s' % err, file=sys.stderr)
        return EXIT_DIVERGED
    except TutorialError as err:
        print('error: %s' % err, file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(interrupted_message(), file=sys.stderr)
        return EXIT_INTERRUPTED
    if isinstance(result, dict) and result.get('stopped_by') == 'interrupted':
        print(interrupted_message(), file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


def interrupted_message():
    """The line a script prints when Ctrl-C stopped it: where its state is, how to go on."""
    saved = checkpoints_of_run()
    if not saved:
        return 'interrupted (nothing to resume: no epoch had ended)'
    return ('interrupted: the run\'s state is saved in %s; to go on, run the same command '
            'with --resume' % ', '.join(str(path) for path in saved))


def main(train, model_file, description, argv=None, output_dir_keyword=None):
    """A tutorial script: parse ``argv``, then train, or predict or evaluate with the saved model.

    ``train`` is called with the parsed flags as keyword arguments (those
    of :data:`RUN_FLAGS` excepted; see :func:`build_parser`), inside the
    :func:`~dltutorials.support.runs.run_options` they set;
    ``output_dir_keyword`` passes ``--output-dir`` to it under that name
    too.  ``model_file`` is the name of the file the script saves in the
    output folder, which ``--predict`` and ``--evaluate`` use (or a
    function giving it from the parsed arguments; None: a script with
    neither flag).  ``description``: the script's, for ``--help``
    (its first line is shown).  Returns the exit status, as :func:`run`.
    """
    parser = build_parser(train, description.strip().split('\n')[0],
                          skip=[output_dir_keyword] if output_dir_keyword else (),
                          saved_model_flags=model_file is not None)
    arguments = vars(parser.parse_args(argv))
    options = {name: arguments.pop(name, None) for name in RUN_FLAGS}
    if output_dir_keyword:
        arguments[output_dir_keyword] = options['output_dir']
    if callable(model_file):
        model_file = model_file(arguments)
    saved_model = Path(options['output_dir']) / model_file if model_file else None

    def task():
        with run_options(output_dir=options['output_dir'], quick=options['quick'],
                         plot=not options['no_plot'], resume=options['resume'], script=True):
            if options['predict'] is not None:
                return report_predictions(saved_model, arguments['dataset'], options['predict'])
            if options['evaluate']:
                return report_evaluation(saved_model, arguments['dataset'])
            return train(**arguments)
    return run(task, options['quiet'])


def report_predictions(model_file, dataset='mnist.pkl.gz', images=None, n=10):
    """Classify image files, or the first ``n`` test images of ``dataset``; print and return."""
    from dltutorials.support.datasets import load_arrays
    from dltutorials.support.models import as_images, load_model

    model = load_model(model_file)
    names = images or ['test image %d' % i for i in range(n)]
    # Image files are read once: the dA's report compares them with its output.
    pixels = as_images(images or load_arrays(dataset)[2][0][:n])
    predicted = model.predict(pixels)
    if not model.is_classifier:
        # A dA's prediction is a reconstruction: say how far each is from its image.
        difference = numpy.abs(predicted - pixels).mean(axis=1)
        for name, value in zip(names, difference):
            print('%s: mean absolute reconstruction error %.3f' % (name, value))
    elif images:
        for name, label in zip(names, predicted):
            print('%s: %s' % (name, label))
    else:
        print('Predicted values for the first %d examples in test set:' % len(predicted))
        print(predicted)
    return predicted


def report_evaluation(model_file, dataset='mnist.pkl.gz'):
    """Print the saved model's scores on the test split of ``dataset``; draw its confusion matrix.

    The matrix goes beside the model as ``<model>_confusion.png``.  Returns
    the scores (see :meth:`~dltutorials.support.models.Model.evaluate`).
    """
    from dltutorials.support.models import load_model
    from dltutorials.support.plotting import plot_confusion_matrix

    model = load_model(model_file)
    scores = model.evaluate(dataset)
    if not model.is_classifier:
        print('%s on the %d test images of %s: mean reconstruction cross-entropy %.2f'
              % (model_file, scores['n_examples'], dataset, scores['reconstruction_cost']))
        return scores
    print('%s on the %d test images of %s: error rate %.2f %%'
          % (model_file, scores['n_examples'], dataset, 100 * scores['error_rate']))
    print('confusion matrix (rows: true class, columns: predicted class):')
    confusion = scores['confusion']
    print('      ' + ''.join('%6d' % k for k in range(len(confusion))))
    for k, row in enumerate(confusion):
        print('%6d' % k + ''.join('%6d' % count for count in row))
    model_file = Path(model_file)
    scores['plot_file'] = str(plot_confusion_matrix(
        confusion, model_file.with_name(model_file.stem + '_confusion.png'),
        title='%s on %s' % (model_file.name, Path(str(dataset)).name)))
    return scores
