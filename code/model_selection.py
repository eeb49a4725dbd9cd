"""Model selection: random and grid search over a tutorial's hyper-parameters, on Dask.

A tutorial's training function has hyper-parameters (the learning rate,
the number of hidden units, the minibatch size ...) that training does not
learn.  We choose them the way the lectures teach: train one model per
configuration, keep the configuration whose model has the lowest
*validation* error, and report the *test* error of that model only, once:
the test set chose nothing, so its error stays an honest estimate.

Which configurations to try?  A **grid** tries every combination of a few
values per hyper-parameter; **random search** draws each configuration
from a distribution per hyper-parameter.  Bergstra and Bengio (JMLR 2012)
showed random search finding models as good as a grid's, or better, in a
fraction of the trials, because only a few hyper-parameters matter for a
given problem: a grid of 16 trials over 4 hyper-parameters tries only two
learning rates, 16 random trials try 16.

Each trial is a call of the tutorial's own training function, run as a
task on a Dask cluster: by default a local one with a worker process per
core, or a running one by its address (``--scheduler``)::

    python code/model_selection.py mlp --trials 40 --n-epochs 10 --dataset fashion-mnist

Every finished trial is written at once, as one line of JSON, to
``trials.jsonl`` in the output folder (``pandas.read_json(path,
lines=True)`` reads it); ``--resume`` goes on with the trials that did not
finish.  The best trial's model is kept in the same folder (``mlp.npz``),
where the tutorial's own ``--evaluate`` and ``--predict`` find it.
"""
import argparse
import collections
import contextlib
import dataclasses
import importlib
import inspect
import itertools
import json
import logging
import math
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy

from dltutorials.support import checks, command_line
from dltutorials.support.errors import DivergenceError, HyperparameterError, TutorialError
from dltutorials.support.runs import prepare_output_dir, run_options, show_progress

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------
# The search space: a distribution (and a grid) per hyper-parameter
# --------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class uniform:
    """A number drawn uniformly from [low, high)."""

    low: float
    high: float
    log = False

    def draw(self, rng):
        return rng.uniform(self.low, self.high)

    def grid(self, n):
        """``n`` values: the centres of ``n`` equal cells of the range."""
        return [self.low + (i + 0.5) * (self.high - self.low) / n for i in range(n)]

    def size(self):
        return math.inf

    def ends(self):
        return [self.low, self.high]


@dataclasses.dataclass(frozen=True)
class log_uniform(uniform):
    """A positive number with a uniform logarithm: as likely in [0.001, 0.01) as in [0.01, 0.1)."""

    log = True

    def draw(self, rng):
        return math.exp(rng.uniform(math.log(self.low), math.log(self.high)))

    def grid(self, n):
        """``n`` values: the centres of ``n`` equal cells of the range, on a log scale."""
        return [math.exp(value) for value in
                uniform(math.log(self.low), math.log(self.high)).grid(n)]


@dataclasses.dataclass(frozen=True)
class choice:
    """One of ``values``, each as likely."""

    values: tuple
    log = False

    def draw(self, rng):
        return self.values[rng.randint(len(self.values))]

    def grid(self, n):
        """``n`` of the values, spread evenly over the list."""
        return [self.values[int((i + 0.5) * len(self.values) / n)] for i in range(n)]

    def size(self):
        return len(self.values)

    def ends(self):
        return list(self.values)


#: The kinds of hyper-parameter a space may have, by name (the names in a --space file).
DISTRIBUTIONS = {'uniform': uniform, 'log_uniform': log_uniform, 'choice': choice}


def random_configurations(space, n_trials, seed):
    """``n_trials`` configurations drawn at random from ``space`` (a dict name: distribution).

    Trial ``i`` is drawn from a generator seeded with ``(seed, i)`` alone, so
    the same seed gives the same configurations, and a resumed search
    redraws the trials it did not finish exactly.  Plain values in
    ``space`` are fixed: every trial gets them.
    """
    configurations = []
    for trial in range(n_trials):
        rng = numpy.random.RandomState([seed, trial])
        configurations.append({name: value.draw(rng) if is_distribution(value) else value
                               for name, value in space.items()})
    return configurations


def grid_configurations(space, n_trials, seed):
    """The grid of at most ``n_trials`` points over ``space``, in a random order (by ``seed``).

    Points are given to the hyper-parameters in turn, in the order of
    ``space``, while the grid stays within ``n_trials``: 16 trials over
    four hyper-parameters are two values of each.  A range's values are
    the centres of equal cells (on a log scale for :class:`log_uniform`),
    a single value its middle.
    """
    names = [name for name, value in space.items() if is_distribution(value)]
    counts = dict.fromkeys(names, 1)
    growing = True
    while growing:
        growing = False
        for name in names:
            if (counts[name] < space[name].size()
                    and math.prod(counts.values()) // counts[name] * (counts[name] + 1)
                    <= n_trials):
                counts[name] += 1
                growing = True
    axes = [space[name].grid(counts[name]) for name in names]
    points = [dict(zip(names, values)) for values in itertools.product(*axes)]
    numpy.random.RandomState(seed).shuffle(points)
    fixed = {name: value for name, value in space.items() if not is_distribution(value)}
    return [dict(fixed, **point) for point in points]


def is_distribution(value):
    return isinstance(value, tuple(DISTRIBUTIONS.values()))


# --------------------------------------------------------------------------
# The tutorials a search can tune, and what it tunes by default
# --------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Tutorial:
    """A training function that reports a validation score, and its default search space."""

    module: str                # in the dltutorials package
    function: str              # its training function
    epochs_argument: str       # the argument --n-epochs sets
    space: dict                # the default search space
    score_unit: str = '%'      # how the validation score reads: an error rate in %, or nats
    resolver: str = 'resolve_dataset'   # finds or downloads its dataset (in support.datasets)

    def training_function(self):
        return getattr(importlib.import_module('dltutorials.' + self.module), self.function)

    def describe(self, score):
        if score is None:
            return 'n/a'
        return '%.2f %%' % (100 * score) if self.score_unit == '%' else '%.3f nats' % score


TUTORIALS = {
    'logistic_sgd': Tutorial('logistic_sgd', 'sgd_optimization_mnist', 'n_epochs', dict(
        learning_rate=log_uniform(0.01, 1.0), batch_size=choice((20, 100, 600)))),
    'mlp': Tutorial('mlp', 'train_mlp', 'n_epochs', dict(
        learning_rate=log_uniform(0.001, 0.3), n_hidden=choice((100, 300, 500, 1000)),
        batch_size=choice((20, 50, 100)), L2_reg=log_uniform(1e-6, 1e-2),
        dropout=uniform(0.0, 0.5))),
    'convolutional_mlp': Tutorial('convolutional_mlp', 'evaluate_lenet5', 'n_epochs', dict(
        learning_rate=log_uniform(0.01, 0.3), batch_size=choice((50, 100, 500)),
        n_hidden=choice((100, 500)), dropout=uniform(0.0, 0.5))),
    'SdA': Tutorial('SdA', 'train_sda', 'training_epochs', dict(
        finetune_lr=log_uniform(0.01, 0.3), pretrain_lr=log_uniform(0.001, 0.1),
        batch_size=choice((10, 20, 50)))),
    'DBN': Tutorial('DBN', 'train_dbn', 'training_epochs', dict(
        finetune_lr=log_uniform(0.01, 0.3), pretrain_lr=log_uniform(0.001, 0.1),
        k=choice((1, 3)))),
    'lstm': Tutorial('lstm', 'train_sequence_classifier', 'max_epochs', dict(
        dim_proj=choice((32, 64, 128)), encoder=choice(('lstm', 'gru')),
        batch_size=choice((16, 64, 128))), resolver=None),
    'char_rnn': Tutorial('char_rnn', 'train_char_rnn', 'n_epochs', dict(
        learning_rate=log_uniform(5e-4, 1e-2), n_hidden=choice((128, 256, 512)),
        seq_length=choice((50, 100))), score_unit='nats', resolver='resolve_text'),
}


# --------------------------------------------------------------------------
# One trial: a call of the tutorial's training function, on a Dask worker
# --------------------------------------------------------------------------

def run_trial(tutorial_name, configuration, fixed, quick=False):
    """Train the tutorial with ``configuration`` and ``fixed`` arguments; return its record.

    Runs in a Dask worker, in a temporary folder of its own, removed after.
    The record: ``status`` ('ok', 'diverged' or 'failed', with ``message``),
    ``validation_error``, ``test_error``, ``epochs``, ``seconds``,
    ``worker``; with ``model`` (the saved model file's name and bytes) when
    the training saved one.  Divergence and bad values are results of the
    search, not its end, so they are recorded, not raised.
    """
    from dltutorials.support.parallel import use_own_compile_folder
    use_own_compile_folder()            # before the engine is imported in this process
    dask_worker = _dask_worker()
    worker = dask_worker.address if dask_worker else 'local'
    if dask_worker:         # (the driver counts a trial's starts in the scheduler's event log)
        dask_worker.log_event('dltutorials-trial-start',
                              dict(task=str(dask_worker.get_current_task()), worker=worker))
    train = TUTORIALS[tutorial_name].training_function()
    folder = tempfile.mkdtemp(prefix='dltutorials-trial-')
    started = time.time()
    record = dict(status='ok', validation_error=None, test_error=None, epochs=None,
                  worker=worker, message='')
    try:
        with run_options(output_dir=folder, quick=quick, plot=False), _quiet_log() as warnings:
            result = train(verbose=False, **configuration, **fixed)
        record.update(validation_error=finite_or_none(result['best_validation_error']),
                      test_error=finite_or_none(result['test_error']),
                      epochs=int(result['epochs']), message='; '.join(warnings))
        model_file = result.get('model_file') or ''
        if model_file and os.path.exists(model_file):
            record['model'] = (os.path.basename(model_file), Path(model_file).read_bytes())
    except DivergenceError as err:
        record.update(status='diverged', message=str(err))
    except TutorialError as err:
        record.update(status='failed', message=str(err))
    except Exception as err:          # noqa: BLE001  (a failed trial is a result of the search)
        where = traceback.extract_tb(err.__traceback__)[-1]
        record.update(status='failed', message='%s: %s (%s, line %d)' % (
            type(err).__name__, err, where.filename, where.lineno))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    record['seconds'] = round(time.time() - started, 2)
    return record


def finite_or_none(value):
    """``value`` as a float, or None where the training had no such score (NaN)."""
    return float(value) if value is not None and math.isfinite(value) else None


def _dask_worker():
    """The Dask worker running this trial (None outside Dask)."""
    try:
        from distributed import get_worker
        return get_worker()
    except (ImportError, ValueError):
        return None


@contextlib.contextmanager
def _quiet_log():
    """Keep the tutorial's log out of the worker's output; collect its warnings (a list)."""
    package_logger = logging.getLogger('dltutorials')
    saved = package_logger.level, package_logger.propagate
    warnings = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda entry: warnings.append(entry.getMessage())
    package_logger.addHandler(handler)
    package_logger.setLevel(logging.WARNING)
    package_logger.propagate = False
    try:
        yield warnings
    finally:
        package_logger.removeHandler(handler)
        package_logger.setLevel(saved[0])
        package_logger.propagate = saved[1]


# --------------------------------------------------------------------------
# The search: trials as Dask tasks, each result written as soon as it comes
# --------------------------------------------------------------------------

RESULTS_FILE = 'trials.jsonl'
SEARCH_FILE = 'search.json'


@dataclasses.dataclass
class Search:
    """One search: its trials' configurations and the folder its results go to."""

    tutorial: str
    configurations: list       # trial i's configuration at index i
    fixed: dict                # the arguments every trial gets
    folder: Path
    quick: bool = False
    records: dict = dataclasses.field(default_factory=dict)   # finished trials, by number

    @property
    def best(self):
        """The finished trial with the lowest validation error (None if none finished)."""
        finished = [r for r in self.records.values() if r['validation_error'] is not None]
        return min(finished, key=lambda r: (r['validation_error'], r['trial']), default=None)

    def record(self, trial, outcome, attempts):
        """Write the finished ``trial``'s line and keep its model if it is the best so far."""
        record = dict(trial=trial, **self.configurations[trial])
        model = outcome.pop('model', None)
        record.update(outcome, attempts=attempts, model_file=model[0] if model else None)
        previous_best = self.best
        self.records[trial] = record
        with open(self.folder / RESULTS_FILE, 'a') as results:
            results.write(json.dumps(record) + '\n')
            results.flush()
            os.fsync(results.fileno())
        if model and self.best is record and record is not previous_best:
            name, content = model
            temporary = self.folder / (name + '.part')
            temporary.write_bytes(content)
            os.replace(temporary, self.folder / name)    # never half a model file
        return record


def run_searches(client, searches, minutes=None):
    """Run the unfinished trials of ``searches`` on ``client``'s workers; return the searches.

    A trial is submitted when a worker can take it (so that a time budget
    of ``minutes`` stops new trials, not running ones); a configuration
    that several searches share (a grid's points, in the comparison of
    methods) is trained once.  One log line per finished trial.
    """
    from distributed import as_completed
    from dltutorials.support.parallel import n_workers

    def identity(search, trial):
        return json.dumps([search.tutorial, search.configurations[trial], search.fixed,
                           search.quick], sort_keys=True)

    waiting = [(search, trial) for search in searches
               for trial in range(len(search.configurations)) if trial not in search.records]
    total, started = len(waiting), time.time()
    wanted = collections.Counter(identity(search, trial) for search, trial in waiting)
    running = {}                # future -> its trial's identity
    sharing = {}                # a trial's identity -> [(search, trial), ...] waiting for it
    outcomes = {}               # a trial's identity -> (outcome, attempts), while still wanted
    done = as_completed()
    n_done = 0

    def finished(key, outcome, attempts):
        nonlocal n_done
        for search, trial in sharing.pop(key):
            record = search.record(trial, dict(outcome), attempts)
            wanted[key] -= 1
            n_done += 1
            report_trial(search, record, n_done, total, started, len(searches) > 1)
        if wanted[key]:
            outcomes[key] = outcome, attempts
        else:
            outcomes.pop(key, None)             # (a model's bytes: not kept longer than needed)

    def submit_more():
        while waiting and len(running) < n_workers(client):
            if minutes is not None and time.time() - started > 60 * minutes:
                return
            search, trial = waiting.pop(0)
            key = identity(search, trial)
            sharing.setdefault(key, []).append((search, trial))
            if key in outcomes:                 # trained already, for another search
                finished(key, *outcomes[key])
            elif len(sharing[key]) == 1:        # (else: it is training now)
                future = client.submit(run_trial, search.tutorial,
                                       search.configurations[trial], search.fixed,
                                       search.quick, pure=False)
                running[future] = key
                done.add(future)

    submit_more()
    for future in done:
        try:
            outcome = future.result()
        except Exception as err:    # noqa: BLE001  (KilledWorker: the trial killed 3 workers)
            outcome = dict(status='failed', validation_error=None, test_error=None,
                           epochs=None, seconds=None, worker=None,
                           message='%s: %s' % (type(err).__name__, err))
        finished(running.pop(future), outcome, count_attempts(client, future))
        submit_more()
    return searches


def count_attempts(client, future):
    """How many times the trial of ``future`` was started (more than 1: a worker died in it)."""
    try:
        events = client.get_events('dltutorials-trial-start')
    except Exception:           # noqa: BLE001  (an old scheduler without events)
        return None
    return sum(1 for _, event in events if event.get('task') == str(future.key)) or 1


def report_trial(search, record, n_done, total, started, name_search=False):
    tutorial = TUTORIALS[search.tutorial]
    best = search.best
    elapsed = time.time() - started
    left = total - n_done
    logger.info('%strial %d %s in %.0f s on %s: validation %s, test %s (%s); best so far %s '
                '(trial %s); %d left%s', search.folder.name + ' ' if name_search else '',
                record['trial'], record['status'], record['seconds'] or 0, record['worker'],
                tutorial.describe(record['validation_error']),
                tutorial.describe(record['test_error']),
                describe_configuration(search.configurations[record['trial']]),
                tutorial.describe(best and best['validation_error']),
                best and best['trial'], left,
                ', about %s more' % describe_duration(elapsed / n_done * left) if left else '')
    if record['status'] != 'ok':
        logger.warning('trial %d %s: %s', record['trial'], record['status'], record['message'])
    elif record['message'] and record['message'] not in _said:
        _said.add(record['message'])       # (the same warning from every trial: said once)
        logger.warning('trial %d: %s', record['trial'], record['message'])


_said = set()


def describe_duration(seconds):
    return '%.0f min' % (seconds / 60) if seconds >= 90 else '%.0f s' % seconds


def describe_configuration(configuration):
    return ', '.join('%s=%s' % (name, '%.3g' % value if isinstance(value, float) else value)
                     for name, value in configuration.items())


# --------------------------------------------------------------------------
# What the search learnt: the best trials, the curves, the comparison
# --------------------------------------------------------------------------

def best_so_far(records, n_trials):
    """The lowest validation error among trials 0..i, for i < ``n_trials`` (None: none yet)."""
    curve, best = [], None
    for trial in range(n_trials):
        record = records.get(trial)
        if record and record['validation_error'] is not None:
            best = min(best, record['validation_error']) if best is not None \
                else record['validation_error']
        curve.append(best)
    return curve


def top_table(search, n=10):
    """The ``n`` best finished trials as lines of text (validation error first)."""
    tutorial = TUTORIALS[search.tutorial]
    ranked = sorted((r for r in search.records.values() if r['validation_error'] is not None),
                    key=lambda r: (r['validation_error'], r['trial']))[:n]
    lines = ['%5s  %12s  %12s  %6s  %8s  %s' % ('trial', 'validation', 'test', 'epochs',
                                                'seconds', 'configuration')]
    for r in ranked:
        lines.append('%5d  %12s  %12s  %6d  %8.0f  %s' % (
            r['trial'], tutorial.describe(r['validation_error']),
            tutorial.describe(r['test_error']), r['epochs'], r['seconds'],
            describe_configuration(search.configurations[r['trial']])))
    failed = [r for r in search.records.values() if r['status'] != 'ok']
    if failed:
        lines.append('%d trial(s) diverged or failed: %s' % (len(failed), ', '.join(
            '%d (%s)' % (r['trial'], r['status']) for r in sorted(failed,
                                                                  key=lambda r: r['trial']))))
    return lines


def compare_methods(random_searches, grid_searches):
    """The table of the comparison: at each grid's budget, the grid's best against random's.

    ``random_searches``: searches of the same space with different seeds;
    ``grid_searches``: a grid search per budget.  For each budget ``n``:
    the grid's best validation error (and that model's test error), and the
    best validation error of the first ``n`` trials of each random search:
    their median, range, and in how many searches random did as well as
    the grid or better.
    """
    tutorial = TUTORIALS[grid_searches[0].tutorial]
    lines = ['%6s  %22s  %28s  %s' % ('trials', 'grid: validation (test)',
                                      'random: median [min, max]', 'random <= grid')]
    for grid in grid_searches:
        n = len(grid.configurations)
        grid_best = grid.best
        randoms = [best_so_far(search.records, n)[-1] for search in random_searches]
        randoms = [value for value in randoms if value is not None]
        if grid_best is None or not randoms:
            continue
        lines.append('%6d  %22s  %28s  %d of %d' % (
            n, '%s (%s)' % (tutorial.describe(grid_best['validation_error']),
                            tutorial.describe(grid_best['test_error'])),
            '%s [%s, %s]' % (tutorial.describe(float(numpy.median(randoms))),
                             tutorial.describe(min(randoms)), tutorial.describe(max(randoms))),
            sum(value <= grid_best['validation_error'] for value in randoms), len(randoms)))
    return lines


# --------------------------------------------------------------------------
# Spaces as files, and the checks done once, before any trial
# --------------------------------------------------------------------------

def encode_space(space):
    """``space`` as JSON-able data: ``{"learning_rate": {"log_uniform": [0.001, 0.1]}, ...}``."""
    encoded = {}
    for name, value in space.items():
        if is_distribution(value):
            kind = next(key for key, cls in DISTRIBUTIONS.items() if type(value) is cls)
            encoded[name] = {kind: list(value.values) if kind == 'choice'
                             else [value.low, value.high]}
        else:
            encoded[name] = value
    return encoded


def decode_space(data, where='the space'):
    """The space written as :func:`encode_space` writes it; HyperparameterError if malformed.

    A plain value (a number, a string, a list) is a fixed argument.
    """
    if not isinstance(data, dict) or not data:
        raise HyperparameterError('%s must be a table of hyper-parameters, got %r'
                                  % (where, data))
    space = {}
    for name, value in data.items():
        if isinstance(value, dict):
            if len(value) != 1 or next(iter(value)) not in DISTRIBUTIONS:
                raise HyperparameterError(
                    '%s: %s must be one of %s with its arguments, got %r'
                    % (where, name, ', '.join('{"%s": [...]}' % k for k in DISTRIBUTIONS),
                       value))
            (kind, arguments), = value.items()
            if kind == 'choice':
                if not isinstance(arguments, list) or not arguments:
                    raise HyperparameterError('%s: %s has no values to choose from'
                                              % (where, name))
                space[name] = choice(tuple(arguments))
                continue
            if (not isinstance(arguments, list) or len(arguments) != 2 or not all(
                    isinstance(a, (int, float)) and not isinstance(a, bool) for a in arguments)):
                raise HyperparameterError('%s: %s: %s takes [low, high], got %r'
                                          % (where, name, kind, arguments))
            space[name] = DISTRIBUTIONS[kind](float(arguments[0]), float(arguments[1]))
        else:
            space[name] = value
    return space


def read_space(path):
    """The space in the JSON or TOML file ``path`` (see :func:`decode_space`)."""
    path = Path(path)
    try:
        text = path.read_text(encoding='utf-8')
    except OSError as err:
        raise HyperparameterError('cannot read the space file %s: %s'
                                  % (path, err.strerror or err)) from None
    try:
        if path.suffix.lower() == '.toml':
            try:
                import tomllib
            except ImportError:          # (Python < 3.11)
                raise HyperparameterError('TOML space files need Python 3.11 or newer; '
                                          'write %s as JSON' % path) from None
            data = tomllib.loads(text)
        else:
            data = json.loads(text)
    except ValueError as err:       # (JSONDecodeError and TOMLDecodeError are ValueErrors)
        raise HyperparameterError('the space file %s is not valid %s: %s' % (
            path, 'TOML' if path.suffix.lower() == '.toml' else 'JSON', err)) from None
    return decode_space(data, where=str(path))


def check_space(train, space, fixed):
    """Refuse, in one line, a space the training function ``train`` cannot take.

    Every name must be an argument of ``train`` and not also fixed by a
    flag; a range must not be empty (``low < high``; ``low > 0`` on a log
    scale); every value a trial could get (a choice's values, a range's
    ends, a fixed value) must pass the argument's rule.
    """
    parameters = inspect.signature(train).parameters
    rules = getattr(train, 'rules', {})
    for name, value in itertools.chain(space.items(), fixed.items()):
        if name not in parameters or name in ('verbose', 'resume'):
            raise HyperparameterError('%s() has no hyper-parameter %r (it takes %s)' % (
                train.__name__, name, ', '.join(
                    p for p in parameters if p not in ('verbose', 'resume', 'extras'))))
        if name in space and name in fixed:
            raise HyperparameterError('%s is both in the space and set by a flag' % name)
        if isinstance(value, uniform):
            if not value.low < value.high:
                raise HyperparameterError('the range of %s is empty: low %g is not below high '
                                          '%g' % (name, value.low, value.high))
            if value.log and value.low <= 0:
                raise HyperparameterError('the range of %s is on a log scale and must be '
                                          'positive, got low %g' % (name, value.low))
        values = value.ends() if is_distribution(value) else [value]
        if name in rules:
            for one in values:
                rules[name].check(name, as_argument(one, parameters[name].default))


def as_argument(value, default):
    """``value`` as the argument wants it: an integer where its default is one."""
    if isinstance(default, int) and not isinstance(default, bool) and isinstance(value, float):
        return int(round(value))
    return value


def typed_configurations(train, configurations):
    """``configurations`` with each value as its argument wants it (see :func:`as_argument`)."""
    parameters = inspect.signature(train).parameters
    return [{name: as_argument(value, parameters[name].default)
             for name, value in configuration.items()} for configuration in configurations]


# --------------------------------------------------------------------------
# The search's folder: what it is, what it has done
# --------------------------------------------------------------------------

def open_search(folder, identity, resume):
    """Check that ``folder`` may take the search described by ``identity`` (JSON-able).

    A new search needs a folder that holds no search; ``resume`` needs the
    one of a search with the same identity.  (A new search's identity is
    written by :func:`write_identity`, once its cluster answered.)
    """
    spec = folder / SEARCH_FILE
    if resume:
        if not spec.exists():
            raise TutorialError('nothing to resume in %s: no search was started there'
                                % folder)
        started = json.loads(spec.read_text())
        if started != identity:
            changed = sorted(key for key in set(started) | set(identity)
                             if started.get(key) != identity.get(key))
            raise TutorialError('the search in %s was started with other arguments (%s): '
                                'resume it with the same ones, or use another --output-dir'
                                % (folder, ', '.join(changed)))
    elif spec.exists():
        raise TutorialError('%s holds a search already: --resume goes on with it, or choose '
                            'another --output-dir' % folder)


def write_identity(folder, identity):
    temporary = folder / (SEARCH_FILE + '.part')
    temporary.write_text(json.dumps(identity, indent=1, sort_keys=True))
    os.replace(temporary, folder / SEARCH_FILE)


def read_records(folder):
    """The finished trials recorded in ``folder``'s results file, by trial number.

    A last line cut short (the search was killed while writing it) is
    dropped, and the file mended, so that the trial runs again.
    """
    path = Path(folder) / RESULTS_FILE
    if not path.exists():
        return {}
    records, lines = {}, path.read_text().splitlines(keepends=True)
    for number, line in enumerate(lines):
        try:
            record = json.loads(line)
        except ValueError:
            if number == len(lines) - 1:
                path.write_text(''.join(lines[:-1]))
                break
            raise TutorialError('%s line %d is not a trial record' % (path, number + 1)) \
                from None
        records[record['trial']] = record
    return records


def load_results(folder):
    """The records of the search in ``folder``, sorted by trial: a list of dicts.

    For a notebook: ``pandas.DataFrame(load_results('results/search'))``.
    """
    return [record for _, record in sorted(read_records(folder).items())]


# --------------------------------------------------------------------------
# The entry point
# --------------------------------------------------------------------------

def search_hyperparameters(tutorial='mlp', method='random', trials=20, seed=1, space=None,
                           n_epochs=None, dataset=None, minutes=None, scheduler=None,
                           workers=None, compare=None, output_dir='results/search',
                           quick=False, resume=False, plot=True, verbose=True):
    """Search ``tutorial``'s hyper-parameters; return the search (or searches, with ``compare``).

    Parameters
    ----------
    tutorial : str
        the training function to tune, by its tutorial's name (see :data:`TUTORIALS`).
    method : str
        random or grid.
    trials : int
        the number of trials (a grid: at most this many).
    seed : int
        draws the configurations (random) or orders the grid.
    space : str or dict
        a JSON or TOML file, or a dict name: distribution (default: the tutorial's).
    n_epochs : int
        the epochs of each trial (the tutorial's own default if not given).
    dataset : str
        the dataset of every trial (the tutorial's default if not given).
    minutes : float
        start no trial after this many minutes (resume later to finish).
    scheduler : str
        the address of a running Dask scheduler (default: a local cluster).
    workers : int
        the local cluster's worker processes (default: one per core).
    compare : int
        compare random and grid search: this many random searches (seeds
        seed, seed + 1, ...) against a grid per budget 2, 4, 8, ... trials.
    output_dir : str
        the search's folder.
    quick : bool
        each trial a smoke test (one minibatch per split, one epoch).
    resume : bool
        go on with the search in ``output_dir``.
    plot : bool
        write the plots.
    verbose : bool
        show the progress where no logging is set up (a notebook).
    """
    show_progress(verbose)
    if tutorial not in TUTORIALS:
        raise HyperparameterError('unknown tutorial %r: one of %s (the ones that report a '
                                  'validation error)' % (tutorial, ', '.join(TUTORIALS)))
    # (the rules the command line's flags are parsed by; None: not given)
    for name, value, rule in (('trials', trials, checks.positive_int),
                              ('seed', seed, checks.seed),
                              ('workers', workers, checks.positive_int),
                              ('compare', compare, checks.positive_int),
                              ('minutes', minutes, checks.positive),
                              ('method', method, checks.Choice(('random', 'grid')))):
        if value is not None:
            rule.check(name, value)
    if scheduler is not None and workers is not None:
        raise HyperparameterError('workers is for the local cluster; a scheduler has the '
                                  'workers started for it (dask worker ...)')
    from dltutorials.support.parallel import connect, disconnect, require_dask
    require_dask()
    about = TUTORIALS[tutorial]
    train = about.training_function()
    space = dict(about.space if space is None else
                 read_space(space) if isinstance(space, (str, Path)) else space)
    if about.resolver and 'dataset' not in space:
        # Found (or downloaded) here, once, rather than by every worker at the same time.
        from dltutorials.support import datasets
        default = inspect.signature(train).parameters['dataset'].default
        dataset = str(getattr(datasets, about.resolver)(dataset or default).resolve())
    fixed = {name: value for name, value in ((about.epochs_argument, n_epochs),
                                             ('dataset', absolute_if_path(dataset)))
             if value is not None}
    check_space(train, space, fixed)
    folder = prepare_output_dir_at(output_dir)
    identity = json.loads(json.dumps(dict(
        tutorial=tutorial, method=method, trials=trials, seed=seed, space=encode_space(space),
        fixed=fixed, quick=quick, compare=compare)))
    open_search(folder, identity, resume)

    def new_search(subfolder, configurations):
        subfolder.mkdir(exist_ok=True)
        return Search(tutorial, typed_configurations(train, configurations), fixed, subfolder,
                      quick, read_records(subfolder) if resume else {})

    if compare:
        random_searches = [new_search(folder / ('random-seed%d' % (seed + r)),
                                      random_configurations(space, trials, seed + r))
                           for r in range(compare)]
        budgets = sorted({2 ** k for k in range(1, trials.bit_length())} | {trials})
        grid_searches = [new_search(folder / ('grid-%d' % budget),
                                    grid_configurations(space, budget, seed))
                         for budget in budgets]
        searches = random_searches + grid_searches
    else:
        draw = random_configurations if method == 'random' else grid_configurations
        searches = [new_search(folder, draw(space, trials, seed))]
        if method == 'grid' and len(searches[0].configurations) < trials:
            logger.info('the grid over this space has %d points', len(searches[0].configurations))
    n_left = sum(len(s.configurations) - len(s.records) for s in searches)
    logger.info('%s search of %s: %d trials to run%s, results in %s', method if not compare
                else 'random against grid', tutorial, n_left,
                ' (%d already done)' % sum(len(s.records) for s in searches) if resume else '',
                folder)
    if n_left:
        client = connect(scheduler, workers)
        if not resume:
            write_identity(folder, identity)
        try:
            logger.info('on %s with %d workers', scheduler or 'a local Dask cluster',
                        len(client.scheduler_info()['workers']))
            run_searches(client, searches, minutes)
        finally:
            disconnect(client)
    for search in searches:
        finish(search, space, plot)
    if compare:
        table = compare_methods(random_searches, grid_searches)
        (folder / 'comparison.txt').write_text('\n'.join(table) + '\n')
        logger.info('random against grid search (validation error of the best trial):\n%s',
                    '\n'.join(table))
        if plot:
            from dltutorials.support.plotting import plot_best_so_far
            plot_best_so_far(
                {s.folder.name: best_so_far(s.records, len(s.configurations))
                 for s in random_searches},
                {len(g.configurations): g.best and g.best['validation_error']
                 for g in grid_searches},
                folder / 'random_vs_grid.png', about.score_unit,
                title='%s: random against grid search' % tutorial)
        return searches
    return searches[0]


def finish(search, space, plot):
    """Write the search's table of best trials and its plots; log the best."""
    lines = top_table(search)
    (search.folder / 'top_trials.txt').write_text('\n'.join(lines) + '\n')
    best = search.best
    tutorial = TUTORIALS[search.tutorial]
    unfinished = len(search.configurations) - len(search.records)
    if best:
        logger.info('%s: best of %d trials: trial %d, validation %s, test %s (%s)%s',
                    search.folder, len(search.records), best['trial'],
                    tutorial.describe(best['validation_error']),
                    tutorial.describe(best['test_error']),
                    describe_configuration(search.configurations[best['trial']]),
                    '; %d trials not run yet (--resume)' % unfinished if unfinished else '')
    if plot and search.records:
        from dltutorials.support.plotting import plot_best_so_far, plot_validation_scatter
        title = '%s on %s, %d trials (%s)' % (
            search.tutorial, Path(str(search.fixed.get('dataset', 'its dataset'))).name,
            len(search.records), search.folder.name)
        plot_validation_scatter(search.records.values(), space,
                                search.folder / 'validation_vs_hyperparameters.png',
                                tutorial.score_unit, title=title)
        plot_best_so_far({search.folder.name: best_so_far(search.records,
                                                          len(search.configurations))},
                         {}, search.folder / 'best_so_far.png', tutorial.score_unit,
                         title=title)


def absolute_if_path(dataset):
    """A dataset given as an existing path, made absolute (workers may run elsewhere)."""
    if dataset is not None and os.path.exists(dataset):
        return os.path.abspath(dataset)
    return dataset


def prepare_output_dir_at(folder):
    with run_options(output_dir=folder):
        return prepare_output_dir()


def evaluate_best(folder, dataset=None):
    """Print the scores of the search's best model (kept in ``folder``) on the test split."""
    best = min((r for r in load_results(folder) if r['validation_error'] is not None
                and r.get('model_file')), key=lambda r: r['validation_error'], default=None)
    if best is None:
        raise TutorialError('no model to evaluate in %s: no trial of a search there saved one'
                            % folder)
    if dataset is None:
        # the search's dataset: in its folder, or the comparison's folder above it
        spec = next((path for path in (Path(folder) / SEARCH_FILE, Path(folder).parent /
                                       SEARCH_FILE) if path.exists()), None)
        dataset = spec and json.loads(spec.read_text())['fixed'].get('dataset')
    return command_line.report_evaluation(Path(folder) / best['model_file'],
                                          dataset or 'mnist.pkl.gz')


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.strip().split('\n')[0])
    parser.add_argument('tutorial', help='the tutorial to tune: ' + ', '.join(TUTORIALS))
    parser.add_argument('--method', choices=('random', 'grid'), default='random',
                        help='how configurations are chosen (default: %(default)s)')
    parser.add_argument('--trials', type=checks.positive_int.parse, default=20,
                        help='number of trials (a grid: at most this many; default: %(default)s)')
    parser.add_argument('--minutes', type=checks.positive.parse,
                        help='start no trial after this many minutes (--resume finishes)')
    parser.add_argument('--seed', type=checks.seed.parse, default=1,
                        help='draws the configurations: the same seed, the same ones (default: '
                             '%(default)s)')
    parser.add_argument('--space', metavar='FILE',
                        help='a JSON or TOML file of hyper-parameters (default: the '
                             'tutorial\'s space; see the page)')
    parser.add_argument('--n-epochs', type=checks.positive_int.parse,
                        help='epochs of each trial (default: the tutorial\'s)')
    parser.add_argument('--dataset', help='dataset of each trial (default: the tutorial\'s)')
    parser.add_argument('--scheduler', metavar='ADDRESS',
                        help='a running Dask scheduler, tcp://host:8786 (default: a local '
                             'cluster)')
    parser.add_argument('--workers', type=checks.positive_int.parse,
                        help='worker processes of the local cluster (default: one per core)')
    parser.add_argument('--compare', type=checks.positive_int.parse, metavar='REPEATS',
                        help='random against grid: REPEATS random searches of --trials each '
                             'and a grid per budget 2, 4, 8, ...')
    parser.add_argument('--output-dir', default='results/search',
                        help='the search\'s folder (default: %(default)s)')
    parser.add_argument('--quiet', action='store_true', help='log warnings only')
    parser.add_argument('--quick', action='store_true',
                        help='each trial a smoke test: one minibatch of each split, one epoch')
    parser.add_argument('--no-plot', action='store_true', help='do not write the plots')
    parser.add_argument('--resume', action='store_true',
                        help='go on with the search in --output-dir, without rerunning the '
                             'trials it finished')
    parser.add_argument('--evaluate', action='store_true',
                        help='instead of searching, report the error of the best model kept '
                             'in --output-dir on the test split')
    arguments = parser.parse_args(argv)
    interrupted = []

    def task():
        if arguments.evaluate:
            return evaluate_best(arguments.output_dir, arguments.dataset)
        try:
            search_hyperparameters(
                arguments.tutorial, arguments.method, arguments.trials, arguments.seed,
                arguments.space, arguments.n_epochs, arguments.dataset, arguments.minutes,
                arguments.scheduler, arguments.workers, arguments.compare,
                arguments.output_dir, arguments.quick, arguments.resume,
                not arguments.no_plot)
        except KeyboardInterrupt:
            interrupted.append(True)
            print('interrupted: the finished trials are in %s; to go on, run the same command '
                  'with --resume' % Path(arguments.output_dir, RESULTS_FILE), file=sys.stderr)
    status = command_line.run(task, arguments.quiet)
    return command_line.EXIT_INTERRUPTED if interrupted else status


if __name__ == '__main__':
    # Run as dltutorials.model_selection, the module the workers import, not as __main__:
    # Dask sends the trial function to them by its module and name.
    from dltutorials.model_selection import main as _main
    sys.exit(_main())
