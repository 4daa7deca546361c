"""`python -m tftransfer.predict`, kept for scripts that spell it so: `tftransfer predict`."""

from tftransfer.cli import launch

if __name__ == '__main__':
  launch.run('predict')
