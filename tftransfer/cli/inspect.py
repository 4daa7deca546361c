r"""Prints the TFLite Model Metadata embedded in .tflite files, what MediaPipe Tasks, the
TFLite Task Library and ML Kit read: the model's name, description and version, the input
image's size, colour space and normalisation, and the output's associated files (labels.txt)
with their contents.

Usage:
  python -m tftransfer inspect /models/mine/1/model_int8.tflite

Prints one JSON object per file (serving/litert_metadata.py's `read`).
"""

import json

from absl import flags

from tftransfer import errors
from tftransfer.serving import litert_metadata

_FILES = flags.DEFINE_bool('files', True, "Include the associated files' contents (labels.txt, "
                           'thresholds.txt); --nofiles lists only their names in the metadata.')
TAKES_ARGUMENTS = True  # the .tflite files


def main(argv):
  if len(argv) < 2:
    raise errors.InvalidValueError('Name at least one .tflite file, e.g. `tftransfer inspect '
                                   '/models/mine/1/model.tflite`.')
  for path in argv[1:]:
    try:
      read = litert_metadata.read(path)
    except FileNotFoundError:
      raise errors.NotFoundError(f'{path!r}: no such file.') from None
    except errors.InvalidValueError as error:
      raise errors.InvalidValueError(f'{path!r}: {error}') from None
    if not _FILES.value:
      read.pop('files')
    print(json.dumps({'path': path, **read}, indent=2))
