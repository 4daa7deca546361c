"""`python -m tftransfer.evaluate`, kept for scripts that spell it so: `tftransfer evaluate`."""

from tftransfer.cli import launch

if __name__ == '__main__':
  launch.run('evaluate')
