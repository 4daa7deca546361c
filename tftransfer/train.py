"""`python -m tftransfer.train`, kept for scripts that spell it so: `tftransfer train`."""

from tftransfer.cli import launch

if __name__ == '__main__':
  launch.run('train')
