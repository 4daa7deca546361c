r"""Writes a run's HTML report: curves, per-class results, worst mistakes with Grad-CAM,
calibration and the data, in one self-contained index.html.

Usage:
  # On the run's own validation split; writes WORKDIR/report/index.html:
  python -m tftransfer.report --workdir=/tmp/run
  # On a folder of images of the run's classes, DIR/<class>/...:
  python -m tftransfer.report --workdir=/tmp/run --data=/data/test --output=/tmp/test_report
"""

from absl import flags

from tftransfer.cli import launch
from tftransfer.evaluation import predictions, report

_WORKDIR = flags.DEFINE_string('workdir', None, 'The training run to report on.')
_DATA = flags.DEFINE_string('data', predictions.VALIDATION, "'val': the run's validation "
                            'split; or a folder with one sub-folder of images per class of '
                            'the run, or a manifest (.csv, .tsv, .jsonl) of its labels.')
_OUTPUT = flags.DEFINE_string('output', None, 'Directory of index.html; default WORKDIR/report.')
_NUM_MISTAKES = flags.DEFINE_integer('num_mistakes', report.NUM_MISTAKES, 'How many of the '
                                     'highest-loss misclassified images to show.', lower_bound=0)
_NUM_PAIRS = flags.DEFINE_integer('num_pairs', report.NUM_PAIRS, 'How many of the most '
                                  'confused class pairs to show.', lower_bound=0)
_CHECKPOINT = flags.DEFINE_string(
    'checkpoint', 'best', "Which of the run's checkpoints: best (the epoch its "
    "train.select_metric chose, the run's result), last, or a step number it kept.")
_ALLOW_UNFINISHED = flags.DEFINE_bool('allow_unfinished', False, 'Report on the newest '
                                      'checkpoint of a run that has not finished.')
flags.mark_flags_as_required(['workdir'])


def main(argv):
  del argv  # No positional arguments (cli/launch.py refuses them).
  path = report.report_workdir(
      _WORKDIR.value, data=_DATA.value, output_dir=_OUTPUT.value,
      checkpoint=_CHECKPOINT.value, allow_unfinished=_ALLOW_UNFINISHED.value,
      command=launch.command_line('report'),
      num_mistakes=_NUM_MISTAKES.value, num_pairs=_NUM_PAIRS.value)
  print(path)
