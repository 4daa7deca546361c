"""`python -m tftransfer.evaluate` (tftransfer-evaluate): the command is tftransfer/cli/evaluate.py."""

from tftransfer.cli.evaluate import run

if __name__ == '__main__':
  run()
