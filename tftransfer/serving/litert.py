"""LiteRT (TFLite) conversion: a run's classifier as one .tflite file for phones and
microcontrollers, float or quantized, with its integer-only promise checked.

    quantize   weights   activations   input                  output
    none       float32   float32       uint8 [1, S, S, 3]     float32 probabilities [1, C]
    float16    float16   float32       uint8 [1, S, S, 3]     float32 probabilities [1, C]
    dynamic    int8      float32 (int8 inside matmuls, ranges computed per call)
                                       uint8 [1, S, S, 3]     float32 probabilities [1, C]
    int8       int8      int8          uint8 [1, S, S, 3]     uint8 probabilities [1, C]
                                       (scale 1, zero point 0: raw pixels)
                                                              (probability = value / 256)

The input is the image's pixels at the model's input size, as an app has them after decoding
and resizing; the backbone's preprocessing is inside the model. The one signature,
`serving_default`, names its input `images` and its output `probabilities`.

`int8` is full-integer post-training quantization (TensorFlow's converter,
https://ai.google.dev/edge/litert/models/post_training_integer_quant): activation ranges are
calibrated on a representative set of the run's training images in the evaluation view, and
every tensor of the result must be integer. The converter can silently keep float ops in such
a model (tensorflow/tensorflow#57619), so `check_integer_only` inspects the converted graph
with the LiteRT interpreter and refuses it otherwise.
"""

import tempfile
from typing import Iterator
import warnings

from absl import logging
import keras
import numpy as np
import tensorflow as tf

from tftransfer import errors
from tftransfer.data import dataset, pipeline
from tftransfer import restore

QUANTIZATIONS = ('none', 'float16', 'dynamic', 'int8')
# Largest top-1 accuracy loss from the SavedModel, in points, that an export accepts unless
# --max_accuracy_drop says otherwise: float formats lose almost nothing, int8 typically
# about a point on ImageNet-like models (LiteRT's post-training quantization guide).
DEFAULT_MAX_ACCURACY_DROP = {'none': 1.0, 'float16': 1.0, 'dynamic': 1.0, 'int8': 2.0}
SIGNATURE = 'serving_default'
INPUT = 'images'
OUTPUT = 'probabilities'


def file_name(quantize: str) -> str:
  """The .tflite file of one quantization in an export: model.tflite, model_int8.tflite, ..."""
  return 'model.tflite' if quantize == 'none' else f'model_{quantize}.tflite'


def check_quantizations(quantizations) -> None:
  """Raises errors.InvalidValueError for an unknown or repeated --quantize value."""
  unknown = [value for value in quantizations if value not in QUANTIZATIONS]
  if unknown or not quantizations or len(set(quantizations)) != len(quantizations):
    raise errors.InvalidValueError(
        f'--quantize={",".join(quantizations)} is not valid: give one or more of '
        f'{", ".join(QUANTIZATIONS)}, each once (e.g. --quantize=float16,int8).')


def calibration_images(split: dataset.Split, *, image_size: int, num_images: int
                       ) -> tuple[list[np.ndarray], list[int]]:
  """The representative dataset of int8 calibration: training images in the evaluation view.

  Stratified: each class contributes in proportion to its share of the split (at least one
  image), its first images in the split's order, which is a permutation seeded by
  config.seed for image folders (and the shuffled order of TFRecords and TFDS data).
  Multi-label splits give their first `num_images` images.

  Args:
    split: the run's training split.
    image_size: the model's input side.
    num_images: how many to draw in all (fewer if the split is smaller).

  Returns:
    (images, per_class): float32 [1, S, S, 3] arrays in 0-255, and how many of each class
    (multi-label: how many images carry each label).
  """
  counts = np.asarray(split.class_counts)
  wanted = np.minimum(counts, np.maximum(1, np.round(num_images * counts / counts.sum())))
  taken = np.zeros_like(wanted)
  images = []
  batches = pipeline.eval_batches(split, image_size=image_size, batch_size=1, cache=False)
  if len(batches.element_spec[1].shape) == 2:
    # Several labels an image: no stratum per image; the first images in the split's order,
    # and how many of them carry each label.
    for image, labels in batches.take(num_images).as_numpy_iterator():
      images.append(image)
      taken += (labels[0] > 0.5).astype(taken.dtype)
    return images, [int(count) for count in taken]
  for image, label in batches.as_numpy_iterator():
    label = int(label[0])
    if taken[label] < wanted[label]:
      images.append(image)
      taken[label] += 1
      if (taken == wanted).all():
        break
  return images, [int(count) for count in taken]


def _anchored(images: list[np.ndarray]) -> Iterator[dict[str, np.ndarray]]:
  """The calibration images, the first with one black and one white pixel.

  The input's quantization comes from the smallest and largest calibration value; pinning
  them to 0 and 255 makes its scale 1 and zero point 0, so an app sends raw pixels whatever
  the data's darkest and brightest pixels are. Two pixels of one image barely move the
  ranges calibrated for the layers after it.
  """
  for index, image in enumerate(images):
    if index == 0:
      image = image.copy()
      image[0, 0, 0] = 0.0
      image[0, 0, 1] = 255.0
    yield {INPUT: image}


def _saved_model_for_conversion(model: keras.Model, path: str, *, image_size: int,
                                input_dtype: tf.DType, multi_label: bool = False) -> None:
  """Writes the SavedModel the converter reads: one image of `input_dtype` pixels in,
  softmax probabilities out (multi-label: each label's sigmoid) (the Keras 3 route to
  LiteRT: ExportArchive, then TFLiteConverter.from_saved_model, as
  keras.Model.export(format='litert') does)."""
  def classify(images):
    logits = model(tf.cast(images, tf.float32), training=False)
    return {OUTPUT: tf.sigmoid(logits) if multi_label else tf.nn.softmax(logits)}

  archive = keras.export.ExportArchive()
  archive.track(model)
  archive.add_endpoint(SIGNATURE, classify, input_signature=[
      tf.TensorSpec([1, image_size, image_size, 3], input_dtype, name=INPUT)])
  archive.write_out(path, verbose=False)


def convert(trained: restore.TrainedModel, quantize: str,
            calibration: list[np.ndarray] | None = None) -> bytes:
  """Converts a run's classifier to a .tflite flatbuffer (contract: the module docstring).

  Args:
    trained: the restored run.
    quantize: one of QUANTIZATIONS.
    calibration: for 'int8', the representative images (see `calibration_images`).

  Returns:
    The .tflite file's bytes; for 'int8' already checked by `check_integer_only`.

  Raises:
    RuntimeError: an 'int8' model that is not integer-only or does not take raw pixels.
  """
  if quantize not in QUANTIZATIONS:
    raise ValueError(f'Unknown quantize={quantize!r}; valid: {QUANTIZATIONS}.')
  full_integer = quantize == 'int8'
  with tempfile.TemporaryDirectory() as scratch:
    # Float models take uint8 and cast; the int8 model takes the float pixels that the
    # converter turns into a quantized uint8 input. (A cast from uint8 inside an int8 model
    # would leave a float tensor after it: the #57619 failure.)
    _saved_model_for_conversion(trained.model, scratch, image_size=trained.image_size,
                                input_dtype=tf.float32 if full_integer else tf.uint8,
                                multi_label=trained.multi_label)
    converter = tf.lite.TFLiteConverter.from_saved_model(scratch, signature_keys=[SIGNATURE])
    if quantize != 'none':
      converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == 'float16':
      converter.target_spec.supported_types = [tf.float16]
    if full_integer:
      if not calibration:
        raise ValueError("quantize='int8' needs calibration images.")
      converter.representative_dataset = lambda: _anchored(calibration)
      converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
      converter.inference_input_type = tf.uint8
      converter.inference_output_type = tf.uint8
    with warnings.catch_warnings():
      # TensorFlow's own calibrator runs the tf.lite.Interpreter it deprecates in favour of
      # ai-edge-litert, and says so on every int8 conversion; that is not ours to act on.
      warnings.filterwarnings('ignore', message=r'(?s).*tf\.lite\.Interpreter is deprecated')
      warnings.filterwarnings('ignore', message='Statistics for quantized inputs were expected')
      flatbuffer = converter.convert()
  if full_integer:
    check_integer_only(flatbuffer)
  logging.info('Converted to LiteRT (quantize=%s): %d bytes.', quantize, len(flatbuffer))
  return flatbuffer


def _interpreter(flatbuffer: bytes):
  # Without the default XNNPACK delegate, which would replace the graph's ops by one
  # DELEGATE op and hide them from inspection.
  from ai_edge_litert import interpreter as litert  # pylint: disable=g-import-not-at-top
  interpreter = litert.Interpreter(
      model_content=flatbuffer,
      experimental_op_resolver_type=litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
  interpreter.allocate_tensors()
  return interpreter


def graph_summary(flatbuffer: bytes) -> dict:
  """What the LiteRT interpreter reads in a .tflite: its op types, and its tensors by dtype.

  Returns:
    {'ops': sorted op names, 'tensor_dtypes': {dtype name: count},
     'float_tensors': names of float tensors, 'input': {...}, 'output': {...}}, where input
    and output give the signature tensor's dtype, shape and (scale, zero_point).
  """
  interpreter = _interpreter(flatbuffer)
  dtypes, float_tensors = {}, []
  for tensor in interpreter.get_tensor_details():
    dtype = np.dtype(tensor['dtype'])
    dtypes[dtype.name] = dtypes.get(dtype.name, 0) + 1
    if np.issubdtype(dtype, np.floating):
      float_tensors.append(tensor['name'])
  runner = interpreter.get_signature_runner(SIGNATURE)

  def describe(details):
    scale, zero_point = details['quantization']
    return {'dtype': np.dtype(details['dtype']).name, 'shape': details['shape'].tolist(),
            'scale': float(scale), 'zero_point': int(zero_point)}

  return {'ops': sorted({op['op_name'] for op in interpreter._get_ops_details()}),  # pylint: disable=protected-access
          'tensor_dtypes': dtypes, 'float_tensors': float_tensors,
          'input': describe(runner.get_input_details()[INPUT]),
          'output': describe(runner.get_output_details()[OUTPUT])}


def check_integer_only(flatbuffer: bytes) -> dict:
  """Refuses a full-integer model that kept float tensors or does not take raw pixels.

  Returns:
    Its `graph_summary`.

  Raises:
    RuntimeError: a float tensor is left in the graph (tensorflow/tensorflow#57619), or the
      input is not uint8 with scale 1 and zero point 0, or the output not uint8.
  """
  summary = graph_summary(flatbuffer)
  if summary['float_tensors']:
    raise RuntimeError(
        f'The int8 model kept {len(summary["float_tensors"])} float tensors '
        f'({", ".join(summary["float_tensors"][:5])}; ops {", ".join(summary["ops"])}): the '
        'converter fell back to float for part of the graph (tensorflow/tensorflow#57619), '
        'so it is not the full-integer model that was asked for. Not exported.')
  expected = {'dtype': 'uint8', 'scale': 1.0, 'zero_point': 0}
  if {key: summary['input'][key] for key in expected} != expected:
    raise RuntimeError(f'The int8 model\'s input is {summary["input"]}, not raw uint8 pixels '
                       '(scale 1, zero point 0). Not exported.')
  if summary['output']['dtype'] != 'uint8':
    raise RuntimeError(f'The int8 model\'s output is {summary["output"]}, not uint8.')
  return summary

