"""Every configuration field tftransfer reads, with its default and meaning.

Configs in `configs/` start from `default_config()`, change what their task needs and return
the dict locked, so a misspelt override (`--config.train.batchsize=8`) fails at start-up
instead of being silently ignored. Fields whose values are 'auto' are resolved at run time
and the resolution is logged and saved in the workdir's `config.json`.

This module is longer than the others on purpose: it is the one place that lists, documents
and checks every field, so a reader never has to look for a field's meaning anywhere else.
"""

import copy
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
SELECT_METRICS = ('val_accuracy', 'val_loss', 'val_balanced_accuracy')
CLASS_WEIGHTINGS = ('none', 'balanced', 'auto')
HEAD_INITS = ('glorot_uniform', 'normal')
LR_SCHEDULES = ('cosine', 'constant')
PRECISIONS = ('float32', 'bfloat16', 'float16')  # train.mixed_precision also takes 'auto'
STRATEGIES = ('one_device', 'mirrored', 'multi_worker', 'tpu')  # distribute.strategy: + 'auto'
AUTO = 'auto'


def mutable_copy(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """An unlocked deep copy of `config` whose 'auto'-or-number fields still take numbers."""
  mutable = copy.deepcopy(config)  # unlike ConfigDict(config.to_dict()), keeps field types
  mutable.unlock()
  return mutable


def auto_or(value) -> ml_collections.FieldReference:
  """A field that holds 'auto' or a number: the command line parses 5 as an int, 0.2 as a
  float and 'auto' as a string."""
  return ml_collections.FieldReference(value, field_type=object)


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
  config.audit = _audit_section()
  return config


# Long on purpose: each field's comment is its documentation (the module docstring says why).
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
  # Mixup (Zhang et al., 2018) on training batches: the Beta(alpha, alpha) parameter; 0 = off;
  # 'auto' = by training set size (see training/schedule.py). Not in a head phase on features.
  data.mixup_alpha = auto_or(AUTO)
  # CutMix (Yun et al., 2019) on training batches: the Beta parameter; 0 = off. With mixup
  # on too, each batch gets one of the two, chosen at random.
  data.cutmix_alpha = 0.0
  # RandAugment (Cubuk et al., 2020) operations per training image; 0 = off.
  data.randaugment_ops = 0
  # RandAugment strength, Keras' factor in (0, 1] (about magnitude / 30 of the paper).
  data.randaugment_magnitude = 0.5
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
  # Images to leave out of an image folder: a text file of paths, one a line, relative to
  # data.path (or absolute), '#' starting a comment, as `tftransfer-audit --write_exclusions`
  # writes it; data_report.json lists what was left out. '' = none.
  data.exclude_file = ''
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
  # Square input resolution in pixels; 0 = the backbone's native resolution; 'auto' = by the
  # images' size and the time budget (see training/schedule.py).
  model.image_size = auto_or(AUTO)
  # Dropout rate before the new dense head.
  model.dropout = 0.2
  # Pooling of the backbone's feature map: 'avg' | 'max'.
  model.pooling = 'avg'
  # Initialiser of the new dense head's kernel (its bias starts at zero): 'glorot_uniform'
  # (Keras' default, Glorot & Bengio, 2010) | 'normal' (N(0, head_init_stddev), the classic
  # fine-tuning recipe's new fully connected layer).
  model.head_init = 'glorot_uniform'
  # Standard deviation of head_init='normal'.
  model.head_init_stddev = 0.02
  return model


# Long on purpose: each field's comment is its documentation (the module docstring says why).
def _train_section() -> ml_collections.ConfigDict:
  """The two phases, their optimizers and schedules, precision, checkpoints."""
  train = ml_collections.ConfigDict()
  # Global batch size: summed over all replicas and workers.
  train.batch_size = 64
  # Epochs of head-only training with the backbone frozen; 'auto' = by training set size
  # and time budget (see training/schedule.py).
  train.head_epochs = auto_or(AUTO)
  # Epochs of fine-tuning after unfreezing; 0 = head only (a linear probe); 'auto' = by
  # training set size and time budget.
  train.finetune_epochs = auto_or(AUTO)
  # Finish within this many minutes of wall time, from start-up to the final metrics: the run
  # measures its speed and plans its 'auto' epochs (and resolution) to fit, and stops a phase
  # early when its next epoch would not; 0 = no budget.
  train.time_budget_minutes = 0.0
  # Stop after this many training steps in total (both phases); 0 = no cap.
  train.max_steps = 0
  # Peak learning rate of the head phase.
  train.head_lr = 1e-3
  # Peak learning rate of the fine-tuning phase (lower, so pretrained features survive).
  train.finetune_lr = 1e-4
  # Linear warm-up at the start of each phase, as a fraction of that phase's steps; 0 = none.
  train.warmup_fraction = 0.1
  # Learning rate after the warm-up: 'cosine' (decays to 0 at the phase's end) | 'constant'.
  train.lr_schedule = 'cosine'
  # Optimizer: 'adamw' | 'sgd' (momentum).
  train.optimizer = 'adamw'
  # Momentum for 'sgd'.
  train.momentum = 0.9
  # Nesterov momentum for 'sgd' (Sutskever et al., 2013); false = plain (heavy-ball) momentum.
  train.nesterov = True
  # Decoupled weight decay; 0 = none. Not applied to biases or normalisation parameters.
  train.weight_decay = 1e-4
  # Label smoothing of the cross-entropy loss; 0 = none.
  train.label_smoothing = 0.1
  # Loss weights per class: 'balanced' = n_examples / (n_classes * n_class), as scikit-learn's
  # compute_class_weight('balanced'); 'none'; 'auto' = 'balanced' when the classes are more
  # than data.imbalance_warning_ratio times apart in size.
  train.class_weighting = 'auto'
  # Which epoch's weights the run keeps as its result (export, evaluate and predict use it):
  # 'val_accuracy' | 'val_loss' | 'val_balanced_accuracy' (mean recall per class).
  train.select_metric = 'val_accuracy'
  # Stop a phase after this many epochs without a new best select_metric; 0 = never.
  train.early_stopping_patience = 0
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
  # Checkpoints to keep in workdir/checkpoints (besides the best epoch's); 0 = every one (a
  # benchmark scoring every epoch keeps them all).
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


def _audit_section() -> ml_collections.ConfigDict:
  """The data audit (tftransfer/auditing/): duplicates and leaks, label errors, outliers."""
  audit = ml_collections.ConfigDict()
  # Audit the data while training (audit.json and data_report.json in the workdir), reusing
  # the head phase's backbone features; False = only `tftransfer-audit` audits.
  audit.in_training = True
  # Cosine similarity of two images' pooled backbone features at or above which they are
  # near duplicates (derived by scripts/calibrate_audit.py: above every pair of 4,000
  # distinct CIFAR-10 images at 96 px; a different backbone or size may need its own).
  audit.near_duplicate_similarity = 0.95
  # Cosine similarity of two images' 8x8 grey, mirror-symmetric thumbnails (one's whole
  # picture against the other's, or against one of its crop windows) at or above which
  # they are near duplicates (catches re-encoded, resized, mirrored and cropped copies;
  # derived by scripts/calibrate_audit.py: at most 0.5 % of CIFAR-10 images paired).
  audit.near_duplicate_pixel_similarity = 0.99
  # Fraction of its side a cropped near copy may have lost: thumbnails of windows of
  # (1 - this) and (1 - this / 2) of each image's side are compared too; 0 = no windows.
  audit.near_duplicate_crop = 0.1
  # Folds of the cross-validated logistic regression on backbone features whose out-of-fold
  # probabilities score likely label errors.
  audit.folds = 5
  # Inverse L2 strength (scikit-learn's C) of that logistic regression on standardised
  # features.
  audit.regularization = 1.0
  # Nearest neighbours searched per image: candidate near copies, and the neighbours whose
  # mean similarity scores how far an image is from the rest (outliers).
  audit.neighbours = 10
  # An image is an outlier when its largest similarity to a class centroid, or its
  # neighbours' mean similarity, lies more than this many robust standard deviations
  # (1.4826 x median absolute deviation) below the median (5 flags 0.05 % of CIFAR-10's
  # own images: scripts/audit_cifar10.py).
  audit.outlier_z = 5.0
  # Likely label errors and outliers listed in audit.json, most suspect first (every
  # duplicate group is listed); the counts cover all of them.
  audit.max_listed = 100
  return audit


def field_docs() -> dict[str, str]:
  """{'train.batch_size': its comment, ...} for every field, read from the source of
  `default_config` and its section functions, so the comments there are the one documentation
  of the fields (--helpfull shows them)."""
  docs, comment = {}, []
  source = ''.join(inspect.getsource(function) for function in (
      default_config, _data_section, _model_section, _train_section, _distribute_section,
      _export_section, _audit_section))
  for line in source.splitlines():
    line = line.strip()
    assignment = re.match(r'(config|data|model|train|distribute|export|audit)\.(\w+) = '
                          r'(?!data|model|train|distribute|export|audit)', line)
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


def _auto_or_number(value, field: str, *, minimum: float, integer: bool) -> None:
  """Checks a field that is 'auto' or a number >= `minimum` (an integer if `integer`)."""
  kind = 'an integer' if integer else 'a number'
  number = isinstance(value, (int, float)) and not isinstance(value, bool) and (
      not integer or float(value).is_integer())
  _check(value == AUTO or (number and value >= minimum),
         f"config.{field}={value!r} must be 'auto' or {kind} >= {minimum:g}.")


def is_auto(value) -> bool:
  return isinstance(value, str) and value == AUTO


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
  _validate_audit(config.audit)


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
  _auto_or_number(data.mixup_alpha, 'data.mixup_alpha', minimum=0, integer=False)
  _check(data.cutmix_alpha >= 0, f'config.data.cutmix_alpha={data.cutmix_alpha} must be >= 0 '
         '(0 = off).')
  _check(data.randaugment_ops >= 0, f'config.data.randaugment_ops={data.randaugment_ops} must '
         'be >= 0 (0 = off).')
  _check(0 < data.randaugment_magnitude <= 1, 'config.data.randaugment_magnitude='
         f'{data.randaugment_magnitude} must be in (0, 1].')
  _check(not data.exclude_file or data.source == 'folder',
         f'config.data.exclude_file={data.exclude_file!r} lists files of an image folder; it '
         f"needs config.data.source='folder', not {data.source!r}.")


def _validate_audit(audit: ml_collections.ConfigDict) -> None:
  for field in ('near_duplicate_similarity', 'near_duplicate_pixel_similarity'):
    _check(0 < audit[field] <= 1, f'config.audit.{field}={audit[field]} must be a cosine '
           'similarity in (0, 1].')
  _check(0 <= audit.near_duplicate_crop < 0.5, 'config.audit.near_duplicate_crop='
         f'{audit.near_duplicate_crop} must be a fraction of the side in [0, 0.5).')
  _check(audit.folds >= 2, f'config.audit.folds={audit.folds} must be >= 2.')
  _check(audit.regularization > 0, f'config.audit.regularization={audit.regularization} '
         'must be > 0.')
  _check(audit.neighbours >= 1, f'config.audit.neighbours={audit.neighbours} must be >= 1.')
  _check(audit.outlier_z > 0, f'config.audit.outlier_z={audit.outlier_z} must be > 0.')
  _check(audit.max_listed >= 0, f'config.audit.max_listed={audit.max_listed} must be >= 0.')


def _validate_model(model: ml_collections.ConfigDict) -> None:
  _check(model.width > 0, f'config.model.width={model.width} must be > 0.')
  _auto_or_number(model.image_size, 'model.image_size', minimum=0, integer=True)
  _check(0 <= model.dropout < 1, f'config.model.dropout={model.dropout} must be in [0, 1).')
  _one_of(model.pooling, 'model.pooling', POOLINGS)
  _one_of(model.head_init, 'model.head_init', HEAD_INITS)
  _check(model.head_init_stddev > 0, 'config.model.head_init_stddev='
         f'{model.head_init_stddev} must be > 0.')


def _validate_train(train: ml_collections.ConfigDict) -> None:
  _check(train.batch_size > 0, f'config.train.batch_size={train.batch_size} must be > 0.')
  _auto_or_number(train.head_epochs, 'train.head_epochs', minimum=0, integer=True)
  _auto_or_number(train.finetune_epochs, 'train.finetune_epochs', minimum=0, integer=True)
  _check(is_auto(train.head_epochs) or is_auto(train.finetune_epochs)
         or train.head_epochs + train.finetune_epochs > 0,
         'config.train.head_epochs and finetune_epochs are both 0: nothing to train.')
  _check(train.time_budget_minutes >= 0, 'config.train.time_budget_minutes='
         f'{train.time_budget_minutes} must be >= 0 (0 = no budget).')
  _one_of(train.class_weighting, 'train.class_weighting', CLASS_WEIGHTINGS)
  _one_of(train.select_metric, 'train.select_metric', SELECT_METRICS)
  _check(train.early_stopping_patience >= 0, 'config.train.early_stopping_patience='
         f'{train.early_stopping_patience} must be >= 0 (0 = never stop early).')
  _check(train.max_steps >= 0, f'config.train.max_steps={train.max_steps} must be >= 0 '
         '(0 = no cap).')
  _check(train.head_lr > 0 and train.finetune_lr > 0,
         'config.train.head_lr and finetune_lr must be > 0.')
  _check(0 <= train.warmup_fraction < 1, f'config.train.warmup_fraction='
         f'{train.warmup_fraction} must be in [0, 1).')
  _one_of(train.optimizer, 'train.optimizer', OPTIMIZERS)
  _one_of(train.lr_schedule, 'train.lr_schedule', LR_SCHEDULES)
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
  _check(train.checkpoint_every_secs >= 0 and train.keep_checkpoints >= 0,
         'config.train.checkpoint_every_secs and keep_checkpoints must be >= 0.')
