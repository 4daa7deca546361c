"""`python -m tftransfer.inspect`, kept for scripts that spell it so: `tftransfer inspect`."""

from tftransfer.cli import launch

if __name__ == '__main__':
  launch.run('inspect')
