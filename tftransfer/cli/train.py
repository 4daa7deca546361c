r"""Fine-tunes a pretrained Keras application on an image classification task.

Usage:
  python -m tftransfer.train --config=configs/cifar10.py:resnet50 --workdir=/tmp/run \
      [--config.train.batch_size=32 ...]

Re-running the same command resumes from the workdir's newest checkpoint; a finished run
is not retrained. Ctrl-C or SIGTERM stops at the next step boundary after saving a
checkpoint (exit status 130 or 143); a second one stops at once. `--helpfull` lists every
config field; `--verbosity=1` also logs the resolved config in full.
"""

from absl import flags
from absl import logging
from ml_collections import config_flags

from tftransfer import config as config_lib
from tftransfer.auditing import run as audit_run
from tftransfer.cli import launch
from tftransfer.training import loop

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Path to a config file in configs/, optionally with an argument '
    '(configs/quickstart.py:transfer). Override any field with --config.<field>=value; the '
    'fields, their defaults (before the config file changes them) and meanings:\n'
    + config_lib.describe_fields())
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory holding the whole run: config, '
                               'checkpoints, TensorBoard logs, metrics; resumed if it exists.')
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
  del argv  # No positional arguments (cli/launch.py refuses them).
  if logging.get_verbosity() >= 1:
    logging.info('Config as given:\n%s', _CONFIG.value)
  # The data audit runs on the head phase's features, as soon as they are ready.
  loop.train_and_evaluate(_CONFIG.value, _WORKDIR.value, started=launch.STARTED,
                          hooks=loop.Hooks(features_ready=audit_run.in_training))
