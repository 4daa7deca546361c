"""`python -m tftransfer.make_tfrecords` (tftransfer-make-tfrecords): the command is tftransfer/cli/make_tfrecords.py."""

from tftransfer.cli import launch

if __name__ == '__main__':
  launch.run('make_tfrecords')
