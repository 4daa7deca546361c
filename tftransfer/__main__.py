"""`python -m tftransfer <command> ...`: the same as `tftransfer <command>` (cli/commands.py)."""

from tftransfer.cli import launch

if __name__ == '__main__':
  launch.main()
