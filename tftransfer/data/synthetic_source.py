"""The synthetic source: the procedural texture tasks of synthetic.py, for offline runs and
tests, split like TFDS data (their own 'validation' split, or a carved fraction)."""

import ml_collections
import numpy as np

from tftransfer.data import dataset, splits, synthetic


def load(data: ml_collections.ConfigDict, *, seed: int, split_seed: int,
         scan_cache: str | None) -> dataset.Data:
  """The synthetic task data.name's data.train_split and validation split."""
  del seed, scan_cache
  task = synthetic.get_task(data.name)
  num_classes = len(task.class_names)
  images, labels = synthetic.generate(data.name, data.train_split)
  eval_split = splits.resolve_eval_split(data.eval_split, task.examples_per_class)
  if eval_split != 'carve':
    train = splits.cap_per_class(np.arange(len(labels)), labels,
                                 max_per_class=data.max_examples_per_class, seed=split_seed)
    val_images, val_labels = synthetic.generate(data.name, eval_split)
  else:
    train, val = splits.train_val_indices(labels, data, split_seed)
    val_images, val_labels = images[val], labels[val]
  return dataset.Data(task.class_names,
                      dataset.array_split(images[train], labels[train], num_classes),
                      dataset.array_split(val_images, val_labels, num_classes),
                      f'synthetic task {data.name!r}')
