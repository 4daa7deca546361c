r"""Accuracy per minute: tftransfer's recommended config at several time budgets.

For each budget B (minutes): `python -m tftransfer.train --config=configs/mobilenet_cpu.py`
with train.time_budget_minutes=B (resolution, epochs and mixup left 'auto', so the run plans
what fits B), timed from its start; then its result (the selected epoch's checkpoint) is
scored on every image of --test_dir by benchmark_scoring.py. Prints one JSON line per budget
and draws test accuracy against minutes as a PNG, with the points of
scripts/benchmark_transfer.py's other systems (its JSON output, --race) on the same axes.
The PNG is drawn from the JSON lines alone: --plot_from=FILE redraws it from a saved output.

  python scripts/benchmark_frontier.py --train_dir=/tmp/splits/train_all \
      --test_dir=/tmp/splits/test --weights=../shared/weights/mobilenet_2_5_224_tf_no_top.h5 \
      --race=race.jsonl --png=docs/frontier.png > frontier.jsonl
"""

import argparse
import json
import pathlib
import subprocess
import sys
import time

import benchmark_scoring  # scripts/benchmark_scoring.py, beside this file

REPO = pathlib.Path(__file__).resolve().parents[1]
LABELS = {'keras_guide': 'keras.io recipe', 'classic': 'classic recipe (SGD)',
          'tftransfer_scratch': 'tftransfer from scratch'}


def run_budget(minutes: float, args) -> dict:
  workdir = pathlib.Path(args.workdir) / f'budget_{minutes:g}'
  subprocess.run(['rm', '-rf', str(workdir)], check=True)
  command = [sys.executable, '-m', 'tftransfer.train',
             f'--config={REPO / "configs" / "mobilenet_cpu.py"}', f'--workdir={workdir}',
             f'--config.data.path={args.train_dir}', f'--config.model.weights={args.weights}',
             f'--config.train.time_budget_minutes={minutes:g}']
  started = time.time()
  with open(f'{workdir}.log', 'w') as log:
    subprocess.run(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, check=True)
  seconds = time.time() - started
  final = json.loads((workdir / 'final_metrics.json').read_text())
  # pylint: disable=g-import-not-at-top
  from tftransfer import plan as plan_lib, workdir as workdir_lib
  from tftransfer.data import folders
  run = workdir_lib.Workdir(str(workdir), create=False)
  plan = plan_lib.load(run)
  scan = folders.scan_folder(args.test_dir,
                             max_image_pixels=run.saved_config().data.max_image_pixels)
  snapshot = f'{workdir}@{final["selected"]["step"]}'
  return {'system': 'tftransfer', 'budget_minutes': minutes, 'seconds': round(seconds, 1),
          'minutes': round(seconds / 60, 2), 'val_accuracy': final['val_accuracy'],
          'test_accuracy': round(benchmark_scoring.score(snapshot, list(scan.files),
                                                         scan.labels, scan.class_names), 4),
          'image_size': plan.image_size, 'epochs': [plan.head_epochs, plan.finetune_epochs],
          'stopped_early': final['stopped_early'], 'selected': final['selected']}


def plot(points: list[dict], race: list[dict], path: str) -> None:
  """Test accuracy against minutes: tftransfer's budgets as a line, the race's systems'
  epochs as points."""
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  figure = Figure(figsize=(7.5, 4.6), dpi=110, layout='constrained')
  axes = figure.subplots()
  ours = sorted(points, key=lambda p: p['minutes'])
  axes.plot([p['minutes'] for p in ours], [p['test_accuracy'] for p in ours], 'o-',
            color='tab:blue', lw=2, label='tftransfer, one run per time budget')
  for p in ours:
    axes.annotate(f'{p["budget_minutes"]:g} min budget\n{p["image_size"]} px',
                  (p['minutes'], p['test_accuracy']), textcoords='offset points',
                  xytext=(6, -22), fontsize=7)
  markers = {'keras_guide': ('s', 'tab:orange'), 'classic': ('^', 'tab:green'),
             'tftransfer_scratch': ('x', 'tab:gray')}
  for system, (marker, color) in markers.items():
    mine = [p for p in race if p.get('system') == system and 'test_accuracy' in p]
    if mine:
      axes.plot([p['seconds'] / 60 for p in mine], [p['test_accuracy'] for p in mine],
                marker=marker, color=color, ls=':', label=f'{LABELS[system]}, per epoch')
  axes.set_xlabel('minutes of wall time, start-up to result (2-core CPU)')
  axes.set_ylabel('test accuracy (held-out images)')
  axes.grid(alpha=0.3)
  axes.legend(fontsize=8, loc='lower right')
  figure.savefig(path)


def _read_json_lines(path: str) -> list[dict]:
  return [json.loads(line) for line in pathlib.Path(path).read_text().splitlines()
          if line.startswith('{')]


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--train_dir')
  parser.add_argument('--test_dir')
  parser.add_argument('--weights')
  parser.add_argument('--budgets', default='2,5,10,30', help='minutes, comma-separated')
  parser.add_argument('--workdir', default='/tmp/tftransfer_frontier')
  parser.add_argument('--race', help="scripts/benchmark_transfer.py's JSON output to plot")
  parser.add_argument('--png', default='frontier.png')
  parser.add_argument('--plot_from', help='redraw the PNG from this saved output, no runs')
  args = parser.parse_args()
  race = _read_json_lines(args.race) if args.race else []
  if args.plot_from:
    points = [p for p in _read_json_lines(args.plot_from) if 'budget_minutes' in p]
  else:
    if not (args.train_dir and args.test_dir and args.weights):
      parser.error('--train_dir, --test_dir and --weights are required (or --plot_from).')
    pathlib.Path(args.workdir).mkdir(parents=True, exist_ok=True)
    points = []
    for minutes in (float(b) for b in args.budgets.split(',')):
      points.append(run_budget(minutes, args))
      print(json.dumps(points[-1]), flush=True)
  plot(points, race, args.png)


if __name__ == '__main__':
  main()
