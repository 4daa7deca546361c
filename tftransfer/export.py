"""`python -m tftransfer.export`, kept for scripts that spell it so: `tftransfer export`."""

from tftransfer.cli import launch

if __name__ == '__main__':
  launch.run('export')
