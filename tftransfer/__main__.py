"""`python -m tftransfer --version`: the versions of tftransfer, TensorFlow, Keras and Python.

The commands themselves are `python -m tftransfer.<command>` (README, 'Train' and after).
"""

import sys

from tftransfer.cli import launch

if __name__ == '__main__':
  if sys.argv[1:] != ['--version']:
    sys.exit('usage: python -m tftransfer --version; the commands are python -m '
             f'tftransfer.<command> with <command> one of {", ".join(launch.COMMANDS)}.')
  print(launch.versions())
