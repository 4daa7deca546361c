r"""Old defaults against new ones on several data sets, judged on held-out images.

For every data set and variant: `python -m tftransfer.train --config=configs/folder.py` with
only the data, the backbone (MobileNet, width 0.25) and its weights set, timed from the
command's start; then `python -m tftransfer.evaluate --workdir=... --data=SPLITS/test` (with
this checkout's code) on the held-out images. Variants:

  old   the code and configs/folder.py of --old_commit (checked out in a temporary git
        worktree and run from there), i.e. the defaults before this change
  new   this checkout

Data sets are the folders of scripts/make_cifar_splits.py (train_50, train_500, train_all,
train_lt, judged on test/), and with --synthetic_weights the offline 'textures_target' task
(judged on its own validation split, it has no other held-out images). Prints one JSON line
per run and a Markdown table.

  python scripts/make_cifar_splits.py --input=../shared/data/cifar10/train --output=/tmp/splits
  python scripts/measure_defaults.py --splits=/tmp/splits \
      --weights=../shared/weights/mobilenet_2_5_224_tf_no_top.h5
"""

import argparse
import json
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]


def _run(command, cwd, log):
  started = time.time()
  with open(log, 'w') as f:
    result = subprocess.run(command, cwd=cwd, stdout=f, stderr=subprocess.STDOUT)
  if result.returncode:
    raise RuntimeError(f'{command} failed; see {log}')
  return time.time() - started


def measure(dataset: str, variant: str, checkout: pathlib.Path, args) -> dict:
  workdir = pathlib.Path(args.workdir) / f'{dataset}_{variant}'
  if workdir.exists() and not (workdir / 'final_metrics.json').exists():
    shutil.rmtree(workdir)  # an interrupted run: measure it again from the start
  command = [sys.executable, '-m', 'tftransfer.train', f'--config={checkout}/configs/folder.py',
             f'--workdir={workdir}', '--config.model.backbone=mobilenet',
             '--config.model.width=0.25']
  if dataset == 'textures_target':
    command += ['--config.data.source=synthetic', '--config.data.name=textures_target',
                f'--config.model.weights={args.synthetic_weights}']
    evaluation = []
  else:
    command += [f'--config.data.path={pathlib.Path(args.splits) / dataset}',
                f'--config.model.weights={args.weights}']
    evaluation = [f'--data={pathlib.Path(args.splits) / "test"}']
  seconds = None
  if not (workdir / 'final_metrics.json').exists():
    seconds = _run(command, checkout, f'{workdir}.log')
  _run([sys.executable, '-m', 'tftransfer.evaluate', f'--workdir={workdir}', *evaluation,
        f'--output_dir={workdir}/test_eval'], REPO, f'{workdir}.eval.log')
  metrics = json.loads((workdir / 'test_eval' / 'metrics.json').read_text())
  final = json.loads((workdir / 'final_metrics.json').read_text())
  # The plan as this code reads it, whichever commit's code trained the run.
  # pylint: disable-next=g-import-not-at-top
  from tftransfer import plan as plan_lib, workdir as workdir_lib
  plan = plan_lib.load(workdir_lib.Workdir(str(workdir), create=False))
  return {'dataset': dataset, 'variant': variant, 'judged_on': metrics['data'],
          'accuracy': metrics['top1_accuracy'],
          'balanced_accuracy': metrics.get('balanced_accuracy'),
          'num_judged': metrics['num_examples'], 'train_seconds': seconds,
          'wall_seconds_in_run': final.get('wall_seconds'),
          'image_size': plan.image_size, 'epochs': [plan.head_epochs, plan.finetune_epochs]}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--splits', required=True)
  parser.add_argument('--weights', required=True)
  parser.add_argument('--datasets', default='train_50,train_500,train_lt,train_all')
  parser.add_argument('--variants', default='old,new')
  parser.add_argument('--old_commit', default='49c43dd',
                      help='the last commit with the old defaults')
  parser.add_argument('--synthetic_weights', help='backbone weights pretrained on '
                      'textures_source (scripts/quickstart.sh writes them) for textures_target')
  parser.add_argument('--workdir', default='/tmp/tftransfer_defaults')
  args = parser.parse_args()
  pathlib.Path(args.workdir).mkdir(parents=True, exist_ok=True)
  datasets = args.datasets.split(',') + (['textures_target'] if args.synthetic_weights else [])
  results = []
  with tempfile.TemporaryDirectory() as scratch:
    old = pathlib.Path(scratch) / 'old'
    subprocess.run(['git', '-C', str(REPO), 'worktree', 'add', '--detach', str(old),
                    args.old_commit], check=True, capture_output=True)
    try:
      for dataset in datasets:
        for variant in args.variants.split(','):
          result = measure(dataset, variant, old if variant == 'old' else REPO, args)
          results.append(result)
          print(json.dumps(result), flush=True)
    finally:
      subprocess.run(['git', '-C', str(REPO), 'worktree', 'remove', '--force', str(old)],
                     check=False)
  print('\n| data set | variant | accuracy | balanced accuracy | size, epochs | seconds |')
  print('| --- | --- | ---: | ---: | --- | ---: |')
  for r in results:
    seconds = f'{r["train_seconds"]:.0f}' if r['train_seconds'] else '(earlier run)'
    print(f'| {r["dataset"]} | {r["variant"]} | {r["accuracy"]:.4f} | '
          f'{r["balanced_accuracy"]:.4f} | {r["image_size"]} px, {r["epochs"]} | {seconds} |')


if __name__ == '__main__':
  main()
