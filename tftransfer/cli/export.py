r"""Exports a training run as a SavedModel version that TF Serving loads as it is.

Usage:
  python -m tftransfer.export --workdir=/tmp/run --export_dir=/models/my_model [--version=N]

Writes export_dir/<version>/ (by default the next integer after the versions already there,
1 for the first) atomically; an existing version is never replaced without --overwrite.
`saved_model_cli show --dir export_dir/<version> --all` shows the signatures.
"""

from absl import flags
from absl import logging

from tftransfer.serving import export

_WORKDIR = flags.DEFINE_string('workdir', None, 'The training run to export.')
_EXPORT_DIR = flags.DEFINE_string('export_dir', None, 'The model base directory that TF '
                                  'Serving watches; the version is written below it.')
_VERSION = flags.DEFINE_integer('version', 0, 'Version number to write; 0 = the next integer '
                                'after the largest existing version (1 if none).', lower_bound=0)
_OVERWRITE = flags.DEFINE_bool('overwrite', False, 'Replace the version if it exists.')
_ALLOW_UNFINISHED = flags.DEFINE_bool('allow_unfinished', False, 'Export the newest checkpoint '
                                      'of a run that has not finished (no final_metrics.json).')
_CHECKPOINT = flags.DEFINE_string(
    'checkpoint', 'best', "Which of the run's checkpoints: best (the epoch its "
    'train.select_metric chose, the run\'s result), last, or a step number it kept.')
flags.mark_flags_as_required(['workdir', 'export_dir'])


def main(argv):
  del argv  # No positional arguments (cli/launch.py refuses them).
  path = export.export(_WORKDIR.value, _EXPORT_DIR.value, version=_VERSION.value,
                       overwrite=_OVERWRITE.value, allow_unfinished=_ALLOW_UNFINISHED.value,
                       checkpoint=_CHECKPOINT.value)
  logging.info('Inspect it with: saved_model_cli show --dir %s --all', path)
  print(path)
