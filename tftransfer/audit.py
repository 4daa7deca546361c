"""`python -m tftransfer.audit` (tftransfer-audit): the command is tftransfer/cli/audit.py."""

from tftransfer.cli import launch

if __name__ == '__main__':
  launch.run('audit')
