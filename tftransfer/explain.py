"""`python -m tftransfer.explain`, kept for scripts that spell it so: `tftransfer explain`."""

from tftransfer.cli import launch

if __name__ == '__main__':
  launch.run('explain')
