"""`python -m tftransfer.predict` (tftransfer-predict): see tftransfer/cli/predict.py."""

from tftransfer.cli import launch

if __name__ == '__main__':
  launch.run('predict')
