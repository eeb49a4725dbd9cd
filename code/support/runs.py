"""What a training run needs besides the model: options, checks, progress, files.

The model modules' training functions take the model's own arguments only.
Everything about *how* a run happens is here:

* **run options** (:class:`RunOptions`): where files go, the ``--quick``
  smoke test, whether to draw plots.  The command line sets them with
  :func:`run_options`; from Python, the defaults apply, or::

      with run_options(output_dir='my_results', plot=False):
          train_mlp(n_epochs=5)

* **the boundary** (:func:`entry_point`): a training function's arguments
  are checked once, against the rules of :mod:`dltutorials.support.checks`,
  and in a Python session where nobody set up logging (a notebook), its
  progress is shown as it trains, unless ``verbose=False``;
* **the data and the files** of a run: :func:`load_training_data`,
  :func:`train_and_save` (the early-stopping loop, saving each new best model
  and drawing the learning curve), :func:`save_filters`;
* **checkpoints and Ctrl-C**: the run's identity and checkpoint files (see
  :mod:`dltutorials.support.checkpoints`), and :func:`stop_requests`, which
  lets a loop finish its minibatch before stopping.
"""
import contextlib
import dataclasses
import functools
import inspect
import logging
import signal
import sys
import tempfile
import threading
from pathlib import Path

from dltutorials.support.errors import HyperparameterError, OutputFolderError

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """How a run happens (not what it trains)."""

    output_dir: Path = Path('results')   # where model files and pictures go
    quick: bool = False                  # smoke test: one minibatch per split, one epoch
    plot: bool = True                    # draw learning curves and filters
    resume: bool = False                 # go on from the run's checkpoints
    script: bool = False                 # run by a tutorial script's command line


_current = [RunOptions()]


def current_run():
    """The :class:`RunOptions` in force."""
    return _current[-1]


@contextlib.contextmanager
def run_options(**changes):
    """Within the ``with`` block, the current run options with ``changes`` applied."""
    if 'output_dir' in changes:
        changes['output_dir'] = Path(changes['output_dir'])
    _current.append(dataclasses.replace(current_run(), **changes))
    try:
        yield current_run()
    finally:
        _current.pop()


def output_path(name):
    """``name`` inside the run's output folder."""
    return current_run().output_dir / name


def prepare_output_dir():
    """Create the run's output folder and check it takes files, before any training.

    Raises OutputFolderError naming the folder and the reason, so that a run
    never trains for hours and then fails to save.
    """
    folder = current_run().output_dir
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise OutputFolderError('cannot write to the output folder %s: %s'
                                % (folder, err.strerror or err)) from None
    return folder


def epochs(n_epochs):
    """``n_epochs``, or 1 in a quick run."""
    return 1 if current_run().quick else n_epochs


# --------------------------------------------------------------------------
# A run's identity and checkpoints
# --------------------------------------------------------------------------

@dataclasses.dataclass
class _Run:
    """What the training functions called by one outermost call share."""

    calls: list = dataclasses.field(default_factory=list)  # (name, arguments), outermost first
    checkpoints: list = dataclasses.field(default_factory=list)   # paths, in the output folders
    resumed: bool = False       # a loop went on from its checkpoint
    interrupted: bool = False   # a training function returned after a Ctrl-C


_runs = []                   # the run in progress, if any (a list, to be set in place)
_last_run_checkpoints = []   # the checkpoints of the last run, for the script's last line


def run_identity():
    """What makes a checkpoint this run's: the innermost training function and its arguments.

    With the engine and ``floatX``, which change the numbers, and ``quick``.
    """
    from dltutorials.support.checkpoints import identity_json
    from dltutorials.support.engine import ENGINE, theano

    name, arguments = _runs[-1].calls[-1] if _runs and _runs[-1].calls else ('', {})
    return identity_json(dict(function=name, arguments=arguments, engine=ENGINE,
                              floatX=theano.config.floatX, quick=current_run().quick))


def register_checkpoint(path):
    """Note a checkpoint of the run, to delete when the run ends normally."""
    if _runs and path not in _runs[-1].checkpoints:
        _runs[-1].checkpoints.append(path)


def mark_resumed():
    if _runs:
        _runs[-1].resumed = True


def run_has_resumed():
    """True once a loop of this run went on from its checkpoint."""
    return bool(_runs) and _runs[-1].resumed


def checkpoints_of_run():
    """The checkpoint files of the run in progress (or of the last one), that exist."""
    return [path for path in (_runs[-1].checkpoints if _runs else _last_run_checkpoints)
            if path.exists()]


@contextlib.contextmanager
def _training_call(function, arguments):
    """Record a call of a training function; at the end of the outermost, clean up."""
    outermost = not _runs
    if outermost:
        _runs.append(_Run())
    run = _runs[-1]
    # The module's file, not its name: run as a script, a model module is '__main__'.
    name = '%s.%s' % (Path(inspect.getfile(function)).stem, function.__name__)
    run.calls.append((name, {key: value for key, value in arguments.items()
                             if key != 'verbose'}))
    finished = False
    try:
        yield run
        finished = True
    finally:
        run.calls.pop()
        if outermost:
            _runs.pop()
            _last_run_checkpoints[:] = run.checkpoints
            if finished and not run.interrupted:
                for path in run.checkpoints:
                    if path.exists():
                        path.unlink()


class StopRequest:
    """Set by a first Ctrl-C inside :func:`stop_requests`."""

    requested = False


@contextlib.contextmanager
def stop_requests():
    """Within the block, a first Ctrl-C asks to stop; a second stops at once.

    Yields a :class:`StopRequest` whose ``requested`` the loop checks
    between minibatches: stopping there leaves the parameters consistent
    (a KeyboardInterrupt raised in the middle of a compiled function's
    updates might not), so the loop can save a checkpoint and go on later
    exactly where it stopped.  The second Ctrl-C raises KeyboardInterrupt
    as usual.  Outside the main thread (where signals cannot be caught)
    Ctrl-C keeps its usual effect.
    """
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return

    def ask_to_stop(signum, frame):
        if request.requested:
            raise KeyboardInterrupt
        request.requested = True
        logger.warning('stopping after this step (Ctrl-C again to stop at once)')

    previous = signal.signal(signal.SIGINT, ask_to_stop)
    try:
        yield request
    finally:
        signal.signal(signal.SIGINT, previous)


# --------------------------------------------------------------------------
# The boundary: checked arguments, visible progress
# --------------------------------------------------------------------------

class ConsoleHandler(logging.StreamHandler):
    """Writes bare log lines to ``sys.<stream_name>`` as it is when a line is logged.

    Not as it was when the handler was made: a notebook gives each cell its
    own ``sys.stdout``, and pytest closes the stderr it captured for a test.
    """

    def __init__(self, stream_name):
        super().__init__()
        self.stream_name = stream_name
        self.setFormatter(logging.Formatter('%(message)s'))

    @property
    def stream(self):
        return getattr(sys, self.stream_name)

    @stream.setter
    def stream(self, value):
        pass


class _ProgressHandler(ConsoleHandler):
    """The handler :func:`show_progress` puts on the ``dltutorials`` logger (one at most)."""


def tutorial_logger(module_name):
    """The logger of a tutorial module, in the ``dltutorials`` hierarchy however it was imported.

    The original scripts import the modules by file name (``import dA``,
    from the code/ folder), which names them ``dA``, not ``dltutorials.dA``:
    their lines would miss the package's handlers.  Run as a script, a
    module keeps ``__main__`` (which :func:`~dltutorials.support.command_line.setup_logging`
    sets up).
    """
    if module_name == '__main__' or module_name.startswith('dltutorials.'):
        return logging.getLogger(module_name)
    return logging.getLogger('dltutorials.' + module_name)


def show_progress(verbose=True):
    """Print the package's INFO lines if nobody set up logging (``verbose=False``: warnings only).

    Logging configured by the user (``logging.basicConfig``, a script's
    handler, pytest's capture) is left alone: it decides, also when it was
    set up after an earlier call.
    """
    package_logger = logging.getLogger('dltutorials')
    for handler in [h for h in package_logger.handlers if isinstance(h, _ProgressHandler)]:
        package_logger.removeHandler(handler)
        package_logger.setLevel(logging.NOTSET)
    if package_logger.hasHandlers():
        return
    package_logger.addHandler(_ProgressHandler('stdout'))
    package_logger.setLevel(logging.INFO if verbose else logging.WARNING)


def entry_point(**rules):
    """Decorate a training function: check its arguments by ``rules``, then show its progress.

    ``rules`` maps argument names to :class:`~dltutorials.support.checks.Rule`\\ s.
    A bad value raises :class:`~dltutorials.support.errors.HyperparameterError`
    naming it, before any data is loaded; sequences arrive as lists.  An
    argument whose default is None may be None.  If the function has a
    ``verbose`` argument, :func:`show_progress` follows it.

    The decorated function also takes ``resume=True``: go on from the
    checkpoints of an interrupted run with the same arguments (see
    :mod:`dltutorials.support.checkpoints`).  A call that ends normally
    deletes its run's checkpoints.
    """
    def decorate(function):
        signature = inspect.signature(function)
        unknown = set(rules) - set(signature.parameters)
        if unknown:
            raise TypeError('%s has no argument %s' % (function.__name__, ', '.join(unknown)))

        @functools.wraps(function)
        def checked(*args, resume=None, **kwargs):
            try:
                bound = signature.bind(*args, **kwargs)
            except TypeError as err:
                raise HyperparameterError('%s(): %s' % (function.__name__, err)) from None
            bound.apply_defaults()
            for name, rule in rules.items():
                value = bound.arguments[name]
                if not (value is None and signature.parameters[name].default is None):
                    bound.arguments[name] = rule.check(name, value)
            if 'verbose' in bound.arguments:
                show_progress(bound.arguments['verbose'])
            options = {} if resume is None else {'resume': bool(resume)}
            outermost = not _runs
            with run_options(**options), _training_call(function, bound.arguments) as run:
                result = function(*bound.args, **bound.kwargs)
                # An interrupted run keeps its checkpoints, to go on from them.
                if isinstance(result, dict) and result.get('stopped_by') == 'interrupted':
                    run.interrupted = True
            if run.interrupted and outermost and not current_run().script:
                # (A script says it in its last line, with the flag to use.)
                logger.warning('interrupted: the state is saved in %s; to go on, call %s again '
                               'with the same arguments and resume=True',
                               ', '.join(str(path) for path in checkpoints_of_run()),
                               function.__name__)
            return result
        checked.rules = rules     # the command line's flags take their types from them
        # help() and the notebook's signature show the keyword the wrapper adds.
        checked.__signature__ = signature.replace(parameters=list(
            signature.parameters.values()) + [inspect.Parameter(
                'resume', inspect.Parameter.KEYWORD_ONLY, default=None)])
        return checked
    return decorate


# --------------------------------------------------------------------------
# Data and files of a run
# --------------------------------------------------------------------------

def load_training_data(dataset, batch_size, overfit=None):
    """``load_data(dataset)`` and the number of full training minibatches per epoch.

    In a quick run each split keeps one minibatch.  With ``overfit`` (a
    number of examples), the lecture's first debugging step: training keeps
    that many examples, and they are also the validation and test sets, so
    the scores are training errors.  Raises HyperparameterError when
    ``batch_size`` exceeds the training set, and OutputFolderError when the
    output folder cannot take the results.
    """
    from dltutorials.data_loading import load_data, n_examples, shared_dataset, shared_storage

    prepare_output_dir()
    datasets = load_data(dataset, limit=batch_size if current_run().quick else None)
    if overfit:
        train_x, train_y = datasets[0]
        if overfit > n_examples(train_x):
            raise HyperparameterError('overfit %d is more than the %d training examples'
                                      % (overfit, n_examples(train_x)))
        few = shared_dataset((train_x.get_value()[:overfit],
                              shared_storage(train_y).get_value()[:overfit]))
        datasets = [few, few, few]
    n_train = n_examples(datasets[0][0])
    if n_train < batch_size:
        raise HyperparameterError('batch_size %d is larger than the %d training examples'
                                  % (batch_size, n_train))
    return datasets, n_train // batch_size


def train_and_save(network, train_fn, validate_fn, test_fn, n_train_batches, n_epochs,
                   model_file, architecture, dataset, overfit=None, **loop_options):
    """Train ``network`` with early stopping; save each new best model; return a result dict.

    The loop's state is checkpointed to ``<model>.checkpoint.npz`` (see
    :mod:`dltutorials.support.checkpoints`).  The best parameters go to ``model_file`` in the run's output folder,
    with ``architecture`` (the keyword arguments that rebuild ``network``)
    and the scores; at the end they are put back into ``network``, so the
    returned model is the best one, not the last.  With plots on, the
    learning curve goes beside it as ``<model>_curve.png``.

    With ``overfit`` (see :func:`load_training_data`) no model file and no
    plot are written (they would replace a real run's) and the last line
    says whether the training error reached 0.

    Returns the :class:`~dltutorials.training.TrainingResult` fields plus
    ``model_file``, ``plot_file`` (None without a plot) and ``model`` (a
    :class:`~dltutorials.support.models.Model` of ``network``).
    """
    from dltutorials.support.checkpoints import checkpoint_for
    from dltutorials.support.models import Model, model_variables, save_model
    from dltutorials.training import early_stopping

    model_file = output_path(model_file)
    best_values = []
    checkpoint = checkpoint_for([train_fn], Path(model_file).stem, kept=best_values)

    def save_best(result):
        best_values[:] = [variable.get_value() for variable in model_variables(network)]
        if not overfit:
            save_model(model_file, network, architecture, dataset=str(dataset),
                       best_validation_error=result.best_validation_error,
                       test_error=result.test_error)

    result = early_stopping(train_fn, validate_fn, test_fn, n_train_batches, epochs(n_epochs),
                            on_new_best=save_best, checkpoint=checkpoint, **loop_options)
    score = loop_options.get('score')
    for variable, value in zip(model_variables(network), best_values):
        variable.set_value(value)
    if overfit:
        report_overfit(result, overfit)
        best_values = []        # (no file)
    elif best_values:
        logger.info('best model saved to %s', model_file)
    plot_file = None
    if current_run().plot and result.history and not overfit:
        from dltutorials.support.plotting import plot_learning_curve
        plot_file = plot_learning_curve(
            result.history, n_train_batches, model_file.with_name(model_file.stem + '_curve.png'),
            title='%s on %s' % (type(network).__name__, Path(str(dataset)).name),
            **(dict(score_name=score.name, unit=score.unit, scale=score.scale) if score else {}))
    return dict(result.as_dict(), model_file=str(model_file) if best_values else None,
                plot_file=str(plot_file) if plot_file else None, model=Model(network))


def report_overfit(result, n_examples):
    """Say whether training on ``n_examples`` drove their error to 0, and what else to suspect."""
    if result.best_validation_error == 0:
        first = next(record for record in result.history if record['validation_error'] == 0)
        logger.info('overfit: the training error on %d examples reached 0 in epoch %d: the model '
                    'can learn; now train on all the data', n_examples, first['epoch'])
    else:
        logger.warning('overfit: the training error on %d examples is still %.2f %% after %d '
                       'epochs: a model that cannot fit a few examples has a bug, a learning '
                       'rate far off, or too few epochs', n_examples,
                       100 * result.best_validation_error, result.epochs)


def save_samples(samples, name):
    """Draw ``samples`` (n_rows, n_columns, 784) as a grid of images into ``name`` in the output folder.

    Returns the path, or None when plots are off.
    """
    if not current_run().plot:
        return None
    from dltutorials.support.plotting import save_image_grid
    return save_image_grid(samples, output_path(name), 'samples')


def save_filters(weights, name):
    """Draw ``weights`` (n_visible, n_hidden) as filters into ``name`` in the output folder.

    Returns the path, or None when plots are off.
    """
    if not current_run().plot:
        return None
    from dltutorials.support.plotting import save_filter_image
    return save_filter_image(weights, output_path(name))
