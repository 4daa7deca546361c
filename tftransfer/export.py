"""`python -m tftransfer.export` (tftransfer-export): the command is tftransfer/cli/export.py."""

from tftransfer.cli.export import run

if __name__ == '__main__':
  run()
