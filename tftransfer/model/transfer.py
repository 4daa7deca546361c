"""The transfer model: backbone preprocessing, a keras.applications backbone (or a keras-hub
preset's, model/hub.py), a new head.

    images (0-255, any dtype) -> BackbonePreprocess -> backbone -> pooling -> features
    features -> Dropout -> Dense(num_classes, float32) -> logits

The head is its own small model so the head phase can train on features computed once;
it shares its layers with the full model, so both always hold the same weights.
"""

import dataclasses

import keras

from tftransfer.model import backbones


@dataclasses.dataclass(frozen=True)
class TransferModel:
  """The full classifier and the parts that training treats separately."""
  model: keras.Model      # images -> float32 logits
  backbone: keras.Model   # preprocessed images -> feature map
  features: keras.Model   # images -> pooled float32 features
  head: keras.Model       # pooled features -> float32 logits


def build_model(*, backbone: str, num_classes: int, image_size: int, width: float = 1.0,
                weights: str = 'imagenet', dropout: float = 0.2, pooling: str = 'avg',
                head_init: str = 'glorot_uniform', head_init_stddev: float = 0.02,
                preset: str = '') -> TransferModel:
  """Builds the classifier under the current Keras precision policy and tf.distribute scope.

  Args:
    backbone: registry name, e.g. 'resnet50' (see `backbones.REGISTRY`), or 'keras_hub'.
    num_classes: size of the new head.
    image_size: square input side in pixels (already resolved).
    width: MobileNet width multiplier.
    weights: 'imagenet', 'none' or a path to a Keras weights file for the backbone.
    dropout: dropout rate before the dense layer.
    pooling: 'avg' or 'max' pooling of the feature map.
    head_init: the dense head kernel's initialiser, 'glorot_uniform' or 'normal' (normal
      with `head_init_stddev`); its bias starts at zero either way.
    head_init_stddev: standard deviation of head_init='normal'.
    preset: backbone 'keras_hub' only: the keras-hub preset (directory or handle); its
      converter's scale and offset become the preprocess layer.
  """
  spec = backbones.get_spec(backbone, preset)
  base = backbones.build_backbone(backbone, image_size=image_size, width=width,
                                  weights=weights, preset=preset)
  images = keras.Input((image_size, image_size, 3), name='images')
  x = backbones.BackbonePreprocess(spec.preprocessing, scale=spec.scale, offset=spec.offset,
                                   name='preprocess')(images)
  x = base(x)
  # Pooled features are float32 so the cached features of the head phase keep full precision.
  pool = {'avg': keras.layers.GlobalAveragePooling2D,
          'max': keras.layers.GlobalMaxPooling2D}[pooling]
  features = pool(name='pool', dtype='float32')(x)
  head = keras.Sequential([
      keras.Input((features.shape[-1],), name='features'),
      keras.layers.Dropout(dropout, name='dropout', dtype='float32'),
      # float32 logits under any mixed-precision policy: softmax and the loss need them.
      keras.layers.Dense(num_classes, name='logits', dtype='float32', bias_initializer='zeros',
                         kernel_initializer=(keras.initializers.RandomNormal(
                             stddev=head_init_stddev) if head_init == 'normal'
                                             else head_init)),
  ], name='head')
  logits = head(features)
  return TransferModel(
      model=keras.Model(images, logits, name=f'tftransfer_{backbone}'),
      backbone=base,
      features=keras.Model(images, features, name='features'),
      head=head)


def classifier_parts(model: keras.Model) -> tuple[keras.layers.Layer, keras.Model,
                                                  keras.layers.Layer, keras.Model]:
  """(preprocess, backbone, pool, head): the stages of a `build_model` classifier, so a caller
  can stop at the backbone's feature map and go on from it (Grad-CAM does).

  Raises:
    ValueError: `model` was not built by `build_model`.
  """
  try:
    preprocess, pool, head = (model.get_layer(name) for name in ('preprocess', 'pool', 'head'))
  except ValueError:
    raise ValueError(f'{model.name} is not a tftransfer classifier (no preprocess, pool and '
                     'head layers).') from None
  backbone = [layer for layer in model.layers
              if isinstance(layer, keras.Model) and layer is not head]
  if len(backbone) != 1:
    raise ValueError(f'{model.name} has {len(backbone)} backbone models, not one.')
  return preprocess, backbone[0], pool, head


def _all_layers(layer: keras.layers.Layer):
  yield layer
  for child in getattr(layer, 'layers', ()):
    yield from _all_layers(child)


def set_trainable(model: TransferModel, *, train_backbone: bool, unfreeze: int | None = None,
                  freeze_batchnorm: bool = True) -> None:
  """Sets which weights train: always the head; the backbone only if `train_backbone`.

  A frozen backbone also runs in inference mode. With `train_backbone`, only the backbone's
  top `unfreeze` layers train (None = all). With `freeze_batchnorm`, BatchNormalization
  layers stay frozen, which in Keras 3 also keeps them in inference mode: their moving
  statistics do not drift to the new data's small batches, the classic way fine-tuning
  destroys a pretrained network.
  """
  model.head.trainable = True
  model.backbone.trainable = train_backbone
  if not train_backbone:
    return
  if unfreeze is not None:
    for layer in model.backbone.layers[:-unfreeze]:
      layer.trainable = False
  if freeze_batchnorm:
    for layer in _all_layers(model.backbone):
      if isinstance(layer, keras.layers.BatchNormalization):
        layer.trainable = False
