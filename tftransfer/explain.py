"""`python -m tftransfer.explain` (tftransfer-explain): the command is tftransfer/cli/explain.py."""

from tftransfer.cli import launch

if __name__ == '__main__':
  launch.run('explain')
