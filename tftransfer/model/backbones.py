"""Backbone registry: which keras.applications model a name means, and how to feed it.

Each entry records the constructor, the `preprocess_input` convention the ImageNet weights
were trained with (applied inside the model by `BackbonePreprocess`, below), the native and
minimum input sizes, and whether the network is built from depthwise convolutions (these run
slower in bfloat16 on CPUs, see `runtime.py`).
"""

import dataclasses
import re
from typing import Callable
import warnings

import keras
import numpy as np
import tensorflow as tf

from tftransfer import errors
from tftransfer.model import hub


@dataclasses.dataclass(frozen=True)
class BackboneSpec:
  """How to build and feed one keras.applications backbone."""
  constructor: Callable[..., keras.Model] | None  # None: a keras-hub preset (model/hub.py)
  # keras.applications.imagenet_utils.preprocess_input mode ('caffe' | 'tf' | 'torch'),
  # 'none' when the application rescales 0-255 inputs itself, or 'affine' (a keras-hub
  # preset's converter: pixels * scale + offset).
  preprocessing: str
  default_size: int
  min_size: int = 32
  has_width: bool = False
  depthwise: bool = False
  scale: tuple[float, float, float] | None = None  # 'affine' only, per channel
  offset: tuple[float, float, float] | None = None


def _spec(name: str, preprocessing: str, default_size: int, **kwargs) -> BackboneSpec:
  return BackboneSpec(getattr(keras.applications, name), preprocessing, default_size, **kwargs)


_EFFICIENTNET_SIZES = (224, 240, 260, 300, 380, 456, 528, 600)
_EFFICIENTNETV2_SIZES = {'b0': 224, 'b1': 240, 'b2': 260, 'b3': 300, 's': 384, 'm': 480,
                         'l': 480}

REGISTRY: dict[str, BackboneSpec] = {
    'vgg16': _spec('VGG16', 'caffe', 224),
    'vgg19': _spec('VGG19', 'caffe', 224),
    'resnet50': _spec('ResNet50', 'caffe', 224),
    'resnet101': _spec('ResNet101', 'caffe', 224),
    'resnet152': _spec('ResNet152', 'caffe', 224),
    'resnet50_v2': _spec('ResNet50V2', 'tf', 224),
    'resnet101_v2': _spec('ResNet101V2', 'tf', 224),
    'resnet152_v2': _spec('ResNet152V2', 'tf', 224),
    'inception_v3': _spec('InceptionV3', 'tf', 299, min_size=75),
    'inception_resnet_v2': _spec('InceptionResNetV2', 'tf', 299, min_size=75),
    'xception': _spec('Xception', 'tf', 299, min_size=71, depthwise=True),
    'mobilenet': _spec('MobileNet', 'tf', 224, has_width=True, depthwise=True),
    'mobilenet_v2': _spec('MobileNetV2', 'tf', 224, has_width=True, depthwise=True),
    'mobilenet_v3_small': _spec('MobileNetV3Small', 'none', 224, has_width=True,
                                depthwise=True),
    'mobilenet_v3_large': _spec('MobileNetV3Large', 'none', 224, has_width=True,
                                depthwise=True),
    'densenet121': _spec('DenseNet121', 'torch', 224),
    'densenet169': _spec('DenseNet169', 'torch', 224),
    'densenet201': _spec('DenseNet201', 'torch', 224),
    **{f'efficientnet_b{i}': _spec(f'EfficientNetB{i}', 'none', size, depthwise=True)
       for i, size in enumerate(_EFFICIENTNET_SIZES)},
    **{f'efficientnetv2_{v}': _spec(f'EfficientNetV2{v.upper()}', 'none', size,
                                    depthwise=True)
       for v, size in _EFFICIENTNETV2_SIZES.items()},
    **{f'convnext_{v}': _spec(f'ConvNeXt{v.capitalize()}', 'none', 224, depthwise=True)
       for v in ('tiny', 'small', 'base', 'large')},
    'convnext_xlarge': _spec('ConvNeXtXLarge', 'none', 224, depthwise=True),
}


class WeightsUnavailableError(errors.UnavailableError):
  """Pretrained weights could not be found or downloaded."""


def get_spec(name: str, preset: str = '') -> BackboneSpec:
  """Returns the registry entry for `name` (for 'keras_hub': read from `preset`, see
  model/hub.py), or raises naming the valid choices.

  Raises:
    errors.InvalidValueError: an unknown name.
    errors.NotFoundError, hub.PresetUnavailableError: 'keras_hub' with a preset that cannot
      be read (no such directory, keras-hub not installed, a handle offline).
  """
  if name == hub.NAME:
    facts = hub.preset_facts(preset)
    return BackboneSpec(None, 'affine', facts.image_size, depthwise=facts.depthwise,
                        scale=facts.scale, offset=facts.offset)
  try:
    return REGISTRY[name]
  except KeyError:
    raise errors.InvalidValueError(
        f'Unknown backbone config.model.backbone={name!r}. Valid names: '
        f'{", ".join(sorted(REGISTRY))}, or {hub.NAME!r} with config.model.preset.') from None


def resolve_image_size(name: str, image_size: int, preset: str = '') -> int:
  """Returns the input size to use (0 = native) after checking the backbone's minimum."""
  spec = get_spec(name, preset)
  size = image_size or spec.default_size
  if size < spec.min_size:
    raise errors.InvalidValueError(
        f'config.model.image_size={size} is too small for backbone {name!r}, which needs '
        f'at least {spec.min_size} pixels (native size {spec.default_size}). Set '
        f'--config.model.image_size={spec.min_size} or larger.')
  return size


def check_weights(weights: str) -> None:
  """Fails early when `weights` is a path that does not exist."""
  if weights in ('imagenet', 'none'):
    return
  if not tf.io.gfile.exists(weights) or tf.io.gfile.isdir(weights):
    raise errors.NotFoundError(
        f'config.model.weights={weights!r} is not a file. Use a path to a Keras weights file '
        "for this backbone without its top (.h5 or .weights.h5), 'imagenet' to download "
        "the Keras ImageNet weights, or 'none' for random initialisation.")


def build_backbone(name: str, *, image_size: int, width: float = 1.0,
                   weights: str = 'imagenet', preset: str = '') -> keras.Model:
  """Builds a keras.applications backbone without its top, unpooled (or a keras-hub preset's
  backbone: name 'keras_hub', see model/hub.py).

  Args:
    name: registry name, e.g. 'resnet50', or 'keras_hub'.
    image_size: square input size in pixels (already resolved, see `resolve_image_size`).
    width: width multiplier (alpha) for MobileNets; must be 1.0 otherwise.
    weights: 'imagenet' (for 'keras_hub': the preset's), 'none' or a path to a Keras weights
      file.
    preset: 'keras_hub' only: the preset directory or handle.

  Returns:
    A functional model mapping preprocessed float images to a feature map.

  Raises:
    errors.InvalidValueError: bad name, width or size; or a weights file that does not fit
      the backbone (including one that Keras would load only in part).
    WeightsUnavailableError: ImageNet weights could not be downloaded (offline).
  """
  spec = get_spec(name, preset)
  check_weights(weights)
  if name == hub.NAME:
    if width != 1.0:
      raise errors.InvalidValueError(
          f'config.model.width={width} only applies to MobileNets of keras.applications; '
          f'backbone {name!r} needs width 1.0 (choose the width by the preset).')
    return hub.build_backbone(preset, image_size=image_size, weights=weights)
  kwargs = dict(include_top=False, input_shape=(image_size, image_size, 3),
                weights=None if weights == 'none' else weights)
  if spec.has_width:
    kwargs['alpha'] = width
  elif width != 1.0:
    raise errors.InvalidValueError(
        f'config.model.width={width} only applies to MobileNets; backbone '
        f'{name!r} needs width 1.0.')
  try:
    with warnings.catch_warnings(record=True) as caught:
      warnings.simplefilter('always')
      model = spec.constructor(**kwargs)
  except Exception as error:  # Keras raises a bare Exception for failed downloads.
    raise _weights_error(name, width, weights, error) from None
  skipped = [w for w in caught if 'Skipping' in str(w.message) and 'no matching' in str(w.message)]
  if skipped:  # Keras loaded the file in part and left those layers random: refuse it.
    raise errors.InvalidValueError(
        f'The weights file {weights!r} does not fit backbone {name!r} (width={width}) without '
        f'its top{_width_hint(name, width, weights)}: {len(skipped)} of its layer groups are '
        f'missing from the file (first: {skipped[0].message}).')
  for warning in caught:
    # MobileNets warn that ImageNet weights of 224 px are loaded for another input size;
    # without the top, every weight fits any size, which is how transfer uses them.
    if 'Weights for input shape (224, 224) will be loaded' not in str(warning.message):
      warnings.warn_explicit(warning.message, warning.category, warning.filename,
                             warning.lineno)
  return model


def _weights_error(name: str, width: float, weights: str, error: Exception) -> Exception:
  """The error to raise when building backbone `name` with `weights` failed with `error`."""
  message = str(error)
  if message.startswith('URL fetch failure'):
    url = re.search(r'https?://\S+?(?=:? )', message)
    url = url.group(0) if url else 'the Keras weights URL'
    filename = url.rsplit('/', 1)[-1]
    return WeightsUnavailableError(
        f'Could not download the ImageNet weights of backbone {name!r}: {filename} from '
        f'{url} ({message.split(" -- ")[-1]}). Either fetch that file on a machine '
        f'with network and pass its path, --config.model.weights=/path/to/{filename} '
        f'(or place it in ~/.keras/models/), or train from scratch with '
        '--config.model.weights=none.')
  if weights not in ('imagenet', 'none'):
    return errors.InvalidValueError(
        f'The weights file {weights!r} does not fit backbone {name!r} (width={width}) without '
        f'its top{_width_hint(name, width, weights)}: {message}')
  return error


# The widths (alpha) keras.applications has ImageNet weights for, across the MobileNets.
_WIDTHS = (0.25, 0.35, 0.5, 0.75, 1.0, 1.3, 1.4)


def _weight_shapes(path: str) -> list[tuple[int, ...]]:
  """The shapes of every array in a Keras weights file (.h5 or .weights.h5), sorted."""
  import h5py  # pylint: disable=g-import-not-at-top  (Keras' own dependency)
  shapes = []
  with h5py.File(path, 'r') as f:
    f.visititems(lambda _, item: shapes.append(tuple(item.shape))
                 if isinstance(item, h5py.Dataset) and item.ndim else None)
  return sorted(shapes)


def _width_hint(name: str, width: float, weights: str) -> str:
  """'; the file fits width=0.25: pass --config.model.width=0.25', found by comparing the
  file's array shapes with the backbone's at each width, or '' (not a MobileNet, or no width
  fits)."""
  spec = get_spec(name)
  if not spec.has_width:
    return ''
  try:
    wanted = _weight_shapes(weights)
  except (OSError, ValueError):
    return ''
  for candidate in _WIDTHS:
    if candidate == width:
      continue
    try:
      with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        model = spec.constructor(include_top=False, input_shape=(224, 224, 3), weights=None,
                                 alpha=candidate)
    except ValueError:  # a width this backbone does not come in
      continue
    if sorted(tuple(weight.shape) for weight in model.weights) == wanted:
      return f' (the file fits width={candidate:g}: pass --config.model.width={candidate:g})'
  return ''


@keras.saving.register_keras_serializable(package='tftransfer')
class BackbonePreprocess(keras.layers.Layer):
  """Maps 0-255 images (any dtype) to what the backbone's ImageNet weights expect.

  Runs in float32 under any precision policy: ImageNet mean subtraction in bfloat16 would
  round pixel values. `mode` is a keras.applications.imagenet_utils.preprocess_input mode,
  'none' for applications that rescale their input themselves (EfficientNet, ConvNeXt,
  MobileNetV3), or 'affine': images * scale + offset per channel (a keras-hub preset's image
  converter, model/hub.py).
  """

  def __init__(self, mode: str, scale=None, offset=None, **kwargs):
    kwargs['dtype'] = 'float32'
    super().__init__(**kwargs)
    if mode not in ('caffe', 'tf', 'torch', 'none', 'affine'):
      raise ValueError(f"Unknown preprocessing mode {mode!r}; use 'caffe', 'tf', 'torch', "
                       "'none' or 'affine'.")
    if (mode == 'affine') != (scale is not None and offset is not None):
      raise ValueError("Preprocessing mode 'affine' (and only it) takes scale and offset.")
    self.mode = mode
    self.scale = None if scale is None else [float(v) for v in scale]
    self.offset = None if offset is None else [float(v) for v in offset]

  def call(self, images):
    images = keras.ops.cast(images, 'float32')
    if self.mode == 'none':
      return images
    if self.mode == 'affine':
      return images * np.float32(self.scale) + np.float32(self.offset)
    return keras.applications.imagenet_utils.preprocess_input(images, mode=self.mode)

  def compute_output_shape(self, input_shape):
    return input_shape

  def get_config(self):
    return {**super().get_config(), 'mode': self.mode, 'scale': self.scale,
            'offset': self.offset}


def preprocess_affine(mode: str, scale=None, offset=None
                      ) -> tuple[np.ndarray, np.ndarray] | None:
  """The per-pixel affine map that `BackbonePreprocess(mode)` applies: pixels @ matrix + bias.

  Every preprocess_input mode is affine per pixel (scaling, mean subtraction, and for 'caffe'
  the RGB -> BGR swap), so the map is read off keras.applications' preprocess_input itself,
  in float64, rather than restated here. The portable .keras export applies it with a frozen
  built-in Dense layer, so that file loads with Keras alone.

  Args:
    mode: a BackbonePreprocess mode.
    scale, offset: mode 'affine''s 3 floats each (per channel).

  Returns:
    (matrix float32 [3, 3], bias float32 [3]), or None for 'none' (pixels go in as they are).
  """
  if mode == 'none':
    return None
  if mode == 'affine':
    return np.diag(np.float32(scale)), np.float32(offset)
  # Black, then full red, green and blue: the images of 0 and of 255 times each unit vector.
  pixels = np.array([[[[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]]]], np.float64)
  outputs = keras.applications.imagenet_utils.preprocess_input(pixels, mode=mode)[0, 0]
  bias = outputs[0]
  return ((outputs[1:] - bias) / 255).astype(np.float32), bias.astype(np.float32)
