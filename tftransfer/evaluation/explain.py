""""Why did it say that?": the run's top-k and a Grad-CAM overlay PNG for any image file.

Each image goes through the evaluation view (data/image_ops.py), the run's float32 model
(training/restore.py) and Grad-CAM of the predicted class, or of a class the user names
(gradcam.py).
"""

import os
from typing import Iterator

import numpy as np
import tensorflow as tf

from tftransfer import errors, files
from tftransfer.data import image_ops
from tftransfer.evaluation import gradcam
from tftransfer import restore


def _output_name(path: str, taken: set[str]) -> str:
  """'<stem>.gradcam.png', numbered when another image already took the name, shortened
  (files.fitted_name) when the image's own name leaves no room for the suffix."""
  stem = os.path.splitext(os.path.basename(path))[0] or 'image'
  name, number = files.fitted_name(stem, '.gradcam.png'), 1
  while name in taken:
    number += 1
    name = files.fitted_name(f'{stem}_{number}', '.gradcam.png')
  taken.add(name)
  return name


def explain_files(trained: restore.TrainedModel, paths: list[str], output_dir: str, *,
                  top_k: int = 5, class_name: str | None = None) -> Iterator[dict]:
  """Classifies each image file and writes its Grad-CAM overlay to output_dir.

  Args:
    trained: the run's restored model.
    paths: image files (JPEG, PNG, GIF, BMP, WebP).
    output_dir: where '<stem>.gradcam.png' files go (created if missing).
    top_k: how many classes to list, best first.
    class_name: the class the heat maps explain; None = each image's predicted class.

  Yields:
    Per image, in order: {'path', 'class', 'score', 'top_k': [{'class', 'score'}],
    'explained': the class its heat map is for, 'gradcam': the PNG's path}, or
    {'path', 'error'} for a file that is not a readable image.

  Raises:
    errors.InvalidValueError: `class_name` is not one of the model's classes.
  """
  names = trained.class_names
  if class_name is not None:
    class_name = files.text_name(class_name)  # NFC, as the model's class names are
  if class_name is not None and class_name not in names:
    raise errors.InvalidValueError(f'--class_name={class_name!r} is not a class of the model; '
                                   f'its classes: {", ".join(names)}.')
  explain = gradcam.GradCam(trained.model)
  os.makedirs(output_dir, exist_ok=True)
  taken: set[str] = set()
  max_pixels = trained.config.data.max_image_pixels
  for path in paths:
    try:
      image = image_ops.evaluation_view(image_ops.decode_image(
          tf.io.read_file(path), max_pixels=max_pixels), trained.image_size)
    except tf.errors.OpError as error:
      yield {'path': path, 'error': image_ops.error_reason(error)}
      continue
    except OSError as error:
      yield {'path': path, 'error': str(error)}
      continue
    classes = None if class_name is None else np.asarray([names.index(class_name)])
    heatmaps, logits = explain(image[None].numpy(), classes)
    probabilities = tf.nn.softmax(logits[0]).numpy()
    ranked = np.argsort(-probabilities, kind='stable')[:top_k]
    pixels = np.clip(np.round(image.numpy()), 0, 255).astype(np.uint8)
    output = os.path.join(output_dir, _output_name(path, taken))
    heatmap = gradcam.upsample(heatmaps, trained.image_size)[0]
    try:  # One image's overlay that cannot be written never stops the others.
      tf.io.write_file(output, tf.io.encode_png(gradcam.overlay(pixels, heatmap)))
    except (tf.errors.OpError, OSError) as error:
      yield {'path': path, 'error': f'its heat map could not be written to {output}: '
                                    f'{getattr(error, "message", None) or error}'}
      continue
    yield {'path': path, 'class': names[ranked[0]],
           'score': round(float(probabilities[ranked[0]]), 5),
           'top_k': [{'class': names[k], 'score': round(float(probabilities[k]), 5)}
                     for k in ranked],
           'explained': class_name or names[ranked[0]], 'gradcam': output}
