"""Grad-CAM: where in an image the classifier found the evidence for a class.

Selvaraju et al. 2017, "Grad-CAM: Visual Explanations from Deep Networks via Gradient-based
Localization" (arXiv:1610.02391), as in keras.io's Grad-CAM example: the gradients of the
class's logit with respect to the backbone's last convolutional feature map A [h, w, C] are
averaged over space into one weight per channel, alpha_c = mean_ij d logit / d A_ijc, and the
heat map is ReLU(sum_c alpha_c A_c), scaled to [0, 1]. It runs on the run's own Keras model
in float32, whatever precision the run trained in: restore.restore rebuilds it that way.
"""

import keras
from matplotlib import colormaps
import numpy as np
import tensorflow as tf

from tftransfer.model import transfer

# How much of the overlay is the heat map's colour (keras.io's example uses 0.4).
OVERLAY_ALPHA = 0.45


class GradCam:
  """Grad-CAM heat maps of a tftransfer classifier (see the module docstring)."""

  def __init__(self, model: keras.Model):
    """`model`: a float32 classifier of transfer.build_model, e.g. restore.restore's.

    Raises:
      ValueError: the model computes in another dtype (restore it with restore.restore).
    """
    self._preprocess, self._backbone, self._pool, self._head = (
        transfer.classifier_parts(model))
    if self._backbone.compute_dtype != 'float32':
      raise ValueError(f'Grad-CAM needs a float32 model, not {self._backbone.compute_dtype}; '
                       'restore the run with training.restore.restore.')
    self._maps = tf.function(self._heatmaps, reduce_retracing=True)

  def _heatmaps(self, images: tf.Tensor, classes: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    with tf.GradientTape() as tape:
      feature_map = self._backbone(self._preprocess(images), training=False)
      tape.watch(feature_map)
      logits = self._head(self._pool(feature_map), training=False)
      classes = tf.where(classes < 0, tf.argmax(logits, axis=-1, output_type=tf.int32),
                         classes)
      # Examples do not interact in inference mode, so the gradient of the sum is, for each
      # example, the gradient of its own class's logit.
      score = tf.reduce_sum(tf.gather(logits, classes, batch_dims=1))
    gradients = tape.gradient(score, feature_map)
    channel_weights = tf.reduce_mean(gradients, axis=(1, 2))
    heatmaps = tf.nn.relu(tf.einsum('bhwc,bc->bhw', feature_map, channel_weights))
    peak = tf.reduce_max(heatmaps, axis=(1, 2), keepdims=True)
    return tf.math.divide_no_nan(heatmaps, peak), logits

  def __call__(self, images: np.ndarray, classes: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """Heat maps of `images` for `classes`.

    Args:
      images: float32 [B, S, S, 3] in 0-255, the model's input (the evaluation view).
      classes: int [B], the class each heat map explains; None = the predicted class.

    Returns:
      (heat maps float32 [B, h, w] in [0, 1] at the feature map's resolution, all zero where
      no location speaks for the class; logits float32 [B, num_classes]).
    """
    images = tf.convert_to_tensor(images, tf.float32)
    if classes is None:
      classes = -np.ones(images.shape[0], np.int32)
    heatmaps, logits = self._maps(images, tf.convert_to_tensor(classes, tf.int32))
    return heatmaps.numpy(), logits.numpy()


def upsample(heatmaps: np.ndarray, size: int) -> np.ndarray:
  """Heat maps [B, h, w] -> float32 [B, size, size], resized bilinearly over the image (as
  keras.io's example does: each cell stands for the square of the image below it)."""
  resized = tf.image.resize(np.asarray(heatmaps, np.float32)[..., None], (size, size))
  return resized.numpy()[..., 0]


def overlay(image: np.ndarray, heatmap: np.ndarray, *, alpha: float = OVERLAY_ALPHA
            ) -> np.ndarray:
  """The heat map in matplotlib's 'jet' colours over the image.

  Args:
    image: [S, S, 3] in 0-255 (uint8 or float).
    heatmap: [S, S] in [0, 1], already upsampled to the image (`upsample`).
    alpha: the heat map's weight in the blend.

  Returns:
    uint8 [S, S, 3].
  """
  colours = colormaps['jet'](np.clip(heatmap, 0, 1))[..., :3] * 255
  blended = (1 - alpha) * np.asarray(image, np.float32) + alpha * colours
  return np.clip(np.round(blended), 0, 255).astype(np.uint8)
