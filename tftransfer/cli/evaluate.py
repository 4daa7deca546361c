r"""Evaluates a trained model: metrics.json and a confusion-matrix PNG.

Usage:
  # A run's selected (best) epoch on exactly its own validation split; writes WORKDIR/eval/
  # and the HTML report WORKDIR/report/index.html (see tftransfer-report):
  python -m tftransfer.evaluate --workdir=/tmp/run [--checkpoint=best|last|STEP]
  # ... or on every image of a held-out folder; writes WORKDIR/eval/<folder name>/ and
  # WORKDIR/report/<folder name>/:
  python -m tftransfer.evaluate --workdir=/tmp/run --data=/data/my_test_images
  # An export, on the validation split of a data config; writes OUTPUT_DIR/:
  python -m tftransfer.evaluate --model=/models/my_model/1 --config=configs/folder.py \
      --config.data.path=/data/my_images --output_dir=/tmp/eval
  # A LiteRT export (images decoded and resized on the host, then the interpreter):
  python -m tftransfer.evaluate --model=/models/my_model/1/model_int8.tflite \
      --config=configs/folder.py --config.data.path=/data/my_images --output_dir=/tmp/eval
"""

import os

from absl import flags
from absl import logging
from ml_collections import config_flags

from tftransfer import errors
from tftransfer.cli import launch
from tftransfer.evaluation import evaluate

_WORKDIR = flags.DEFINE_string('workdir', None, 'A training run to evaluate on its own '
                               'validation split (results in WORKDIR/eval/).')
_CHECKPOINT = flags.DEFINE_string(
    'checkpoint', 'best', "With --workdir: which of the run's checkpoints: best (the epoch "
    "its train.select_metric chose, the run's result), last, or a step number it kept.")
_DATA = flags.DEFINE_string('data', None, 'Judge on every image of this folder '
                            '(root/<class>/**/<image>, some or all of the model\'s classes, '
                            'matched by name), or of this manifest (.csv, .tsv or .jsonl, read '
                            "with the run's data.*_column fields; its 'test' rows when its "
                            'split column has any), instead of a validation split.')
_MODEL = flags.DEFINE_string('model', None, 'An exported version directory, export_dir/<N>, '
                             'evaluated through its predict_images signature, or a .tflite '
                             'file in one (needs --data or --config, and --output_dir).')
_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'With --model and no --data: a config in configs/ whose data section, '
    'seed and train.batch_size choose the validation split.')
_OUTPUT_DIR = flags.DEFINE_string('output_dir', None, 'Where metrics.json and '
                                  'confusion_matrix.png go (required with --model).')
_ALLOW_UNFINISHED = flags.DEFINE_bool('allow_unfinished', False, 'With --workdir: evaluate a '
                                      'run that has not finished.')
_REPORT = flags.DEFINE_bool('report', True, 'With --workdir: also write the HTML report, '
                            'WORKDIR/report/[<folder name>/]index.html.')


def main(argv):
  del argv  # No positional arguments (cli/launch.py refuses them).
  if bool(_WORKDIR.value) == bool(_MODEL.value):
    raise errors.InvalidValueError(
        'Pass exactly one of --workdir=RUN or --model=EXPORT_DIR/VERSION.')
  if _WORKDIR.value:
    if _CONFIG.value:
      raise errors.InvalidValueError(
          "--config goes with --model; --workdir evaluates with the run's own config.")
    metrics = evaluate.evaluate_workdir(
        _WORKDIR.value, checkpoint=_CHECKPOINT.value, data_dir=_DATA.value,
        output_dir=_OUTPUT_DIR.value, allow_unfinished=_ALLOW_UNFINISHED.value,
        report=_REPORT.value, command=launch.command_line('evaluate'))
  else:
    missing = ([] if _CONFIG.value or _DATA.value else
               ['the images to judge, --data=FOLDER (or --config=configs/X.py for its '
                'validation split)']) + ([] if _OUTPUT_DIR.value else
                                         ['where metrics.json goes, --output_dir=DIR'])
    if missing:
      raise errors.InvalidValueError(f'--model={_MODEL.value} needs {" and ".join(missing)}.')
    if _CONFIG.value and logging.get_verbosity() >= 1:
      logging.info('Config as given:\n%s', _CONFIG.value)
    metrics = evaluate.evaluate_export(_MODEL.value, _CONFIG.value, _OUTPUT_DIR.value,
                                       data_dir=_DATA.value)
    logging.info('Wrote %s and confusion_matrix.png.',
                 os.path.join(_OUTPUT_DIR.value, 'metrics.json'))
  if metrics.get('task') == 'multi_label':
    logging.info('Mean average precision %.4f (micro %.4f), macro F1 %.4f at the thresholds, '
                 'exact match %.4f on %d images (%s).', metrics['mean_average_precision'],
                 metrics['micro_average_precision'], metrics['macro_f1'],
                 metrics['exact_match'], metrics['num_examples'], metrics['data'])
  else:
    logging.info('Top-1 accuracy %.4f (balanced %.4f) on %d images (%s).',
                 metrics['top1_accuracy'], metrics['balanced_accuracy'],
                 metrics['num_examples'], metrics['data'])
