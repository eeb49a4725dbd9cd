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
* **the files** of a run: its output folder (:func:`output_path`),
  pictures (:func:`save_filters`, :func:`save_samples`);
* **checkpoints and Ctrl-C**: the run's identity and checkpoint files (see
  :mod:`dltutorials.support.checkpoints`), and :func:`stop_requests`, which
  lets a loop finish its minibatch before stopping.

Imports go one way: the model modules and their loops
(:mod:`dltutorials.training`, :mod:`dltutorials.gan`) use this package;
nothing here imports them, and :mod:`~dltutorials.support.checkpoints` uses
this module, not the reverse.
"""
import contextlib
import dataclasses
import functools
import inspect
import json
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
    from dltutorials.support.engine import ENGINE, theano

    name, arguments = _runs[-1].calls[-1] if _runs and _runs[-1].calls else ('', {})
    return identity_json(dict(function=name, arguments=arguments, engine=ENGINE,
                              floatX=theano.config.floatX, quick=current_run().quick))


def identity_json(value):
    """``value`` as JSON would give it back (tuples as lists, paths as strings)."""
    return json.loads(json.dumps(value, default=lambda v: v.tolist() if hasattr(v, 'tolist')
                                 else str(v)))


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
# Files of a run
# --------------------------------------------------------------------------

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
