"""Prints the final results of finished runs side by side.

Usage: python scripts/compare_runs.py WORKDIR [WORKDIR ...]
"""

import json
import pathlib
import sys


def main(workdirs):
  width = max(len('run'), *map(len, workdirs))
  print(f'{"run":<{width}} {"data":<16} {"labels":>7} {"val acc":>8} {"steps":>6} {"seconds":>8}')
  for workdir in map(pathlib.Path, workdirs):
    final = json.loads((workdir / 'final_metrics.json').read_text())
    config = json.loads((workdir / 'config.json').read_text())
    print(f'{str(workdir):<{width}} {config["data"]["name"]:<16} '
          f'{final["num_train_examples"]:>7} {final["val_accuracy"]:>8.3f} '
          f'{final["step"]:>6} {final["wall_seconds"]:>8.1f}')


if __name__ == '__main__':
  if len(sys.argv) < 2:
    sys.exit(__doc__)
  main(sys.argv[1:])
