r"""Exports a training run: a SavedModel version that TF Serving loads as it is, and LiteRT
(.tflite) models and a .keras file for phones and plain Keras.

Usage:
  python -m tftransfer.export --workdir=/tmp/run --export_dir=/models/my_model [--version=N]
  python -m tftransfer.export --workdir=/tmp/run --export_dir=/models/my_model \
      --format=saved_model,keras,tflite --quantize=none,float16,dynamic,int8

  python -m tftransfer.export --workdir=/tmp/run --export_dir=/models/my_model \
      --version=1 --format=tflite --quantize=int8     # added to version 1, no new version

Writes export_dir/<version>/ (by default the next integer after the versions already there,
1 for the first) atomically; an existing version is never replaced without --overwrite, and
--version=N of an existing version without saved_model in --format adds those files beside
its SavedModel. `saved_model_cli show --dir export_dir/<version> --all` shows the signatures.
With tflite or keras, every format is measured on the run's validation split first
(export_report.json); a .tflite whose top-1 drop is larger than --max_accuracy_drop and real
(its paired 95% interval above zero) is named and left out, the others are published, and
the exit status is 2.
"""

from absl import flags
from absl import logging

from tftransfer.serving import export, litert

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
_FORMAT = flags.DEFINE_list('format', ['saved_model'], 'What to write, one or more of '
                            f'{",".join(export.FORMATS)}. tflite and keras need the run\'s '
                            'data, to measure every format on its validation split.')
_QUANTIZE = flags.DEFINE_list('quantize', None, 'With --format=tflite: one .tflite per value, '
                              f'of {",".join(litert.QUANTIZATIONS)} (default none = float32). '
                              'int8 is full-integer: uint8 pixels in, uint8 scores out.')
_MAX_ACCURACY_DROP = flags.DEFINE_float(
    'max_accuracy_drop', None, 'Largest top-1 accuracy loss of a .tflite from the SavedModel, '
    'in points, that the export accepts (a larger one fails only when its 95% interval is '
    'above zero); default '
    + ', '.join(f'{key} {value:g}' for key, value in litert.DEFAULT_MAX_ACCURACY_DROP.items())
    + '.', lower_bound=0)
_CALIBRATION_IMAGES = flags.DEFINE_integer(
    'calibration_images', 300, 'Training images (stratified by class) that calibrate an int8 '
    'model\'s activation ranges.', lower_bound=1)
_LATENCY_RUNS = flags.DEFINE_integer('latency_runs', 50, 'Timed one-image calls per format '
                                     'for the median latency in export_report.json.',
                                     lower_bound=1)
_TOP_K = flags.DEFINE_integer('top_k', 0, 'Best classes the signatures return (capped at the '
                             "number of classes); 0 = the run's config.export.top_k.",
                             lower_bound=0)
_NUM_THREADS = flags.DEFINE_integer('num_threads', 1, 'LiteRT interpreter threads while '
                                    'verifying and timing .tflite models.', lower_bound=1)
flags.mark_flags_as_required(['workdir', 'export_dir'])


def main(argv):
  del argv  # No positional arguments (cli/launch.py refuses them).
  path = export.export(_WORKDIR.value, _EXPORT_DIR.value, version=_VERSION.value,
                       overwrite=_OVERWRITE.value, allow_unfinished=_ALLOW_UNFINISHED.value,
                       checkpoint=_CHECKPOINT.value, formats=_FORMAT.value,
                       quantize=_QUANTIZE.value, max_accuracy_drop=_MAX_ACCURACY_DROP.value,
                       calibration_images=_CALIBRATION_IMAGES.value,
                       latency_runs=_LATENCY_RUNS.value, num_threads=_NUM_THREADS.value,
                       top_k=_TOP_K.value)
  if 'saved_model' in _FORMAT.value:
    logging.info('Inspect it with: saved_model_cli show --dir %s --all', path)
  print(path)
