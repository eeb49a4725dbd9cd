"""Measure the tricks of the trade on Fashion-MNIST: the table and the figure of their page.

Each row trains a model with the tutorial's recipe plus some tricks, through
the same command line a reader uses (the row's command is printed and goes
into the table), and reads the scores and the learning curve from the run.
Rows run one after the other, so their times per epoch are comparable.

    python benchmarks/tricks_of_the_trade.py mlp [--dataset ../shared/data/fashion-mnist]
    python benchmarks/tricks_of_the_trade.py lenet

writes ``doc/tricks_<model>.txt`` (the table, which the page includes) and
``doc/images/tricks_<model>.png`` (validation error per epoch, every row).
A row already measured (its JSON in ``--work-dir``) is not run again: delete
it to measure anew.
"""
import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Settings every row of a model shares (no early stop; the MLP's rows: 30 epochs each).
COMMON = {
    'mlp': ['--n-epochs', '30', '--patience', '1000000'],
    'lenet': ['--patience', '1000000'],
}

# The flags the rows build on: the MLP's and the conv net's trick recipes.
MLP_RELU = ['--n-hidden', '512', '512', '--activation', 'relu', '--init', 'he_uniform',
            '--batch-size', '128', '--L2-reg', '0']
MLP_ADAM = MLP_RELU + ['--optimizer', 'adam', '--learning-rate', '0.001']
MLP_TRICKS = MLP_ADAM + ['--shuffle', '--dropout', '0.2', '--batch-norm']
CONV_TRICKS = ['--nkerns', '32', '64', '--n-hidden', '256', '--activation', 'relu', '--init',
               'he_normal', '--batch-norm', '--dropout', '0.5', '--optimizer', 'adam',
               '--learning-rate', '0.001', '--batch-size', '128', '--shuffle']

#: (label, flags added to the model's common ones), each row the one above plus a trick
#: (or the row it names).
ROWS = {
    'mlp': [
        ('tutorial: 500 tanh, SGD 0.01, batch 20, L2', []),
        ('512-512 ReLU, He init, batch 128, momentum 0.9', MLP_RELU + ['--optimizer', 'momentum']),
        ('Adam 0.001 instead of momentum', MLP_ADAM),
        ('+ shuffled every epoch', MLP_ADAM + ['--shuffle']),
        ('+ dropout 0.2', MLP_ADAM + ['--shuffle', '--dropout', '0.2']),
        ('+ batch normalization', MLP_TRICKS),
        ('row 6 + shifted copies (augmentation)', MLP_TRICKS + ['--augment', 'shift']),
        ('row 6 + learning rate halved every 10 epochs', MLP_TRICKS + ['--schedule', 'step']),
    ],
    'lenet': [
        ('the tutorial: LeNet 20-50-500 tanh, SGD 0.1, batches of 500, 15 epochs',
         ['--n-epochs', '15']),
        ('32-64-256, ReLU, He init, batch norm, dropout 0.5, Adam 0.001, batches of 128, '
         'shuffled, 15 epochs', ['--n-epochs', '15'] + CONV_TRICKS),
        ('+ shifted and mirrored copies (augmentation), 15 epochs',
         ['--n-epochs', '15'] + CONV_TRICKS + ['--augment', 'shift', 'flip']),
        ('row 3 + learning rate halved every 10 epochs, 40 epochs',
         ['--n-epochs', '40'] + CONV_TRICKS + ['--augment', 'shift', 'flip', '--schedule', 'step']),
        ('row 4 with dropout 0.25',
         ['--n-epochs', '40'] + CONV_TRICKS + ['--augment', 'shift', 'flip', '--schedule', 'step',
                                               '--dropout', '0.25']),
    ],
}

SCRIPTS = {'mlp': 'code/mlp.py', 'lenet': 'code/convolutional_mlp.py'}
TITLES = {'mlp': 'The MLP', 'lenet': 'The convolutional net'}


def run_row(model, index, flags, dataset, work_dir):
    """Train one row through the script; return its result (JSON-ready dict)."""
    record = work_dir / ('%s_%d.json' % (model, index))
    if record.exists():
        return json.loads(record.read_text())
    output_dir = work_dir / ('%s_%d' % (model, index))
    command = [sys.executable, SCRIPTS[model], '--dataset', dataset] + COMMON[model] + flags + \
        ['--output-dir', str(output_dir), '--no-plot']
    print('$ ' + ' '.join(shlex.quote(part) for part in command), flush=True)
    started = time.perf_counter()
    # The scores and the curve: read from the run's own log lines.
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    sys.stderr.write(completed.stderr[-2000:])
    if completed.returncode != 0:
        raise SystemExit('row %d failed (exit %d)' % (index, completed.returncode))
    result = parse_log(completed.stderr)
    result['wall_seconds'] = time.perf_counter() - started
    result['flags'] = flags
    record.write_text(json.dumps(result, indent=1))
    return result


def parse_log(log):
    """Per-epoch validation errors, and the summary, from a training run's log lines."""
    import re

    curve = [float(value) for value in re.findall(
        r'^epoch \d+, minibatch (?:\d+)/(?:\d+), validation error ([\d.]+) %', log, re.M)]
    summary = re.search(r'best validation score of ([\d.]+) %, with test performance ([\d.]+) %',
                        log)
    timing = re.search(r'The code ran for (\d+) epochs .* in ([\d.]+) s, ([\d.]+) s per epoch',
                       log)
    best_epoch = 1 + curve.index(min(curve))
    return dict(validation_curve=curve, best_validation_error=float(summary.group(1)),
                test_error=float(summary.group(2)), epochs=int(timing.group(1)),
                best_epoch=best_epoch, seconds_per_epoch=float(timing.group(3)))


def write_table(model, rows, results, dataset, path):
    lines = ['.. list-table::', '   :header-rows: 1', '   :widths: 50 12 12 10 12', '',
             '   * - recipe', '     - test error (%)', '     - validation error (%)',
             '     - best epoch', '     - s / epoch']
    for (label, _), result in zip(rows, results):
        lines += ['   * - %s' % label, '     - %.2f' % result['test_error'],
                  '     - %.2f' % result['best_validation_error'],
                  '     - %d of %d' % (result['best_epoch'], result['epochs']),
                  '     - %.1f' % result['seconds_per_epoch']]
    lines += ['', 'The commands (each row adds its flags to ``python %s --dataset %s %s``):'
              % (SCRIPTS[model], dataset, ' '.join(COMMON[model])), '']
    for number, ((label, flags), _) in enumerate(zip(rows, results), 1):
        lines += ['%d. ``%s``' % (number, ' '.join(flags) or '(no flag)')]
    path.write_text('\n'.join(lines) + '\n')


def draw_curves(model, rows, results, path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 4.5))
    for number, ((label, _), result) in enumerate(zip(rows, results), 1):
        curve = result['validation_curve']
        axes.plot(range(1, len(curve) + 1), curve, label='%d. %s' % (number, label))
    axes.set_xlabel('epoch')
    axes.set_ylabel('validation error (%)')
    axes.set_ylim(top=min(20, axes.get_ylim()[1]))
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7)
    axes.set_title('%s on Fashion-MNIST: each trick added' % TITLES[model])
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('model', choices=sorted(ROWS))
    parser.add_argument('--dataset', default='../shared/data/fashion-mnist')
    parser.add_argument('--work-dir', default='results/tricks')
    parser.add_argument('--rows', type=int, nargs='*', help='only these rows (from 1)')
    args = parser.parse_args(argv)
    work_dir = (ROOT / args.work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    rows = ROWS[args.model]
    selected = args.rows or range(1, len(rows) + 1)
    results = [run_row(args.model, number, rows[number - 1][1], args.dataset, work_dir)
               for number in selected]
    if len(results) == len(rows):
        write_table(args.model, rows, results, args.dataset,
                    ROOT / 'doc' / ('tricks_%s.txt' % args.model))
        draw_curves(args.model, rows, results, ROOT / 'doc' / 'images' /
                    ('tricks_%s.png' % args.model))
    for number, result in zip(selected, results):
        print('%d. test %.2f %%, validation %.2f %% (epoch %d), %.1f s / epoch'
              % (number, result['test_error'], result['best_validation_error'],
                 result['best_epoch'], result['seconds_per_epoch']))


if __name__ == '__main__':
    main()
