"""A config made concrete before any heavy work: validated, every 'auto' decided and logged.

`resolve(config)` returns a `RunSetup`: the resolved config dict (as config.json records it,
switches written 'true'/'false') and the typed values the code reads (booleans, the runtime's
strategy and Precision), so nothing downstream compares strings such as 'true'.
"""

import dataclasses
import os

import ml_collections
import tensorflow as tf

from tftransfer import config as config_lib, errors, runtime
from tftransfer.model import backbones


@dataclasses.dataclass(frozen=True)
class RunSetup:
  """A run's resolved configuration and its typed decisions."""
  config: ml_collections.ConfigDict  # resolved; what the workdir's config.json holds
  runtime: runtime.Runtime  # strategy, precision, XLA, this worker's place in the cluster
  freeze_batchnorm: bool  # BatchNormalization frozen (inference mode) while fine-tuning
  head_on_features: bool  # head phase on backbone features computed once
  unfreeze: int | None  # top backbone layers fine-tuning trains; None = all
  # Every 'auto' field and what it became: {field: (value as in config.json, why)}.
  auto_decisions: dict[str, tuple[str, str]]

  def describe_auto(self) -> str:
    """"field -> value (why); ..." for every 'auto' field, for the run's log."""
    return '; '.join(f'{field} -> {value} ({why})'
                     for field, (value, why) in self.auto_decisions.items())


def _absolute(path: str) -> str:
  """Local paths made absolute (config.json must not depend on the working directory)."""
  return path if '://' in path else os.path.abspath(path)


# Long because every runtime 'auto' is decided here, in the order the log line reports them.
def resolve(config: ml_collections.ConfigDict) -> RunSetup:
  """Validates `config`, creates the strategy and resolves every 'auto' field (logged).

  Creates the tf.distribute strategy, so call it before other TensorFlow work.

  Raises:
    errors.InvalidValueError: a bad field value (named with its allowed values), a backbone
      too small for its input size, or a batch that does not divide over the replicas.
    errors.NotFoundError: model.weights names a file, or data.path a directory, that does not
      exist.
  """
  config_lib.validate(config)
  resolved = config_lib.mutable_copy(config)
  model, train = resolved.model, resolved.train
  spec = backbones.get_spec(model.backbone)
  if not config_lib.is_auto(model.image_size):  # else decided once the data is loaded
    model.image_size = backbones.resolve_image_size(model.backbone, model.image_size)
  backbones.check_weights(model.weights)
  if model.weights not in ('imagenet', 'none'):
    model.weights = _absolute(model.weights)
  if config.data.source in ('folder', 'tfrecord'):
    resolved.data.path = _absolute(config.data.path)
    if not tf.io.gfile.isdir(resolved.data.path):
      raise errors.NotFoundError(
          f'config.data.path={config.data.path!r} is not a directory. Point it at '
          + ('a folder holding one sub-folder of images per class, e.g. '
             '--config.data.path=/data/flowers.' if config.data.source == 'folder' else
             'the directory make_tfrecords wrote (python -m tftransfer.make_tfrecords '
             '--input=FOLDER --output=DIR).'))
  rt = runtime.setup(strategy=config.distribute.strategy,
                     tpu_address=config.distribute.tpu_address,
                     mixed_precision=train.mixed_precision,
                     jit_compile=config_lib.parse_switch(train.jit_compile, 'train.jit_compile'),
                     depthwise_backbone=spec.depthwise)
  replicas = rt.strategy.num_replicas_in_sync
  if train.batch_size % replicas:
    raise errors.InvalidValueError(
        f'config.train.batch_size={train.batch_size} is the global batch and must divide '
        f'evenly over the {replicas} replicas of strategy {rt.strategy_name!r}; use a '
        f'multiple of {replicas}.')
  decisions = dict(rt.auto_decisions)
  freeze_batchnorm = config_lib.parse_switch(train.freeze_batchnorm, 'train.freeze_batchnorm')
  if freeze_batchnorm is None:  # Pretrained statistics are worth keeping; random ones are not.
    freeze_batchnorm = model.weights != 'none'
    decisions['train.freeze_batchnorm'] = (config_lib.switch_text(freeze_batchnorm), (
        'pretrained statistics are kept' if freeze_batchnorm else
        'random initial statistics must learn'))
  head_on_features = config_lib.parse_switch(train.head_on_features, 'train.head_on_features')
  if head_on_features is None:
    # Features are computed outside strategy.run: right on CPU and GPU hosts, slow on TPUs.
    head_on_features = rt.strategy_name != 'tpu'
    decisions['train.head_on_features'] = (config_lib.switch_text(head_on_features), (
        'features computed once on the host' if head_on_features else
        'TPUs train the head on images faster than the host computes features'))
  resolved.distribute.strategy = rt.strategy_name
  train.mixed_precision = rt.precision.value
  train.jit_compile = config_lib.switch_text(rt.jit_compile)
  train.freeze_batchnorm = config_lib.switch_text(freeze_batchnorm)
  train.head_on_features = config_lib.switch_text(head_on_features)
  train.unfreeze = str(train.unfreeze)
  return RunSetup(config=resolved, runtime=rt, freeze_batchnorm=freeze_batchnorm,
                  head_on_features=head_on_features,
                  unfreeze=None if train.unfreeze == 'all' else int(train.unfreeze),
                  auto_decisions=decisions)
