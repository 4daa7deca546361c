r"""Converts an image folder, or a manifest, into sharded TFRecords for
--config.data.source=tfrecord.

Usage:
  python -m tftransfer.make_tfrecords --input=/data/my_images --output=/data/my_tfrecords \
      [--shards=16] [--on_bad_image=skip] [--max_image_pixels=N]
  python -m tftransfer.make_tfrecords --manifest=/data/labels.csv --output=/data/records \
      [--label_column=tags --label_delimiter='|'] [--label_columns=a,b,c] [--split_column=s]

The images are scanned first, as training scans them: unusable files (missing,
undecodable, or larger than --max_image_pixels) are left out and listed in
OUTPUT/dataset.json (or, with --on_bad_image=fail, stop the conversion). A manifest's image
with several labels keeps them all (a multi-valued image/class/label). OUTPUT must not
exist yet; it appears only once complete. Train on it with
  --config.data.source=tfrecord --config.data.path=/data/my_tfrecords
"""

from absl import flags

from tftransfer import config as config_lib, errors
from tftransfer.data import tfrecords

_INPUT = flags.DEFINE_string('input', None, 'Image folder: one sub-folder of images per class '
                             '(or give --manifest).')
_MANIFEST = flags.DEFINE_string('manifest', None, 'A .csv, .tsv or .jsonl table of image paths '
                                'and labels (config.data.source=csv reads the same), instead '
                                'of --input.')
_DEFAULTS = config_lib.default_config().data
_IMAGE_COLUMN = flags.DEFINE_string('image_column', _DEFAULTS.image_column,
                                    "--manifest's column of image paths.")
_LABEL_COLUMN = flags.DEFINE_string('label_column', _DEFAULTS.label_column,
                                    "--manifest's column of labels.")
_LABEL_DELIMITER = flags.DEFINE_string('label_delimiter', '', 'Splits a label cell into '
                                       "several labels, e.g. '|'; '' = one label a row.")
_LABEL_COLUMNS = flags.DEFINE_list('label_columns', [], "--manifest's 0/1 columns, one per "
                                   'label, instead of --label_column.')
_SPLIT_COLUMN = flags.DEFINE_string('split_column', '', "--manifest's column of train / "
                                    'validation / test, kept in the records; '' = none.')
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
flags.mark_flags_as_required(['output'])


def main(argv):
  del argv  # No positional arguments (cli/launch.py refuses them).
  if bool(_INPUT.value) == bool(_MANIFEST.value):
    raise errors.InvalidValueError('Pass exactly one of --input=FOLDER or --manifest=TABLE.')
  options = dict(num_shards=_SHARDS.value, seed=_SEED.value, on_bad_image=_ON_BAD_IMAGE.value,
                 max_image_pixels=_MAX_IMAGE_PIXELS.value)
  if _INPUT.value:
    tfrecords.convert_folder(_INPUT.value, _OUTPUT.value, **options)
    return
  tfrecords.convert_manifest(_MANIFEST.value, _OUTPUT.value, columns={
      'image_column': _IMAGE_COLUMN.value, 'label_column': _LABEL_COLUMN.value,
      'label_delimiter': _LABEL_DELIMITER.value, 'label_columns': tuple(_LABEL_COLUMNS.value),
      'split_column': _SPLIT_COLUMN.value}, **options)

