"""`python -m tftransfer.make_tfrecords`, kept for scripts that spell it so:
`tftransfer make_tfrecords`."""

from tftransfer.cli import launch

if __name__ == '__main__':
  launch.run('make_tfrecords')
