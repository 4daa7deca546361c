"""`python -m tftransfer.evaluate` (tftransfer-evaluate): see tftransfer/cli/evaluate.py."""

from tftransfer.cli import launch

if __name__ == '__main__':
  launch.run('evaluate')
