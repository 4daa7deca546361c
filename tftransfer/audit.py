"""`python -m tftransfer.audit`, kept for scripts that spell it so: `tftransfer audit`."""

from tftransfer.cli import launch

if __name__ == '__main__':
  launch.run('audit')
