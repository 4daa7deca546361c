"""`python -m tftransfer.report`, kept for scripts that spell it so: `tftransfer report`."""

from tftransfer.cli import launch

if __name__ == '__main__':
  launch.run('report')
