"""keras-hub presets as backbones: model.backbone='keras_hub' with model.preset.

A preset is a directory as `keras_hub.models.Backbone.save_to_preset` (and
`keras_hub.layers.ImageConverter.save_to_preset`) write it, or a handle ('kaggle://...',
'hf://...') that keras-hub downloads once into its cache. tftransfer uses its backbone without
a head, and its image converter's `scale` and `offset` (the normalisation its weights were
trained with) inside the model, as model/backbones.py's BackbonePreprocess; the converter's
resizing is the input pipeline's, to model.image_size (0 = the converter's own size).

keras-hub is imported here only, and only when a config names 'keras_hub': tftransfer works
without it installed.
"""

import dataclasses
import functools
import os

from absl import logging
import keras
import numpy as np
import tensorflow as tf

from tftransfer import errors

NAME = 'keras_hub'
# Backbone classes built from depthwise convolutions (slower in bfloat16 on CPUs, runtime.py).
_DEPTHWISE = ('MobileNet', 'EfficientNet', 'ConvNeXt', 'Xception')
# The input side when a preset's converter names none.
DEFAULT_SIZE = 224


class PresetUnavailableError(errors.UnavailableError):
  """A preset handle could not be fetched (offline), or keras-hub is not installed."""


@dataclasses.dataclass(frozen=True)
class PresetFacts:
  """What tftransfer reads of a preset before building it."""
  class_name: str          # the backbone's class, e.g. 'ResNetBackbone'
  image_size: int          # the converter's square side in pixels (DEFAULT_SIZE when absent)
  scale: tuple[float, float, float]   # per channel: pixels (0-255) * scale + offset
  offset: tuple[float, float, float]

  @property
  def depthwise(self) -> bool:
    return any(word in self.class_name for word in _DEPTHWISE)


def import_keras_hub():
  """The keras_hub module.

  Raises:
    PresetUnavailableError: keras-hub is not installed, naming the pip command.
  """
  try:
    import keras_hub  # pylint: disable=g-import-not-at-top  (optional dependency)
  except ImportError as error:
    raise PresetUnavailableError(
        f"config.model.backbone='keras_hub' needs the keras-hub package ({error}): "
        "pip install keras-hub (or pip install 'tftransfer[keras_hub]').") from None
  return keras_hub


def _preset_utils():
  """keras-hub's preset file access (fetches one file of a handle, or reads a directory's):
  not in its public API, which only loads whole objects."""
  import_keras_hub()
  from keras_hub.src.utils import preset_utils  # pylint: disable=g-import-not-at-top
  return preset_utils


def is_handle(preset: str) -> bool:
  """Whether `preset` is a handle keras-hub downloads ('kaggle://...', 'hf://...')."""
  return '://' in preset and not preset.startswith(('gs://', 'file://'))


def check_preset(preset: str) -> None:
  """Fails early when `preset` cannot be read: a directory without a preset's config.json,
  or a handle that cannot be fetched (offline and not in keras-hub's cache).

  Raises:
    errors.NotFoundError: a local path that is not a preset directory.
    PresetUnavailableError: keras-hub is missing, or the handle cannot be downloaded.
  """
  import_keras_hub()
  if not is_handle(preset):
    if not tf.io.gfile.exists(os.path.join(preset, 'config.json')):
      raise errors.NotFoundError(
          f'config.model.preset={preset!r} is not a keras-hub preset directory (no '
          'config.json in it). Point it at a directory written by save_to_preset, e.g. '
          '--config.model.preset=/models/efficientnet_b0_ra_imagenet, or at a handle such as '
          "'kaggle://keras/efficientnet/keras/efficientnet_b0_ra_imagenet'.")
    return
  try:
    _preset_utils().get_file(preset, 'config.json')
  except Exception as error:  # kagglehub and huggingface_hub raise their own kinds.
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    raise PresetUnavailableError(
        f'Could not fetch the keras-hub preset config.model.preset={preset!r} ({reason}). '
        'Download it on a machine with network and point at the directory: python -c '
        f'"import keras_hub; p = {preset!r}; '
        "keras_hub.models.Backbone.from_preset(p).save_to_preset('DIR'); "
        "keras_hub.layers.ImageConverter.from_preset(p).save_to_preset('DIR')\", then copy "
        'DIR here and pass --config.model.preset=DIR.') from None


def _three(value, default: float) -> tuple[float, float, float]:
  """A converter's scale or offset (None, a number or one per channel) as 3 floats."""
  if value is None:
    return (default,) * 3
  values = np.broadcast_to(np.asarray(value, np.float64).reshape(-1), (3,))
  return tuple(float(v) for v in values)


@functools.lru_cache(maxsize=16)
def preset_facts(preset: str) -> PresetFacts:
  """The backbone class, input size and normalisation of `preset` (read once a process).

  Raises:
    errors.NotFoundError, PresetUnavailableError: see `check_preset`.
    errors.InvalidValueError: the preset holds no backbone config.
  """
  check_preset(preset)
  keras_hub = import_keras_hub()
  preset_utils = _preset_utils()
  config = preset_utils.load_json(preset)
  class_name = config.get('class_name', '') if isinstance(config, dict) else ''
  if not class_name.endswith('Backbone'):
    raise errors.InvalidValueError(
        f'config.model.preset={preset!r} holds a {class_name or "config"} that is not a '
        'keras-hub Backbone; save the backbone itself (backbone.save_to_preset(DIR)).')
  if not preset_utils.check_file_exists(preset, preset_utils.IMAGE_CONVERTER_CONFIG_FILE):
    logging.warning('The keras-hub preset %s has no image converter: its backbone gets the '
                    '0-255 pixels as they are, at %d px unless model.image_size says.',
                    preset, DEFAULT_SIZE)
    return PresetFacts(class_name, DEFAULT_SIZE, (1.0,) * 3, (0.0,) * 3)
  converter = keras_hub.layers.ImageConverter.from_preset(preset)
  size = converter.image_size
  return PresetFacts(class_name, int(size[0]) if size else DEFAULT_SIZE,
                     _three(converter.scale, 1.0), _three(converter.offset, 0.0))


def build_backbone(preset: str, *, image_size: int, weights: str) -> keras.Model:
  """Builds the preset's backbone under the current Keras precision policy.

  Args:
    preset: a preset directory or handle (model.preset).
    image_size: square input side in pixels.
    weights: 'imagenet' (the preset's own weights), 'none' (random) or a path to a Keras
      weights file of this backbone (as tftransfer saves backbone.weights.h5).

  Returns:
    The keras-hub Backbone, a functional model mapping normalised float images
    [B, S, S, 3] to its last feature map [B, h, w, C].

  Raises:
    errors.InvalidValueError: the backbone gives no spatial feature map (a ViT's tokens), or
      the weights file does not fit it.
  """
  preset_facts(preset)  # checks the preset first
  keras_hub = import_keras_hub()
  backbone = keras_hub.models.Backbone.from_preset(
      preset, load_weights=weights == 'imagenet', dtype=keras.config.dtype_policy().name)
  probe = keras.KerasTensor((None, image_size, image_size, 3))
  shape = backbone.compute_output_spec(probe).shape
  if len(shape) != 4:
    raise errors.InvalidValueError(
        f'The backbone of config.model.preset={preset!r} ({type(backbone).__name__}) gives '
        f'features of shape {tuple(shape)}, not a feature map [batch, height, width, '
        'channels]; use a convolutional image backbone preset (ResNet, EfficientNet, '
        'MobileNet, CSPNet, ...).')
  if weights not in ('imagenet', 'none'):
    try:
      backbone.load_weights(weights)
    except Exception as error:  # pylint: disable=broad-except  (h5py and Keras kinds)
      raise errors.InvalidValueError(
          f'The weights file {weights!r} does not fit the backbone of config.model.preset='
          f'{preset!r}: {error}') from None
  return backbone
