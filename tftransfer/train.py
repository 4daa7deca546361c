"""`python -m tftransfer.train` (tftransfer-train): see tftransfer/cli/train.py."""

from tftransfer.cli import launch

if __name__ == '__main__':
  launch.run('train')
