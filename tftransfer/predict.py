"""`python -m tftransfer.predict` (tftransfer-predict): the command is tftransfer/cli/predict.py."""

from tftransfer.cli.predict import run

if __name__ == '__main__':
  run()
