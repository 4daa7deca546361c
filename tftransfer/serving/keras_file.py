"""The run's classifier as one .keras file that Keras alone reloads, in safe mode.

    images float32 [B, S, S, 3], 0-255 (any numeric dtype is cast)
      -> preprocess   a frozen Dense(3): the backbone's preprocess_input as a per-pixel affine
                      map (model/backbones.py, preprocess_affine), absent when the backbone
                      rescales its input itself
      -> the backbone, pooling and head, sharing the run's restored weights
      -> probabilities float32 [B, num_classes] (softmax; a multi-label run's: sigmoid)

The training model's BackbonePreprocess is tftransfer's own registered layer, which
`keras.models.load_model` could only rebuild with tftransfer imported; built-in layers keep
the file loadable anywhere Keras 3 is. Class names are in the labels.txt written beside it.
"""

import keras
import numpy as np

from tftransfer.model import backbones
from tftransfer import restore

FILE = 'model.keras'


def portable_classifier(trained: restore.TrainedModel) -> keras.Model:
  """The restored classifier rebuilt from built-in Keras layers, probabilities out.

  Raises:
    ValueError: the model is not the images -> preprocess -> backbone -> pool -> head chain
      that model/transfer.py builds.
  """
  model = trained.model
  names = [layer.name for layer in model.layers]
  if names[1] != 'preprocess' or names[3:] != ['pool', 'head']:
    raise ValueError(f'Unexpected layers {names}: not a model of model/transfer.py.')
  backbone, pool, head = model.layers[2:]
  images = keras.Input((trained.image_size, trained.image_size, 3), name='images')
  inputs = images
  layer = model.get_layer('preprocess')
  affine = backbones.preprocess_affine(layer.mode, layer.scale, layer.offset)
  if affine is not None:
    matrix, bias = affine
    preprocess = keras.layers.Dense(3, name='preprocess', trainable=False, dtype='float32')
    inputs = preprocess(images)
    preprocess.set_weights([matrix, bias])
  logits = head(pool(backbone(inputs)))
  probabilities = (keras.layers.Activation('sigmoid', name='probabilities', dtype='float32')
                   if trained.multi_label else
                   keras.layers.Softmax(name='probabilities', dtype='float32'))(logits)
  return keras.Model(images, probabilities, name=model.name)


# How far the portable classifier may answer from the run's model, in probability: its
# preprocessing is a float32 matrix product where the run's layer computes x / 127.5 - 1 (or
# the caffe / torch means), so the two differ in the last bits of the preprocessed pixels
# (float32 ulps, about 1e-7 of values in [-1, 1]), which the backbone amplifies: up to 9e-6
# measured on tiny calibrated MobileNet-0.25 runs with logits of -4 to 2, and more for larger
# logits. A wrong map (channel order, mean, scale) moves probabilities by 1e-2 and more.
ARITHMETIC_TOLERANCE = 1e-3
# The reloaded file against the classifier it was saved from: the same arithmetic.
RELOAD_TOLERANCE = 1e-6


def check_agrees(classifier: keras.Model, trained: restore.TrainedModel, images: np.ndarray,
                 *, tolerance: float, what: str) -> None:
  """Raises RuntimeError when `classifier`'s probabilities on `images` differ from the run's
  model's by more than `tolerance`."""
  logits = trained.model(images, training=False)
  expected = keras.ops.sigmoid(logits) if trained.multi_label else keras.ops.softmax(logits)
  difference = float(np.max(np.abs(np.asarray(classifier(images, training=False))
                                   - np.asarray(expected))))
  if difference > tolerance:
    raise RuntimeError(f'{what} does not answer as the run\'s model: probabilities differ by '
                       f'{difference:.2g}, more than {tolerance:g}.')


def write(trained: restore.TrainedModel, path: str) -> keras.Model:
  """Saves `portable_classifier(trained)` to `path` (a .keras file) and reloads it in safe
  mode, as a user would.

  Returns:
    The reloaded model.

  Raises:
    RuntimeError: the portable classifier answers differently from the run's model (beyond
      float32 rounding, ARITHMETIC_TOLERANCE), or the reloaded file from the classifier saved.
  """
  classifier = portable_classifier(trained)
  probe = np.random.default_rng(0).uniform(
      0, 255, (2, trained.image_size, trained.image_size, 3)).astype(np.float32)
  check_agrees(classifier, trained, probe, tolerance=ARITHMETIC_TOLERANCE,
               what='The portable classifier')
  classifier.save(path)
  reloaded = keras.models.load_model(path, safe_mode=True, compile=False)
  difference = float(np.max(np.abs(np.asarray(reloaded(probe, training=False))
                                   - np.asarray(classifier(probe, training=False)))))
  if difference > RELOAD_TOLERANCE:
    raise RuntimeError(f'The model reloaded from {path} does not answer as the model saved: '
                       f'probabilities differ by {difference:.2g}.')
  return reloaded
