"""Model selection: the spaces, the grid, the records, and searches on real Dask clusters."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy
import pytest
from scipy import stats

from dltutorials import model_selection
from dltutorials.model_selection import (Search, check_space, choice, decode_space,
                                         grid_configurations, log_uniform, random_configurations,
                                         read_records, read_space, run_trial, uniform)
from dltutorials.support.engine_setup import ENGINES, engine_name
from dltutorials.support.errors import HyperparameterError

from conftest import REPO

SAMPLE_DIGITS = REPO / 'data' / 'mnist_sample.pkl.gz'   # the 8,000 real digits, in the repo


def run_search(*arguments, cwd, timeout=300, **options):
    return subprocess.run([sys.executable, str(REPO / 'code' / 'model_selection.py')]
                          + [str(a) for a in arguments], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, **options)


def table(folder):
    """The trials of a search, as (trial, configuration and scores) without times or workers."""
    kept = ('trial', 'learning_rate', 'batch_size', 'status', 'validation_error', 'test_error',
            'epochs')
    return [{key: record.get(key) for key in kept}
            for record in model_selection.load_results(folder)]


# --------------------------------------------------------------------------
# The space, the draws and the grid
# --------------------------------------------------------------------------

def test_the_same_seed_draws_the_same_configurations_and_a_trial_does_not_depend_on_the_count():
    space = dict(learning_rate=log_uniform(1e-4, 1e-1), n_hidden=choice((100, 300)),
                 dropout=uniform(0.0, 0.5), n_epochs=3)
    first = random_configurations(space, 10, seed=7)
    assert first == random_configurations(space, 10, seed=7)
    # (resuming redraws trial i alone: it must not depend on how many were asked for)
    assert random_configurations(space, 4, seed=7) == first[:4]
    assert random_configurations(space, 10, seed=8) != first
    assert all(c['n_epochs'] == 3 and c['n_hidden'] in (100, 300)
               and 1e-4 <= c['learning_rate'] < 1e-1 and 0 <= c['dropout'] < 0.5 for c in first)


def test_log_uniform_draws_are_uniform_in_the_logarithm():
    draws = [c['lr'] for c in random_configurations(dict(lr=log_uniform(1e-5, 1e-1)), 2000, 0)]
    exponents = numpy.log10(draws)
    assert stats.kstest(exponents, stats.uniform(loc=-5, scale=4).cdf).pvalue > 0.01
    # as many draws in each decade, where a plain uniform draw would put 90 % in the last one
    counts = numpy.histogram(exponents, bins=[-5, -4, -3, -2, -1])[0]
    assert counts.min() > 400


def test_a_grid_of_16_trials_over_four_ranges_tries_two_values_of_each():
    space = dict(learning_rate=log_uniform(1e-3, 1e-1), dropout=uniform(0.0, 0.4),
                 L2_reg=log_uniform(1e-6, 1e-2), n_hidden=choice((100, 300, 500, 1000)))
    grid = grid_configurations(space, 16, seed=1)
    assert len(grid) == 16
    assert len({json.dumps(point, sort_keys=True) for point in grid}) == 16
    # each value the centre of one of two equal cells (of the logarithm for a log scale)
    assert sorted({p['learning_rate'] for p in grid}) == pytest.approx([10 ** -2.5, 10 ** -1.5])
    assert sorted({p['dropout'] for p in grid}) == pytest.approx([0.1, 0.3])
    assert sorted({p['n_hidden'] for p in grid}) == [300, 1000]
    # the order is the seed's; the points are the same
    other = grid_configurations(space, 16, seed=2)
    assert other != grid
    assert sorted(map(str, other)) == sorted(map(str, grid))


def test_a_grid_stays_within_the_budget_and_a_choice_gives_no_more_values_than_it_has():
    space = dict(batch_size=choice((20, 600)), learning_rate=log_uniform(0.01, 1.0))
    assert len(grid_configurations(space, 7, seed=0)) == 6        # 2 batch sizes x 3 rates
    assert len(grid_configurations(space, 1, seed=0)) == 1
    single = grid_configurations(space, 1, seed=0)[0]
    assert single['learning_rate'] == pytest.approx(0.1)          # the middle of the log range
    assert len(grid_configurations(dict(k=choice((1, 3))), 50, seed=0)) == 2


def test_spaces_are_read_from_json_and_toml_files(tmp_path):
    text = {'learning_rate': {'log_uniform': [0.001, 0.1]}, 'n_hidden': {'choice': [100, 500]},
            'dropout': {'uniform': [0, 0.5]}, 'n_epochs': 4}
    (tmp_path / 'space.json').write_text(json.dumps(text))
    (tmp_path / 'space.toml').write_text(
        'n_epochs = 4\nlearning_rate = {log_uniform = [0.001, 0.1]}\n'
        'n_hidden = {choice = [100, 500]}\ndropout = {uniform = [0, 0.5]}\n')
    expected = dict(learning_rate=log_uniform(0.001, 0.1), n_hidden=choice((100, 500)),
                    dropout=uniform(0.0, 0.5), n_epochs=4)
    assert read_space(tmp_path / 'space.json') == expected
    if sys.version_info >= (3, 11):
        assert read_space(tmp_path / 'space.toml') == expected
    assert model_selection.decode_space(model_selection.encode_space(expected)) == expected


@pytest.mark.parametrize('data, message', [
    ({'learning_rate': {'normal': [0, 1]}}, 'must be one of'),
    ({'learning_rate': {'uniform': [0.1]}}, 'takes \\[low, high\\]'),
    ({'n_hidden': {'choice': []}}, 'no values to choose from'),
    ([], 'must be a table'),
])
def test_a_malformed_space_is_refused_in_one_line(data, message):
    with pytest.raises(HyperparameterError, match=message):
        decode_space(data)


def test_check_space_refuses_what_the_training_function_cannot_take():
    from dltutorials.mlp import train_mlp
    check_space(train_mlp, model_selection.TUTORIALS['mlp'].space, {'n_epochs': 3})
    for space, fixed, message in [
            (dict(hidden_units=choice((100,))), {}, "no hyper-parameter 'hidden_units'"),
            (dict(learning_rate=uniform(0.1, 0.1)), {}, 'range of learning_rate is empty'),
            (dict(learning_rate=log_uniform(0.0, 0.1)), {}, 'log scale and must be positive'),
            (dict(dropout=uniform(0.0, 1.5)), {}, r'dropout must be a fraction in \[0, 1\)'),
            (dict(n_hidden=choice((100, -5))), {}, 'n_hidden must be'),
            (dict(n_epochs=choice((1, 2))), {'n_epochs': 3}, 'both in the space and set by')]:
        with pytest.raises(HyperparameterError, match=message):
            check_space(train_mlp, space, fixed)


@pytest.mark.parametrize('name', sorted(model_selection.TUTORIALS))
def test_every_tutorial_s_default_space_fits_its_training_function(name):
    tutorial = model_selection.TUTORIALS[name]
    train = tutorial.training_function()
    check_space(train, tutorial.space, {tutorial.epochs_argument: 2})
    grid = model_selection.typed_configurations(train, grid_configurations(tutorial.space, 8, 0))
    for configuration in grid + random_configurations(tutorial.space, 8, 0):
        check_space(train, {}, configuration)


@pytest.mark.parametrize('arguments, message', [
    (dict(trials=0), 'trials must be a positive integer, got 0'),
    (dict(seed=-1), r'seed must be an integer in \[0, 2\*\*32\)'),
    (dict(minutes=0), 'minutes must be a positive number, got 0'),
    (dict(method='bayes'), "method must be one of random, grid, got 'bayes'"),
    (dict(compare=1.5), 'compare must be a positive integer'),
])
def test_bad_search_arguments_from_python_are_refused_before_anything_starts(arguments,
                                                                              message):
    with pytest.raises(HyperparameterError, match=message):
        model_selection.search_hyperparameters('mlp', **arguments)


def test_integer_hyper_parameters_drawn_from_a_range_are_integers():
    from dltutorials.mlp import train_mlp
    configurations = model_selection.typed_configurations(
        train_mlp, random_configurations(dict(n_hidden=log_uniform(10, 1000)), 20, 0))
    assert all(type(c['n_hidden']) is int and 10 <= c['n_hidden'] <= 1000
               for c in configurations)


# --------------------------------------------------------------------------
# A trial, and the records of a search
# --------------------------------------------------------------------------

def test_a_trial_records_the_scores_and_a_diverging_one_is_a_result_not_an_error(tiny_pkl):
    from dltutorials.logistic_sgd import sgd_optimization_mnist

    fixed = dict(dataset=str(tiny_pkl), n_epochs=3)
    record = run_trial('logistic_sgd', dict(learning_rate=0.1, batch_size=50), fixed)
    direct = sgd_optimization_mnist(learning_rate=0.1, batch_size=50, verbose=False, **fixed)
    assert record['status'] == 'ok' and record['worker'] == 'local'
    assert record['validation_error'] == pytest.approx(direct['best_validation_error'])
    assert record['test_error'] == pytest.approx(direct['test_error'])
    assert record['epochs'] == 3
    name, content = record['model']
    assert name == 'logistic_sgd.npz' and content[:2] == b'PK'       # an .npz (a zip)

    diverged = run_trial('logistic_sgd', dict(learning_rate=1e30, batch_size=50), fixed)
    assert diverged['status'] == 'diverged' and diverged['validation_error'] is None
    assert 'learning rate' in diverged['message'] and 'model' not in diverged


def test_the_best_model_is_kept_and_a_cut_last_line_is_dropped(tmp_path):
    configurations = [dict(learning_rate=0.1), dict(learning_rate=0.2), dict(learning_rate=0.3)]
    search = Search('logistic_sgd', configurations, {}, tmp_path)

    def outcome(validation, content):
        return dict(status='ok', validation_error=validation, test_error=validation + 0.01,
                    epochs=1, seconds=1.0, worker='w', message='',
                    model=('logistic_sgd.npz', content))

    search.record(1, outcome(0.20, b'second'), attempts=1)
    search.record(0, outcome(0.10, b'first'), attempts=1)
    search.record(2, outcome(0.15, b'third'), attempts=2)
    assert (tmp_path / 'logistic_sgd.npz').read_bytes() == b'first'
    assert search.best['trial'] == 0
    records = read_records(tmp_path)
    assert sorted(records) == [0, 1, 2] and records[2]['attempts'] == 2
    assert records[0]['learning_rate'] == 0.1 and records[0]['test_error'] == 0.11

    with open(tmp_path / 'trials.jsonl', 'a') as results:
        results.write('{"trial": 3, "learning_ra')       # killed while writing
    assert sorted(read_records(tmp_path)) == [0, 1, 2]
    assert (tmp_path / 'trials.jsonl').read_text().endswith('}\n')


def test_best_so_far_and_the_comparison_table(tmp_path):
    records = {0: dict(validation_error=0.3), 1: dict(validation_error=None),
               2: dict(validation_error=0.1), 3: dict(validation_error=0.2)}
    assert model_selection.best_so_far(records, 5) == [0.3, 0.3, 0.1, 0.1, 0.1]
    assert model_selection.best_so_far({1: dict(validation_error=0.5)}, 2) == [None, 0.5]

    def finished_search(errors):
        search = Search('mlp', [{}] * len(errors), {}, tmp_path)
        search.records = {i: dict(trial=i, validation_error=e, test_error=e, status='ok')
                          for i, e in enumerate(errors)}
        return search

    randoms = [finished_search([0.3, 0.1, 0.2, 0.2]), finished_search([0.4, 0.4, 0.3, 0.05])]
    grids = [finished_search([0.25, 0.35]), finished_search([0.2, 0.3, 0.15, 0.3])]
    lines = model_selection.compare_methods(randoms, grids)
    assert lines[1].split() == ['2', '25.00', '%', '(25.00', '%)', '25.00', '%', '[10.00',
                                '%,', '40.00', '%]', '1', 'of', '2']
    assert lines[2].split()[-3:] == ['2', 'of', '2'] and '15.00 %' in lines[2]


def test_searches_that_share_a_configuration_train_it_once(tmp_path, tiny_pkl):
    from distributed import Client

    configurations = [dict(learning_rate=0.1, batch_size=50), dict(learning_rate=0.5,
                                                                    batch_size=50)]
    fixed = dict(dataset=str(tiny_pkl), n_epochs=2)
    searches = [Search('logistic_sgd', configurations[:1], fixed, tmp_path / 'one'),
                Search('logistic_sgd', configurations, fixed, tmp_path / 'two'),
                Search('logistic_sgd', configurations[::-1], fixed, tmp_path / 'three')]
    for search in searches:
        search.folder.mkdir()
    with Client(processes=False, n_workers=1, threads_per_worker=1,
                dashboard_address=':0') as client:
        model_selection.run_searches(client, searches)
        starts = client.get_events('dltutorials-trial-start')
    assert len(starts) == 2                 # five trials, two configurations
    first, second = (search.records for search in searches[1:])
    assert first[0]['validation_error'] == second[1]['validation_error'] \
        == searches[0].records[0]['validation_error']
    assert first[1]['test_error'] == second[0]['test_error']
    for search in searches:                 # each search keeps its own best model
        assert (search.folder / 'logistic_sgd.npz').exists()
        assert sorted(read_records(search.folder)) == list(range(len(search.configurations)))


# --------------------------------------------------------------------------
# The compile folders of parallel workers
# --------------------------------------------------------------------------

SLOT_PROBE = ('import os, sys, time; from dltutorials.support.parallel import '
              'use_own_compile_folder; print(use_own_compile_folder(), flush=True); '
              'time.sleep(float(sys.argv[1]))')


def start_probe(seconds, **environ):
    return subprocess.Popen([sys.executable, '-c', SLOT_PROBE, str(seconds)],
                            stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, **environ), cwd=str(REPO))


@pytest.fixture
def own_slot_files():
    """Remove the slot lock files a test's own compile folders made, once its processes ended."""
    import tempfile
    from pathlib import Path

    folder = Path(tempfile.gettempdir()) / 'dltutorials-compile-slots'
    before = set(folder.glob('*.lock'))
    yield
    import fcntl
    for path in set(folder.glob('*.lock')) - before:
        with open(path, 'a') as lock:
            try:                # (one another process holds is not ours to remove)
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue
            path.unlink()


def test_each_living_worker_compiles_into_a_folder_of_its_own(tmp_path, own_slot_files):
    # (a folder name of this test's own, so that other processes hold none of its slots)
    variable = ENGINES[engine_name()][0]                # THEANO_FLAGS or PYTENSOR_FLAGS
    flags = 'compiledir_format=probe-%d' % os.getpid()
    environ = {variable: flags}
    probes = [start_probe(30, **environ), start_probe(30, **environ)]
    held = {probe.stdout.readline().strip(): probe for probe in probes}
    worker = 'probe-%d-worker' % os.getpid()
    assert sorted(held) == [worker + '0', worker + '1']
    held[worker + '0'].kill()              # a killed worker's slot is free again
    held[worker + '0'].wait()
    third = start_probe(0, **environ)
    assert third.stdout.readline().strip() == worker + '0'
    held[worker + '1'].kill()
    for probe in probes + [third]:
        probe.wait()
        probe.stdout.close()
    # the user's own compile folder wins
    chosen = start_probe(0, **{variable: 'compiledir=%s' % tmp_path})
    assert chosen.stdout.readline().strip() == 'None'
    chosen.wait()
    chosen.stdout.close()


# --------------------------------------------------------------------------
# Searches on Dask, as a user runs them
# --------------------------------------------------------------------------

def descendants(pid):
    import psutil
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def assert_all_gone(processes, timeout=20):
    import psutil
    gone, alive = psutil.wait_procs(processes, timeout=timeout)
    assert not alive, 'left behind: %s' % [p.cmdline() for p in alive]


@pytest.mark.engine_independent
def test_a_search_runs_on_a_local_cluster_and_keeps_results_plots_and_the_best_model(
        tmp_path, tiny_pkl):
    out = tmp_path / 'search'
    done = run_search('logistic_sgd', '--trials', 4, '--workers', 2, '--n-epochs', 3,
                      '--dataset', tiny_pkl, '--output-dir', out, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    records = model_selection.load_results(out)
    assert [r['trial'] for r in records] == [0, 1, 2, 3]
    assert all(r['status'] == 'ok' and r['epochs'] == 3 for r in records)
    assert len({r['worker'] for r in records}) == 2                 # both workers trained
    best = min(records, key=lambda r: r['validation_error'])
    assert 'best so far' in done.stderr and 'trial 3 ok' in done.stderr
    for name in ('validation_vs_hyperparameters.png', 'best_so_far.png', 'top_trials.txt',
                 'logistic_sgd.npz'):
        assert (out / name).stat().st_size > 0
    assert (out / 'top_trials.txt').read_text().splitlines()[1].split()[0] == str(best['trial'])
    # the kept model is the best trial's: the tutorial's own --evaluate reads it
    evaluated = subprocess.run(
        [sys.executable, str(REPO / 'code' / 'logistic_sgd.py'), '--evaluate', '--dataset',
         str(tiny_pkl), '--output-dir', str(out)], capture_output=True, text=True, timeout=120)
    assert evaluated.returncode == 0, evaluated.stderr
    assert 'error rate %.2f %%' % (100 * best['test_error']) in evaluated.stdout
    evaluated = run_search('logistic_sgd', '--evaluate', '--output-dir', out, cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    assert 'error rate %.2f %%' % (100 * best['test_error']) in evaluated.stdout
    # a second search in the same folder would mix two searches' results
    again = run_search('logistic_sgd', '--trials', 4, '--output-dir', out, cwd=tmp_path)
    assert again.returncode == 2
    assert again.stderr.strip().splitlines()[-1].startswith('error: %s holds a search already'
                                                            % out)


@pytest.mark.engine_independent
def test_a_time_budget_starts_no_trial_after_it_and_resume_finishes_the_search(
        tmp_path, tiny_pkl):
    arguments = ['logistic_sgd', '--trials', 5, '--workers', 1, '--n-epochs', 2, '--dataset',
                 tiny_pkl, '--no-plot', '--output-dir', tmp_path / 'out']
    # 0.6 s: the first trial starts at once, and compiling alone takes longer than that
    stopped = run_search(*arguments, '--minutes', 0.01, cwd=tmp_path)
    assert stopped.returncode == 0, stopped.stderr
    assert [r['trial'] for r in model_selection.load_results(tmp_path / 'out')] == [0]
    assert '4 trials not run yet (--resume)' in stopped.stderr
    finished = run_search(*arguments, '--resume', cwd=tmp_path)
    assert finished.returncode == 0, finished.stderr
    assert [r['trial'] for r in model_selection.load_results(tmp_path / 'out')] == [0, 1, 2, 3, 4]


@pytest.mark.engine_independent
def test_a_search_killed_with_kill_9_resumes_to_the_table_of_an_uninterrupted_one(tmp_path):
    arguments = ['logistic_sgd', '--trials', 6, '--workers', 2, '--n-epochs', 15,
                 '--dataset', SAMPLE_DIGITS, '--seed', 5, '--no-plot']
    whole = run_search(*arguments, '--output-dir', tmp_path / 'whole', cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr

    killed_dir = tmp_path / 'killed'
    search = subprocess.Popen([sys.executable, str(REPO / 'code' / 'model_selection.py')]
                              + [str(a) for a in arguments] + ['--output-dir', str(killed_dir)],
                              cwd=str(tmp_path), stderr=subprocess.DEVNULL)
    results = killed_dir / 'trials.jsonl'
    deadline = time.time() + 240
    while not (results.exists() and len(results.read_text().splitlines()) >= 2):
        assert search.poll() is None and time.time() < deadline
        time.sleep(0.1)
    workers = descendants(search.pid)
    assert len(workers) >= 2
    search.send_signal(signal.SIGKILL)
    search.wait()
    assert_all_gone(workers)                      # the worker processes did not outlive it
    n_done = len(read_records(killed_dir))
    assert 2 <= n_done < 6

    resumed = run_search(*arguments, '--output-dir', killed_dir, '--resume', cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert '%d trials to run (%d already done)' % (6 - n_done, n_done) in resumed.stderr
    assert table(killed_dir) == table(tmp_path / 'whole')
    assert (killed_dir / 'logistic_sgd.npz').read_bytes() == \
        (tmp_path / 'whole' / 'logistic_sgd.npz').read_bytes()       # the same best model
    lines = (killed_dir / 'trials.jsonl').read_text().splitlines()
    assert sorted(json.loads(line)['trial'] for line in lines) == list(range(6))  # none twice

    # --resume with other arguments would mix two searches: refused
    other = run_search(*arguments[:-1], '--seed', 6, '--output-dir', killed_dir, '--resume',
                       cwd=tmp_path)
    assert other.returncode == 2 and 'other arguments (seed)' in other.stderr


@pytest.mark.engine_independent
def test_a_search_on_a_scheduler_and_workers_started_by_hand_survives_a_killed_worker(
        tmp_path):
    from distributed import Client

    scheduler_file = tmp_path / 'scheduler.json'
    dask = [sys.executable, '-m', 'dask']
    started = [subprocess.Popen(dask + ['scheduler', '--host', '127.0.0.1', '--port', '0',
                                        '--no-dashboard', '--scheduler-file',
                                        str(scheduler_file)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    search = None
    try:
        deadline = time.time() + 60
        while not scheduler_file.exists():
            assert time.time() < deadline, 'the scheduler did not start'
            time.sleep(0.1)
        started += [subprocess.Popen(dask + ['worker', '--scheduler-file', str(scheduler_file),
                                             '--nthreads', '1', '--no-dashboard'],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    for _ in range(2)]
        processes = [p for proc in started for p in descendants(proc.pid)]
        address = json.loads(scheduler_file.read_text())['address']
        with Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
            search = subprocess.Popen(
                [sys.executable, str(REPO / 'code' / 'model_selection.py'), 'logistic_sgd',
                 '--trials', '6', '--n-epochs', '15', '--dataset', str(SAMPLE_DIGITS),
                 '--scheduler', address, '--no-plot', '--output-dir', str(tmp_path / 'out')],
                cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            # kill a worker in the middle of a trial: one that has started one it still runs
            deadline = time.time() + 240
            while True:
                assert search.poll() is None and time.time() < deadline
                running = {key for keys in client.processing().values() for key in keys}
                starts = [event for _, event in client.get_events('dltutorials-trial-start')]
                victims = [e for e in starts if e['task'] in {str(k) for k in running}]
                if victims:
                    break
                time.sleep(0.05)
            victim = victims[-1]['worker']
            pid = client.run(os.getpid, workers=[victim])[victim]
            processes += [p for proc in started for p in descendants(proc.pid)]
            os.kill(pid, signal.SIGKILL)
            stdout, stderr = search.communicate(timeout=300)
        assert search.returncode == 0, stderr
        records = model_selection.load_results(tmp_path / 'out')
        assert [r['trial'] for r in records] == list(range(6))     # none lost
        lines = (tmp_path / 'out' / 'trials.jsonl').read_text().splitlines()
        assert len(lines) == 6                                       # none counted twice
        assert all(r['status'] == 'ok' for r in records)
        rerun = [r for r in records if r['attempts'] > 1]
        assert len(rerun) >= 1 and all(r['worker'] != victim for r in rerun)
    finally:
        if search is not None and search.poll() is None:
            search.kill()
        for proc in started:
            proc.terminate()
        for proc in started:
            proc.wait(timeout=30)
    assert_all_gone(processes)


def test_four_workers_compiling_the_same_graphs_at_once_all_succeed(tmp_path, tiny_pkl,
                                                                    own_slot_files):
    # A cold compile folder of its own (inside tmp_path), so that all four compile for real.
    variable = ENGINES[engine_name()][0]                # THEANO_FLAGS or PYTENSOR_FLAGS
    environ = dict(os.environ)
    environ[variable] = ','.join(f for f in (environ.get(variable), 'base_compiledir=%s'
                                             % (tmp_path / 'compiled')) if f)
    out = tmp_path / 'search'
    (tmp_path / 'space.json').write_text(json.dumps(
        {'learning_rate': {'log_uniform': [0.01, 1.0]}, 'batch_size': {'choice': [20, 50]}}))
    done = run_search('logistic_sgd', '--method', 'grid', '--trials', 4, '--workers', 4,
                      '--space', tmp_path / 'space.json', '--quick', '--dataset', tiny_pkl,
                      '--output-dir', out, '--no-plot', cwd=tmp_path, env=environ)
    assert done.returncode == 0, done.stderr
    records = model_selection.load_results(out)
    assert len(records) == 4 and all(r['status'] == 'ok' for r in records), records
    assert len({r['worker'] for r in records}) == 4
    # (the search's own process compiles nothing, but its engine makes its usual folder)
    folders = sorted((tmp_path / 'compiled').glob('*-worker*'))
    assert [folder.name[-8:] for folder in folders] == ['-worker%d' % i for i in range(4)]
    assert all(any(folder.glob('*/*.so')) for folder in folders)


# --------------------------------------------------------------------------
# Bad input: one line, exit 2
# --------------------------------------------------------------------------

@pytest.mark.parametrize('arguments, message', [
    (['lenet5'], "unknown tutorial 'lenet5'"),
    (['mlp', '--space', 'space.json'], "train_mlp() has no hyper-parameter 'hidden_units'"),
    (['mlp', '--space', 'empty.json'], 'the range of learning_rate is empty'),
    (['mlp', '--scheduler', 'tcp://127.0.0.1:9'], 'no Dask scheduler answered at'),
    (['mlp', '--output-dir', '/proc/no-such-folder'], 'cannot write to the output folder'),
    (['mlp', '--resume', '--output-dir', 'nothing-here'], 'nothing to resume in'),
    (['mlp', '--space', 'missing.json'], 'cannot read the space file'),
    (['mlp', '--dataset', 'no-such-digits.pkl.gz'], 'no-such-digits.pkl.gz: no such file'),
    (['mlp', '--workers', 2, '--scheduler', 'tcp://127.0.0.1:9'], 'workers is for the local'),
])
def test_bad_input_gets_one_line_and_exit_2(tmp_path, arguments, message):
    (tmp_path / 'space.json').write_text(json.dumps({'hidden_units': {'choice': [100]}}))
    (tmp_path / 'empty.json').write_text(json.dumps({'learning_rate': {'uniform': [0.1, 0.01]}}))
    started = time.time()
    done = run_search(*arguments, cwd=tmp_path, timeout=60)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith('error: ') and message in lines[-1], done.stderr
    assert 'Traceback' not in done.stderr
    assert time.time() - started < 30
    # nothing that a later search with good arguments would take for a search begun
    assert not (tmp_path / 'results' / 'search' / 'search.json').exists()
