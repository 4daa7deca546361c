r"""Explains a run's predictions for any image files: the top-k classes and a Grad-CAM
overlay PNG per image, showing where the model found the evidence.

Usage:
  python -m tftransfer.explain --workdir=/tmp/run photo.jpg other.png
  python -m tftransfer.explain --workdir=/tmp/run --class_name=cat --output_dir=/tmp/why photo.jpg

Prints one JSON object per image: {"path", "class", "score", "top_k": [{"class", "score"}],
"explained", "gradcam": the PNG written}, or {"path", "error"} for a file that is not a
readable image (the exit status is then 1). A path that is no file stops it first, in one line
with exit status 2.
"""

import json
import os
import sys

from absl import flags

from tftransfer import errors, restore, workdir as workdir_lib
from tftransfer.evaluation import explain

_WORKDIR = flags.DEFINE_string('workdir', None, 'The training run whose model explains.')
_OUTPUT_DIR = flags.DEFINE_string('output_dir', None, 'Where <image>.gradcam.png files go; '
                                  'default WORKDIR/explain.')
_TOP_K = flags.DEFINE_integer('top_k', 5, 'Classes listed per image, best first.',
                              lower_bound=1)
_CLASS_NAME = flags.DEFINE_string('class_name', None, 'The class the heat maps explain; '
                                  'default each image\'s predicted class.')
_ALLOW_UNFINISHED = flags.DEFINE_bool('allow_unfinished', False, 'Use the newest checkpoint '
                                      'of a run that has not finished.')
flags.mark_flags_as_required(['workdir'])
TAKES_ARGUMENTS = True  # the image files


def main(argv):
  if len(argv) < 2:
    raise errors.InvalidValueError('Name at least one image file to explain.')
  missing = [path for path in argv[1:] if not os.path.isfile(path)]
  if missing:
    raise errors.NotFoundError(
        f'{", ".join(map(repr, missing))}: no such image file{"s" if len(missing) > 1 else ""}'
        ' (explain takes image files; a folder\'s images are `tftransfer-predict`\'s or '
        '`tftransfer-report`\'s).')
  trained = restore.restore(_WORKDIR.value, allow_unfinished=_ALLOW_UNFINISHED.value)
  output_dir = _OUTPUT_DIR.value or os.path.join(_WORKDIR.value, workdir_lib.EXPLAIN)
  failed = 0
  for result in explain.explain_files(trained, argv[1:], output_dir, top_k=_TOP_K.value,
                                      class_name=_CLASS_NAME.value):
    failed += 'error' in result
    print(json.dumps(result), flush=True)
  if failed:
    sys.exit(f'{failed} of {len(argv) - 1} images could not be read (see their "error").')
