"""The TFDS source: a prepared (or, with data.download, downloaded) TensorFlow Datasets set.

The images are decoded by image_ops.decode_image, as every other source's (TFDS's own
decoder uses TensorFlow's fast, less accurate JPEG IDCT). The validation split is the data
set's own 'validation' split, the one data.eval_split names, or a stratified, seeded
data.val_fraction carved from the training split ('carve'); 'auto' never picks 'test'.
"""

import ml_collections
import numpy as np
import tensorflow as tf

from tftransfer import errors
from tftransfer.data import dataset, image_ops, splits


class DataUnavailableError(errors.UnavailableError):
  """A dataset is not available locally and may not be downloaded."""


def load(data: ml_collections.ConfigDict, *, seed: int, split_seed: int,
         scan_cache: str | None) -> dataset.Data:
  """The TFDS data set data.name, its data.train_split and validation split."""
  del seed, scan_cache
  import tensorflow_datasets as tfds  # Imported here: it is slow and only this source needs it.

  builder = tfds.builder(data.name, data_dir=data.data_dir or None)
  if data.download:
    builder.download_and_prepare()
  image_key, label_key = builder.info.supervised_keys
  class_names = tuple(builder.info.features[label_key].names)
  num_classes = len(class_names)

  def read_labels(split):
    # Labels only: skipping image decoding makes this pass cheap.
    examples = builder.as_dataset(split=split, shuffle_files=False,
                                  decoders={image_key: tfds.decode.SkipDecoding()})
    batches = examples.map(lambda example: example[label_key]).batch(8192)
    return np.concatenate([batch.numpy() for batch in batches] or [np.zeros([0])]
                          ).astype(np.int32)

  max_pixels = data.max_image_pixels

  def split_of(split, indices, labels):
    keep = np.zeros(len(labels), bool)
    keep[indices] = True
    keep = tf.constant(keep)

    def read(shard_index, num_shards):
      # The encoded images, decoded by the decode training and serving share (TFDS's own
      # decoder uses TensorFlow's fast, less accurate JPEG IDCT).
      examples = builder.as_dataset(split=split, shuffle_files=False,
                                    decoders={image_key: tfds.decode.SkipDecoding()})
      examples = examples.enumerate().filter(lambda index, _: keep[index])
      examples = examples.shard(num_shards, shard_index)
      return examples.map(lambda _, example: (
          image_ops.decode_image(example[image_key], max_pixels=max_pixels),
          tf.cast(example[label_key], tf.int32)), num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.Split(read, dataset.counts(labels[indices], num_classes))

  try:
    train_labels = read_labels(data.train_split)
  except AssertionError as error:  # What TFDS raises for data that is not prepared.
    raise DataUnavailableError(
        f'TFDS dataset {data.name!r} is not prepared in {builder.data_dir} ({error}). Either '
        f'prepare it where there is network (`tfds build {data.name}`) and point '
        '--config.data.data_dir at the result, allow downloading here with '
        '--config.data.download=true, or train on an image folder with '
        '--config.data.source=folder --config.data.path=DIR.') from None
  eval_split = splits.resolve_eval_split(data.eval_split, builder.info.splits)
  if eval_split != 'carve':
    train = splits.cap_per_class(np.arange(len(train_labels)), train_labels,
                                 max_per_class=data.max_examples_per_class, seed=split_seed)
    val_labels = read_labels(eval_split)
    val_split = split_of(eval_split, np.arange(len(val_labels)), val_labels)
  else:
    train, val = splits.train_val_indices(train_labels, data, split_seed)
    val_split = split_of(data.train_split, val, train_labels)
  return dataset.Data(class_names, split_of(data.train_split, train, train_labels), val_split,
                      f'TFDS {data.name!r} (train: {data.train_split}, validation: '
                      f'{eval_split})')
