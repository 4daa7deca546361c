"""`python -m tftransfer.export` (tftransfer-export): see tftransfer/cli/export.py."""

from tftransfer.cli import launch

if __name__ == '__main__':
  launch.run('export')
