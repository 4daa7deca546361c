"""A .tflite classifier run with the LiteRT interpreter (ai-edge-litert; tf.lite.Interpreter is
deprecated since TensorFlow 2.20): what export verification, tftransfer-predict and
tftransfer-evaluate run a LiteRT export with.

The model takes uint8 pixels [1, S, S, 3] (litert.py); images are decoded and brought to the
evaluation view on the host, as an app would, and sent one at a time. A quantized output
(uint8 probabilities of an int8 model) is dequantized with its scale and zero point.
"""

import os

import numpy as np

from tftransfer import errors
from tftransfer.serving import litert, signatures


class LiteRTClassifier:
  """One .tflite classifier in a LiteRT interpreter."""

  def __init__(self, model: str | bytes, *, num_threads: int = 1):
    """Loads `model`, a .tflite file's path or its bytes.

    Args:
      model: the .tflite file or flatbuffer.
      num_threads: interpreter threads (the default XNNPACK delegate runs on them).

    Raises:
      errors.InvalidValueError: the model lacks the tftransfer signature.
    """
    from ai_edge_litert import interpreter as litert_interpreter  # pylint: disable=g-import-not-at-top
    source = {'model_content': model} if isinstance(model, bytes) else {'model_path': model}
    self.interpreter = litert_interpreter.Interpreter(**source, num_threads=num_threads)
    signatures = self.interpreter.get_signature_list()
    if litert.SIGNATURE not in signatures or signatures[litert.SIGNATURE] != {
        'inputs': [litert.INPUT], 'outputs': [litert.OUTPUT]}:
      raise errors.InvalidValueError(
          f'The LiteRT model has signatures {signatures}, not the {litert.SIGNATURE!r} '
          f'({litert.INPUT} -> {litert.OUTPUT}) of a tftransfer export; write one with '
          '`tftransfer-export --format=tflite`.')
    self.runner = self.interpreter.get_signature_runner(litert.SIGNATURE)
    details = self.runner.get_input_details()[litert.INPUT]
    self.input_shape = tuple(int(size) for size in details['shape'])
    output = self.runner.get_output_details()[litert.OUTPUT]
    self.num_classes = int(output['shape'][-1])
    self._output_quantization = output['quantization'] if np.dtype(
        output['dtype']) != np.float32 else None

  @property
  def image_size(self) -> int:
    return self.input_shape[1]

  def probabilities(self, images: np.ndarray) -> np.ndarray:
    """uint8 pixels [B, S, S, 3] -> float32 probabilities [B, num_classes], one image per
    interpreter call (the model's batch is 1, as on a phone)."""
    if images.dtype != np.uint8 or tuple(images.shape[1:]) != self.input_shape[1:]:
      raise errors.InvalidValueError(
          f'The LiteRT model takes uint8 pixels of shape {self.input_shape[1:]}, not '
          f'{images.dtype} {tuple(images.shape[1:])}.')
    rows = [self.runner(**{litert.INPUT: image[np.newaxis]})[litert.OUTPUT][0]
            for image in images]
    scores = np.stack(rows) if rows else np.zeros([0, self.num_classes], np.float32)
    if self._output_quantization is not None:
      scale, zero_point = self._output_quantization
      scores = (scores.astype(np.float32) - zero_point) * scale
    return scores.astype(np.float32)


def labels_beside(model_path: str) -> tuple[str, ...]:
  """The class names in the labels.txt beside a .tflite file, in label order.

  Raises:
    errors.NotFoundError: there is no labels.txt beside it.
  """
  path = os.path.join(os.path.dirname(os.path.abspath(model_path)), signatures.LABELS_FILE)
  if not os.path.isfile(path):
    raise errors.NotFoundError(
        f'{model_path} has no labels.txt beside it: keep the .tflite in the directory '
        '`tftransfer-export --format=tflite` wrote, with its labels.txt.')
  with open(path, encoding='utf-8', errors='surrogateescape') as f:
    return tuple(line.rstrip('\n') for line in f)
