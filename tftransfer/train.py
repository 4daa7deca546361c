"""`python -m tftransfer.train` (tftransfer-train): the command is tftransfer/cli/train.py."""

from tftransfer.cli.train import run

if __name__ == '__main__':
  run()
