"""Grad-CAM points at the evidence: on the synthetic 'patches' task, where only a coloured
square at a random place decides the class, the heat map's peak falls inside the square."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tftransfer.data import image_ops, synthetic
from tftransfer.evaluation import gradcam
from tftransfer.model import transfer
from tftransfer.training import loop, restore
from helpers import tiny_config, write_calibrated_weights

# 128 px gives MobileNet a 4x4 feature map; at 96 px (3x3) every cell sees the whole image.
IMAGE_SIZE = 128


@pytest.fixture(scope='module')
def patch_model(tmp_path_factory):
  """A MobileNet-0.25 trained on 'patches' (2,000 images, 6 epochs; measured: validation
  accuracy 1.0 from the third epoch)."""
  root = tmp_path_factory.mktemp('patches')
  weights = root / 'calibrated.weights.h5'
  write_calibrated_weights(weights, image_size=IMAGE_SIZE)
  config = tiny_config(
      data__name='patches', data__eval_split='validation', data__max_examples_per_class=0,
      data__crop_min_area=1.0, model__image_size=IMAGE_SIZE, model__weights=str(weights),
      train__head_epochs=0, train__finetune_epochs=6, train__finetune_lr=1e-3,
      train__batch_size=64, train__label_smoothing=0.0)
  loop.train_and_evaluate(config, str(root / 'run'))
  return restore.restore(str(root / 'run'))


def _views(images):
  return tf.stack([image_ops.evaluation_view(image, IMAGE_SIZE) for image in images]).numpy()


def _peaks(heatmaps):
  """(row, column) of each heat map's maximum, in pixels of the 32x32 synthetic image."""
  upsampled = gradcam.upsample(heatmaps, synthetic.IMAGE_SIZE)
  flat = upsampled.reshape(len(upsampled), -1).argmax(axis=-1)
  return np.stack(np.unravel_index(flat, upsampled.shape[1:]), axis=-1)


def test_the_heat_map_peaks_inside_the_patch_that_decides_the_class(patch_model):
  images, labels = synthetic.generate('patches', 'validation')
  boxes = synthetic.patch_boxes('patches', 'validation')
  heatmaps, logits = gradcam.GradCam(patch_model.model)(_views(images))
  assert (logits.argmax(-1) == labels).mean() > 0.9
  assert heatmaps.shape == (len(images), 4, 4) and heatmaps.max() == pytest.approx(1.0)
  rows, columns = _peaks(heatmaps).T
  inside = ((boxes[:, 0] <= rows) & (rows < boxes[:, 2]) & (boxes[:, 1] <= columns)
            & (columns < boxes[:, 3]))
  # The 16x16 square covers a quarter of the image, so a blind guess lands inside 25 % of the
  # time (measured: 68 % of the 200 images).
  assert inside.mean() > 0.5, inside.mean()


def test_heat_maps_explain_the_class_asked_for(patch_model):
  images, labels = synthetic.generate('patches', 'validation')
  views = _views(images[:8])
  explain = gradcam.GradCam(patch_model.model)
  predicted, logits = explain(views)
  np.testing.assert_allclose(logits, patch_model.model(views, training=False).numpy(),
                             rtol=1e-4, atol=1e-4)
  same, _ = explain(views, logits.argmax(-1))
  np.testing.assert_allclose(predicted, same, atol=1e-6)
  other, _ = explain(views, (logits.argmax(-1) + 1) % 4)
  assert np.abs(other - predicted).max() > 0.1


def test_only_a_float32_model_is_explained():
  policy = keras.mixed_precision.dtype_policy()
  keras.mixed_precision.set_global_policy('mixed_bfloat16')
  try:
    model = transfer.build_model(backbone='mobilenet', num_classes=3, image_size=32,
                                 width=0.25, weights='none')
  finally:
    keras.mixed_precision.set_global_policy(policy)
  with pytest.raises(ValueError, match='needs a float32 model, not bfloat16'):
    gradcam.GradCam(model.model)
