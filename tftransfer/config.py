"""Every configuration field tftransfer reads, with its default and meaning.

Configs in `configs/` start from `default_config()`, change what their task needs and return
the dict locked, so a misspelt override (`--config.train.batchsize=8`) fails at start-up
instead of being silently ignored. Fields whose values are 'auto' are resolved at run time
and the resolution is logged and saved in the workdir's `config.json`.

This module is longer than the others on purpose: it is the one place that lists, documents
and checks every field, so a reader never has to look for a field's meaning anywhere else.
"""

import inspect
import re

import ml_collections

from tftransfer import errors

# The allowed values of every field with a fixed vocabulary, owned here and read by
# `validate` and by the modules that implement each choice.
SOURCES = ('tfds', 'folder', 'tfrecord', 'synthetic')
CACHES = ('auto', 'memory', 'none')
BAD_IMAGE_POLICIES = ('skip', 'fail')
POOLINGS = ('avg', 'max')
OPTIMIZERS = ('adamw', 'sgd')
PRECISIONS = ('float32', 'bfloat16', 'float16')  # train.mixed_precision also takes 'auto'
STRATEGIES = ('one_device', 'mirrored', 'multi_worker', 'tpu')  # distribute.strategy: + 'auto'
AUTO = 'auto'


def default_config() -> ml_collections.ConfigDict:
  """Returns the full, unlocked default configuration (every field commented in the section
  functions below)."""
  config = ml_collections.ConfigDict()
  # Seeds the train/validation split, data order, augmentation and head initialisation.
  config.seed = 0
  config.data = _data_section()
  config.model = _model_section()
  config.train = _train_section()
  config.distribute = _distribute_section()
  config.export = _export_section()
  return config


def _data_section() -> ml_collections.ConfigDict:
  """Where examples come from, how they are split, cached and augmented."""
  data = ml_collections.ConfigDict()
  # Where examples come from: 'tfds' | 'folder' | 'tfrecord' | 'synthetic'.
  data.source = 'tfds'
  # TFDS dataset name (source='tfds') or synthetic task name (source='synthetic').
  data.name = 'cifar10'
  # Image folder root, one sub-folder per class (source='folder'), or TFRecord directory.
  data.path = ''
  # TFDS data directory; '' = TFDS default (~/tensorflow_datasets or $TFDS_DATA_DIR).
  data.data_dir = ''
  # Let TFDS download and prepare a dataset that is not prepared locally (needs network).
  data.download = False
  # Split to train on (TFDS split syntax allowed, e.g. 'train[:50%]').
  data.train_split = 'train'
  # Split to validate on: a split name, 'carve' (a stratified `val_fraction` of the train
  # split), or 'auto' = the source's 'validation' split if it has one, else 'carve'.
  # 'auto' never picks 'test': a test split is for judging, not for choosing checkpoints.
  data.eval_split = 'auto'
  # Fraction of each class held out for validation when the split is carved from train.
  data.val_fraction = 0.1
  # Cap on training examples per class after the split (few-label runs, smoke tests); 0 = all.
  data.max_examples_per_class = 0
  # Decoded-image cache: 'memory' | 'none' | 'auto' (memory when the decoded split fits in a
  # quarter of RAM).
  data.cache = 'auto'
  # Shuffle buffer in examples, applied after the cache; 0 = the whole training split.
  data.shuffle_buffer = 0
  # Smallest crop area (fraction of the image) of random-resized-crop; 1.0 = no cropping.
  data.crop_min_area = 0.35
  # Random horizontal flips during training.
  data.flip = True
  # What the folder scan does with undecodable images: 'skip' (leave them out, listed in the
  # workdir's data_report.json) | 'fail' (stop before training, naming them).
  data.on_bad_image = 'skip'
  # The one image-size limit, in frames x height x width pixels, of the folder scan, training
  # and the exported serving signature alike; larger images are refused from their headers
  # before decoding (decompression bombs). 0 = no limit. 120 MP admits every phone and camera
  # photo up to 108 MP (12000 x 9000) and 102 MP medium format (11648 x 8736), so 48-50 MP
  # (8064 x 6048, 8192 x 6144) and 64 MP (9248 x 6936) phones with margin; 200 MP phone modes
  # (16320 x 12240) need it raised. An image at the limit needs about 2.2 GB while it is
  # decoded and shrunk.
  data.max_image_pixels = 120_000_000
  # Warn (log and data_report.json) when the largest training class has more than this many
  # times the examples of the smallest; 0 = never. 10 is a common mark of severe imbalance:
  # accuracy can then look good while the small classes are mostly misclassified.
  data.imbalance_warning_ratio = 10.0
  return data


def _model_section() -> ml_collections.ConfigDict:
  """The backbone, its weights and input size, and the new head."""
  model = ml_collections.ConfigDict()
  # Registry name of the keras.applications backbone; see tftransfer/model/backbones.py.
  model.backbone = 'resnet50'
  # Width multiplier (alpha) for MobileNets; must be 1.0 for other backbones.
  model.width = 1.0
  # 'imagenet' (download from Keras) | 'none' (random init) | path to a Keras weights file
  # (.h5 or .weights.h5) for this backbone without its top.
  model.weights = 'imagenet'
  # Square input resolution in pixels; 0 = the backbone's native resolution.
  model.image_size = 0
  # Dropout rate before the new dense head.
  model.dropout = 0.2
  # Pooling of the backbone's feature map: 'avg' | 'max'.
  model.pooling = 'avg'
  return model


def _train_section() -> ml_collections.ConfigDict:
  """The two phases, their optimizers and schedules, precision, checkpoints."""
  train = ml_collections.ConfigDict()
  # Global batch size: summed over all replicas and workers.
  train.batch_size = 64
  # Epochs of head-only training with the backbone frozen.
  train.head_epochs = 2
  # Epochs of fine-tuning after unfreezing; 0 = head only (a linear probe).
  train.finetune_epochs = 3
  # Stop after this many training steps in total (both phases); 0 = no cap.
  train.max_steps = 0
  # Peak learning rate of the head phase.
  train.head_lr = 1e-3
  # Peak learning rate of the fine-tuning phase (lower, so pretrained features survive).
  train.finetune_lr = 1e-4
  # Linear warm-up at the start of each phase, as a fraction of that phase's steps.
  train.warmup_fraction = 0.1
  # Optimizer: 'adamw' | 'sgd' (Nesterov momentum).
  train.optimizer = 'adamw'
  # Momentum for 'sgd'.
  train.momentum = 0.9
  # Decoupled weight decay; 0 = none. Not applied to biases or normalisation parameters.
  train.weight_decay = 1e-4
  # Label smoothing of the cross-entropy loss; 0 = none.
  train.label_smoothing = 0.1
  # What fine-tuning unfreezes: 'all' or a number of top backbone layers, e.g. '40'.
  train.unfreeze = 'all'
  # Keep BatchNormalization in inference mode with frozen parameters while fine-tuning:
  # 'auto' (= 'true' unless model.weights is 'none') | 'true' | 'false'.
  train.freeze_batchnorm = 'auto'
  # Head phase on backbone features computed once (no augmentation; much faster):
  # 'auto' (= 'true') | 'true' | 'false'.
  train.head_on_features = 'auto'
  # Compute precision: 'auto' | 'float32' | 'bfloat16' | 'float16' (mixed, float32 weights).
  train.mixed_precision = 'auto'
  # XLA compilation of the train step: 'auto' | 'true' | 'false'.
  train.jit_compile = 'auto'
  # Train steps per tf.function call (fewer Python round trips). Progress is logged, and a
  # Ctrl-C or SIGTERM stops with a checkpoint, between calls.
  train.steps_per_loop = 20
  # Log progress every this many steps.
  train.log_every_steps = 100
  # Also checkpoint mid-epoch after this many seconds since the last checkpoint; 0 = only at
  # epoch ends.
  train.checkpoint_every_secs = 120
  # Checkpoints to keep in workdir/checkpoints.
  train.keep_checkpoints = 2
  return train


def _distribute_section() -> ml_collections.ConfigDict:
  """Where training runs: the tf.distribute strategy."""
  distribute = ml_collections.ConfigDict()
  # tf.distribute strategy: 'auto' (one device, or mirrored over all local GPUs) |
  # 'one_device' | 'mirrored' | 'multi_worker' (cluster from TF_CONFIG) | 'tpu'.
  distribute.strategy = 'auto'
  # TPU name or grpc:// address for strategy='tpu'; '' = the local TPU VM.
  distribute.tpu_address = ''
  return distribute


def _export_section() -> ml_collections.ConfigDict:
  """What the exported serving signatures return and accept."""
  export = ml_collections.ConfigDict()
  # Number of best classes the serving signatures return (capped at the number of classes).
  # (The largest image a request may carry is data.max_image_pixels, as in training.)
  export.top_k = 5
  return export

def field_docs() -> dict[str, str]:
  """{'train.batch_size': its comment, ...} for every field, read from the source of
  `default_config` and its section functions, so the comments there are the one documentation
  of the fields (--helpfull shows them)."""
  docs, comment = {}, []
  source = ''.join(inspect.getsource(function) for function in (
      default_config, _data_section, _model_section, _train_section, _distribute_section,
      _export_section))
  for line in source.splitlines():
    line = line.strip()
    assignment = re.match(r'(config|data|model|train|distribute|export)\.(\w+) = (?!data|model|'
                          r'train|distribute|export)', line)
    if line.startswith('#'):
      comment.append(line.lstrip('# '))
    elif assignment and comment:
      section, field = assignment.groups()
      docs[field if section == 'config' else f'{section}.{field}'] = ' '.join(comment)
      comment = []
    else:
      comment = []
  return docs


def describe_fields() -> str:
  """Every field, its default and its comment: the help text of the --config flag."""
  defaults = default_config()
  lines = []
  for name, doc in field_docs().items():
    value = defaults
    for part in name.split('.'):
      value = value[part]
    lines.append(f'  --config.{name}={value!r}\n      {doc}')
  return '\n'.join(lines)


_SWITCHES = {'true': True, '1': True, 'yes': True, 'false': False, '0': False, 'no': False,
             'auto': None}


def parse_switch(value, field: str) -> bool | None:
  """An 'auto' | 'true' | 'false' field as a bool, or None for 'auto' (bools and 1/0/yes/no
  are accepted too).

  Raises:
    ValueError: any other value, naming the field.
  """
  parsed = _SWITCHES.get(str(value).strip().lower(), ValueError)
  if parsed is ValueError:
    raise errors.InvalidValueError(f"config.{field}={value!r} must be 'auto', 'true' or 'false'.")
  return parsed


def switch_text(value: bool) -> str:
  """How a resolved switch is written to the workdir's config.json: 'true' | 'false'."""
  return 'true' if value else 'false'


def _check(condition: bool, message: str) -> None:
  if not condition:
    raise errors.InvalidValueError(message)


def _one_of(value, field: str, allowed) -> None:
  _check(value in allowed, f'config.{field}={value!r} is not valid; use one of: '
         f'{", ".join(map(repr, allowed))}.')


def validate(config: ml_collections.ConfigDict) -> None:
  """Checks every field that can be checked without touching data or building models.

  Raises:
    ValueError: naming the bad field, its value and what is allowed.
  """
  _validate_data(config.data)
  _validate_model(config.model)
  _validate_train(config.train)
  _one_of(config.distribute.strategy, 'distribute.strategy', (AUTO,) + STRATEGIES)
  _check(config.export.top_k >= 1, f'config.export.top_k={config.export.top_k} must be >= 1.')


def _validate_data(data: ml_collections.ConfigDict) -> None:
  _one_of(data.source, 'data.source', SOURCES)
  if data.source in ('folder', 'tfrecord'):
    _check(bool(data.path), f"config.data.source={data.source!r} needs config.data.path, "
           'e.g. --config.data.path=/data/my_images.')
  _check(0 <= data.val_fraction < 1, f'config.data.val_fraction={data.val_fraction} must be '
         'in [0, 1).')
  if data.source in ('folder', 'tfrecord'):
    _check(data.val_fraction > 0, f'config.data.val_fraction=0 leaves a {data.source} source '
           'nothing to validate on (it has no validation split); use e.g. 0.1.')
  _check(data.max_examples_per_class >= 0, 'config.data.max_examples_per_class='
         f'{data.max_examples_per_class} must be >= 0 (0 = all).')
  _one_of(data.cache, 'data.cache', CACHES)
  _check(data.shuffle_buffer >= 0, f'config.data.shuffle_buffer={data.shuffle_buffer} must be '
         '>= 0 (0 = the whole split).')
  _check(0 < data.crop_min_area <= 1, f'config.data.crop_min_area={data.crop_min_area} must be '
         'in (0, 1]; 1.0 disables cropping.')
  _one_of(data.on_bad_image, 'data.on_bad_image', BAD_IMAGE_POLICIES)
  _check(data.max_image_pixels >= 0, f'config.data.max_image_pixels={data.max_image_pixels} '
         'must be >= 0 (0 = no limit).')
  _check(data.imbalance_warning_ratio == 0 or data.imbalance_warning_ratio >= 1,
         f'config.data.imbalance_warning_ratio={data.imbalance_warning_ratio} must be 0 '
         '(never warn) or >= 1 (largest / smallest class).')


def _validate_model(model: ml_collections.ConfigDict) -> None:
  _check(model.width > 0, f'config.model.width={model.width} must be > 0.')
  _check(model.image_size >= 0, f'config.model.image_size={model.image_size} must be >= 0 '
         '(0 = the backbone\'s native size).')
  _check(0 <= model.dropout < 1, f'config.model.dropout={model.dropout} must be in [0, 1).')
  _one_of(model.pooling, 'model.pooling', POOLINGS)


def _validate_train(train: ml_collections.ConfigDict) -> None:
  _check(train.batch_size > 0, f'config.train.batch_size={train.batch_size} must be > 0.')
  _check(train.head_epochs >= 0 and train.finetune_epochs >= 0,
         'config.train.head_epochs and finetune_epochs must be >= 0.')
  _check(train.head_epochs + train.finetune_epochs > 0,
         'config.train.head_epochs and finetune_epochs are both 0: nothing to train.')
  _check(train.max_steps >= 0, f'config.train.max_steps={train.max_steps} must be >= 0 '
         '(0 = no cap).')
  _check(train.head_lr > 0 and train.finetune_lr > 0,
         'config.train.head_lr and finetune_lr must be > 0.')
  _check(0 <= train.warmup_fraction < 1, f'config.train.warmup_fraction='
         f'{train.warmup_fraction} must be in [0, 1).')
  _one_of(train.optimizer, 'train.optimizer', OPTIMIZERS)
  _check(train.weight_decay >= 0, f'config.train.weight_decay={train.weight_decay} must be '
         '>= 0.')
  _check(0 <= train.label_smoothing < 1, 'config.train.label_smoothing='
         f'{train.label_smoothing} must be in [0, 1).')
  unfreeze = str(train.unfreeze)
  _check(unfreeze == 'all' or (unfreeze.isdigit() and int(unfreeze) > 0),
         f"config.train.unfreeze={train.unfreeze!r} must be 'all' or a positive number of "
         "top backbone layers, e.g. '40'.")
  for field in ('freeze_batchnorm', 'head_on_features', 'jit_compile'):
    parse_switch(train[field], f'train.{field}')
  _one_of(train.mixed_precision, 'train.mixed_precision', (AUTO,) + PRECISIONS)
  _check(train.steps_per_loop >= 1 and train.log_every_steps >= 1,
         'config.train.steps_per_loop and log_every_steps must be >= 1.')
  _check(train.checkpoint_every_secs >= 0 and train.keep_checkpoints >= 1,
         'config.train.checkpoint_every_secs must be >= 0 and keep_checkpoints >= 1.')
