r"""Classifies image files through an exported model: a SavedModel version's serving_default
signature, or a .tflite export in the LiteRT interpreter (images decoded on the host).

Usage:
  python -m tftransfer.predict --model=/models/my_model/1 photo.jpg more_photos/ ...
  python -m tftransfer.predict --model=/models/my_model/1/model_int8.tflite photo.jpg ...

Prints one JSON object per image, in order: {"path", "class", "score", "top_k": [{"class",
"score"}, ...]}; for a multi-label model {"path", "labels": [{"class", "score"}, ...] (the
labels at or above their thresholds, best first), "top_k": [...]}; or {"path", "error"} for
a file the model rejects (the exit status is then 1).
Folders are searched recursively for .jpg .jpeg .png .gif .bmp .webp files.
"""

import json
import sys

from absl import flags

from tftransfer import errors
from tftransfer.serving import prediction

_MODEL = flags.DEFINE_string('model', None, 'An exported version directory, export_dir/<N>, '
                             'or a .tflite file in one (with its labels.txt beside it).')
_BATCH_SIZE = flags.DEFINE_integer('batch_size', 32, 'Images per signature call (a .tflite '
                                   'takes one image per call).', lower_bound=1)
flags.mark_flags_as_required(['model'])
TAKES_ARGUMENTS = True  # the image files and folders


def main(argv):
  if len(argv) < 2:
    raise errors.InvalidValueError('Name at least one image file or folder.')
  files = prediction.image_files(argv[1:])
  export = prediction.load_model(_MODEL.value)
  failed = 0
  for result in prediction.predict_files(export, files, batch_size=_BATCH_SIZE.value):
    failed += 'error' in result
    print(json.dumps(result), flush=True)
  if failed:
    sys.exit(f'{failed} of {len(files)} images were rejected (see their "error").')

