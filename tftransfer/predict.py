"""`python -m tftransfer.predict` (tftransfer-predict): the command is tftransfer/cli/predict.py."""

from tftransfer.cli import launch

if __name__ == '__main__':
  launch.run('predict')
