"""`python -m tftransfer.report` (tftransfer-report): the command is tftransfer/cli/report.py."""

from tftransfer.cli import launch

if __name__ == '__main__':
  launch.run('report')
