"""A config checked before any heavy work, and the runtime it runs on.

`resolve(config)` validates the config, makes its local paths absolute (config.json must
not depend on the working directory), fails early on a missing weights file or data folder,
and creates the tf.distribute strategy with its precision and XLA (runtime.py). What every
'auto' field becomes is the run's plan (planning.py), made once the data is loaded.
"""

import dataclasses
import os

import ml_collections
import tensorflow as tf

from tftransfer import config as config_lib, errors, runtime
from tftransfer.data import folders
from tftransfer.model import backbones


@dataclasses.dataclass(frozen=True)
class RunSetup:
  """A run's configuration as given (validated, paths absolute) and its runtime."""
  config: ml_collections.ConfigDict  # what the workdir's config.json holds
  runtime: runtime.Runtime  # strategy, precision, XLA, this worker's place in the cluster


def _absolute(path: str) -> str:
  return path if '://' in path else os.path.abspath(path)


def resolve(config: ml_collections.ConfigDict) -> RunSetup:
  """Validates `config`, checks the paths it names and creates the strategy.

  Creates the tf.distribute strategy, so call it before other TensorFlow work.

  Raises:
    errors.InvalidValueError: a bad field value (named with its allowed values), an unknown
      backbone or one too small for an explicit input size, or a batch that does not divide
      over the replicas.
    errors.NotFoundError: model.weights names a file, or data.path a directory, that does not
      exist.
  """
  config_lib.validate(config)
  resolved = config_lib.copy_config(config)
  model, train = resolved.model, resolved.train
  if model.preset:  # before it is read: the run's saved config names it wherever it runs
    model.preset = _absolute(model.preset)
  spec = backbones.get_spec(model.backbone, model.preset)
  if model.image_size != config_lib.AUTO:
    backbones.resolve_image_size(model.backbone, model.image_size, model.preset)
  backbones.check_weights(model.weights)
  if model.weights not in ('imagenet', 'none'):
    model.weights = _absolute(model.weights)
  if config.data.source == 'csv':
    resolved.data.path = _absolute(config.data.path)
    if tf.io.gfile.isdir(resolved.data.path) or not tf.io.gfile.exists(resolved.data.path):
      raise errors.NotFoundError(
          f'config.data.path={config.data.path!r} is not a file. Point it at a manifest: a '
          '.csv, .tsv or .jsonl file listing each image and its labels, e.g. '
          '--config.data.path=/data/labels.csv.')
  if config.data.source in ('folder', 'tfrecord'):
    resolved.data.path = _absolute(config.data.path)
    if resolved.data.val_path:
      resolved.data.val_path = _absolute(config.data.val_path)
    if not tf.io.gfile.isdir(resolved.data.path):
      if config.data.source == 'folder':
        raise folders.not_a_folder(config.data.path)
      raise errors.NotFoundError(
          f'config.data.path={config.data.path!r} is not a directory. Point it at the '
          'directory make_tfrecords wrote (python -m tftransfer.make_tfrecords '
          '--input=FOLDER --output=DIR).')
  rt = runtime.setup(strategy=config.distribute.strategy,
                     tpu_address=config.distribute.tpu_address,
                     mixed_precision=train.mixed_precision, jit_compile=train.jit_compile,
                     depthwise_backbone=spec.depthwise)
  replicas = rt.strategy.num_replicas_in_sync
  if train.batch_size % replicas:
    raise errors.InvalidValueError(
        f'config.train.batch_size={train.batch_size} is the global batch and must divide '
        f'evenly over the {replicas} replicas of strategy {rt.strategy_name!r}; use a '
        f'multiple of {replicas}.')
  return RunSetup(config=resolved, runtime=rt)
