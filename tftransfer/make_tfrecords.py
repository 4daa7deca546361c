"""`python -m tftransfer.make_tfrecords` (tftransfer-make-tfrecords): see cli/make_tfrecords.py."""

from tftransfer.cli import launch

if __name__ == '__main__':
  launch.run('make_tfrecords')
