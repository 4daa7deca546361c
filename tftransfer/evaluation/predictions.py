"""A run's restored model applied to the data it is judged on: its validation split (the same
images and view training validated on) or an image folder of the same classes.

    predict_workdir(W)              -> Predictions over W's validation split
    predict_workdir(W, data=DIR)    -> Predictions over every image of DIR/<class>/...
"""

import dataclasses

import numpy as np
import tensorflow as tf

from tftransfer import errors, restore, workdir as workdir_lib
from tftransfer.data import dataset, image_ops, manifest_source, pipeline
from tftransfer.evaluation import metrics as metrics_lib
from tftransfer.workdir import Workdir

# --data value meaning the run's own validation split.
VALIDATION = 'val'


@dataclasses.dataclass(frozen=True)
class Predictions:
  """The model's outputs on every example of a split, in the split's order."""
  trained: restore.TrainedModel
  split: dataset.Split  # the examples judged
  description: str  # what they are, e.g. "image folder '/data' (5000 images), validation split"
  logits: np.ndarray  # float32 [N, num_classes]
  labels: np.ndarray  # int32 [N]; a multi-label run's: float32 0/1 targets [N, num_classes]
  data_report: dict | None  # Data.report() of the judged data (counts, skipped files)

  @property
  def probabilities(self) -> np.ndarray:
    """float64 [N, num_classes]: softmax of the logits; for a multi-label run, each label's
    sigmoid."""
    logits = self.logits.astype(np.float64)
    if self.trained.multi_label:
      return 1 / (1 + np.exp(-logits))
    exponentials = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return exponentials / exponentials.sum(axis=-1, keepdims=True)

  def metrics(self) -> dict:
    """What metrics.json holds of these predictions (metrics.py)."""
    names = self.trained.class_names
    if self.trained.multi_label:
      return metrics_lib.multilabel_metrics(self.probabilities, self.labels, names,
                                            self.trained.label_thresholds())
    return metrics_lib.classification_metrics([(self.logits, self.labels)], names)


def predict(trained: restore.TrainedModel, split: dataset.Split) -> tuple[np.ndarray,
                                                                         np.ndarray]:
  """(float32 logits [N, K], labels [N] or multi-hot [N, K]) of the model on `split`'s
  evaluation view, in the split's order, batched by the run's train.batch_size."""
  batches = pipeline.eval_batches(split, image_size=trained.image_size,
                                  batch_size=trained.config.train.batch_size, cache=False)
  logits = tf.function(lambda images: trained.model(images, training=False),
                       reduce_retracing=True)
  outputs, labels = [], []
  for images, batch_labels in batches:
    outputs.append(logits(images).numpy())
    labels.append(batch_labels.numpy())
  if not outputs:
    raise errors.InvalidValueError('The data to judge is empty: nothing to evaluate.')
  labels = np.concatenate(labels)
  return np.concatenate(outputs), labels.astype(np.float32 if labels.ndim == 2 else np.int32)


def predict_workdir(workdir: str, *, data: str = VALIDATION, checkpoint: str | int = 'best',
                    allow_unfinished: bool = False, columns: dict | None = None,
                    setting: str = '--data') -> Predictions:
  """Restores the run in `workdir` and predicts `data`: 'val' (its validation split), a
  folder of images with the run's classes, or a manifest of them read with `columns`
  (manifests.read's keywords; None = the run's data.*_column fields). `checkpoint`: 'best'
  (the run's selected epoch), 'last' or a step (restore.restore). `setting` names `data` in
  errors: the command's flag, or the Python argument.

  Raises:
    errors.UserError: no run, an unfinished run (unless allow_unfinished), changed data, a
      folder of other classes.
  """
  if data == VALIDATION:
    restore.require_validation(workdir, uses='to judge', fix=(
        f'Judge a test folder or manifest of its classes with {setting}=PATH.'))
  trained = restore.restore(workdir, checkpoint=checkpoint, allow_unfinished=allow_unfinished)
  if data == VALIDATION:
    loaded = restore.run_data(workdir, trained.config)
    split, description = loaded.val, f'{loaded.description}, validation split'
    report = Workdir(workdir, create=False).read_json(workdir_lib.DATA_REPORT)
  else:
    split, report = restore.judged_data(
        data, trained.class_names, max_pixels=trained.config.data.max_image_pixels,
        columns=manifest_source.columns(trained.config.data) if columns is None else columns,
        multi_label=trained.multi_label, setting=setting)
    description = f'{report["description"]} ({split.num_examples} images)'
  logits, labels = predict(trained, split)
  return Predictions(trained, split, description, logits, labels, report)


def evaluation_images(split: dataset.Split, indices: np.ndarray, image_size: int
                      ) -> np.ndarray:
  """uint8 [len(indices), S, S, 3]: the evaluation view of the examples at `indices` of
  `split` (positions in its order), in the order of `indices`."""
  wanted = np.asarray(indices, np.int64)
  if not len(wanted):
    return np.zeros((0, image_size, image_size, 3), np.uint8)
  keep = tf.constant(np.unique(wanted))
  examples = pipeline.stored_examples(split, image_size=image_size, cache=False).enumerate()
  examples = examples.filter(lambda index, _: tf.reduce_any(tf.equal(index, keep)))
  found = {int(index): np.clip(np.round(image_ops.center_crop_resize(image, image_size)),
                               0, 255).astype(np.uint8)
           for index, (image, _) in examples}
  return np.stack([found[int(index)] for index in wanted])
