"""`python -m tftransfer.train` (tftransfer-train): the command is tftransfer/cli/train.py."""

from tftransfer.cli import launch

if __name__ == '__main__':
  launch.run('train')
