r"""Converts an image folder into sharded TFRecords for --config.data.source=tfrecord.

Usage:
  python -m tftransfer.make_tfrecords --input=/data/my_images --output=/data/my_tfrecords \
      [--shards=16] [--on_bad_image=skip] [--max_image_pixels=N]

The folder is scanned first, as training scans it: unusable files (undecodable, or larger
than --max_image_pixels) are left out and listed in OUTPUT/dataset.json (or, with
--on_bad_image=fail, stop the conversion). OUTPUT must not exist yet; it appears only once
complete. Train on it with
  --config.data.source=tfrecord --config.data.path=/data/my_tfrecords
"""

from absl import flags

from tftransfer import config as config_lib
from tftransfer.data import tfrecords

_INPUT = flags.DEFINE_string('input', None, 'Image folder: one sub-folder of images per class.')
_OUTPUT = flags.DEFINE_string('output', None, 'Directory to create for the TFRecords and '
                              'dataset.json; must not exist yet (or be empty).')
_SHARDS = flags.DEFINE_integer(
    'shards', 0, 'Number of TFRecord files; at least the number of workers that will read '
    'them, so that each reads its own files. 0 = about 128 MiB per file, at least 16.',
    lower_bound=0)
_SEED = flags.DEFINE_integer('seed', 0, 'Seeds the order of the images across the files.')
_ON_BAD_IMAGE = flags.DEFINE_enum(
    'on_bad_image', 'skip', config_lib.BAD_IMAGE_POLICIES,
    "Undecodable files: 'skip' leaves them out "
    "(listed in dataset.json), 'fail' stops before writing anything.")
_MAX_IMAGE_PIXELS = flags.DEFINE_integer(
    'max_image_pixels', config_lib.default_config().data.max_image_pixels,
    'Images with more pixels are left out, as config.data.max_image_pixels leaves them out of '
    'training (see its comment); 0 = no limit.', lower_bound=0)
flags.mark_flags_as_required(['input', 'output'])


def main(argv):
  del argv  # No positional arguments (cli/launch.py refuses them).
  tfrecords.convert_folder(_INPUT.value, _OUTPUT.value, num_shards=_SHARDS.value,
                           seed=_SEED.value, on_bad_image=_ON_BAD_IMAGE.value,
                           max_image_pixels=_MAX_IMAGE_PIXELS.value)

