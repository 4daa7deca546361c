"""`python -m tftransfer.make_tfrecords` (tftransfer-make-tfrecords): the command is tftransfer/cli/make_tfrecords.py."""

from tftransfer.cli.make_tfrecords import run

if __name__ == '__main__':
  run()
