r"""Fine-tunes a pretrained Keras application on an image classification task.

Usage:
  python -m tftransfer.train --config=configs/cifar10.py:resnet50 --workdir=/tmp/run \
      [--config.train.batch_size=32 ...]

Re-running the same command resumes from the workdir's newest checkpoint; a finished run
is not retrained. Ctrl-C or SIGTERM stops at the next step boundary after saving a
checkpoint (exit status 130 or 143); a second one stops at once. `--helpfull` lists every
config field.
"""

import logging as python_logging
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from tftransfer import config as config_lib
from tftransfer.training import interrupts, loop

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Path to a config file in configs/, optionally with an argument '
    '(configs/quickstart.py:transfer). Override any field with --config.<field>=value; the '
    'fields, their defaults (before the config file changes them) and meanings:\n'
    + config_lib.describe_fields())
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory holding the whole run: config, '
                               'checkpoints, TensorBoard logs, metrics; resumed if it exists.')
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  # TensorFlow's checkpoint writer logs one INFO line per save through absl ('Sharding callback
  # duration'), which drowns the progress lines; its warnings and errors still show.
  logging.get_absl_handler().addFilter(
      lambda record: record.module != 'functional_saver' or record.levelno > python_logging.INFO)
  logging.info('Config:\n%s', _CONFIG.value)
  try:
    loop.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
  except interrupts.Interrupted as stopped:  # Logged, with the step, where it was raised.
    sys.exit(stopped.exit_code)


def run():
  """Console-script entry point (tftransfer-train)."""
  app.run(main)


if __name__ == '__main__':
  run()
