"""Every configuration field tftransfer reads, declared once: name, default, meaning, values.

`FIELDS` below is the one declaration. From it come the defaults (`default_config()`, locked,
as every file in configs/ returns its config), the checks (`validate`), the text of
`--helpfull` (`describe_fields`) and the "did you mean" of a misspelt field (`suggest`).
Configs in configs/ start from `default_config()` and change what their task needs; an
override is `--config.<section>.<field>=value`, and a field that does not exist is an error,
never silently ignored. Every field name is unique across sections, so the notebook API
takes them as keywords (`image_size=96`).

'auto' is one value, `AUTO`: a field that takes it holds AUTO or a typed value (a number, or
True/False for switches; the command line's `true`/`false` arrive as booleans). What each
'auto' became, and why, is the run's plan (tftransfer/plan.py), never written back here.

The module is longer than the others (about 450 lines) on purpose: `FIELDS` is some 210 lines
of one entry per field, each carrying its own documentation, and splitting that table would
declare the fields in two places again.
"""

import copy
import dataclasses
import difflib
import importlib.util
import os
from typing import Any, Callable

import ml_collections

from tftransfer import errors

AUTO = 'auto'

# Vocabularies that the modules implementing each choice read too.
SOURCES = ('tfds', 'folder', 'tfrecord', 'csv', 'synthetic')
TASKS = (AUTO, 'single_label', 'multi_label')
CACHES = (AUTO, 'memory', 'none')
BAD_IMAGE_POLICIES = ('skip', 'fail')
POOLINGS = ('avg', 'max')
OPTIMIZERS = ('adamw', 'sgd')
SELECT_METRICS = (AUTO, 'val_accuracy', 'val_loss', 'val_balanced_accuracy', 'val_map')
CLASS_WEIGHTINGS = ('none', 'balanced', AUTO)
HEAD_INITS = ('glorot_uniform', 'normal')
LR_SCHEDULES = ('cosine', 'constant')
PRECISIONS = ('float32', 'bfloat16', 'float16')
STRATEGIES = ('one_device', 'mirrored', 'multi_worker', 'tpu')
SECTIONS = ('data', 'model', 'train', 'distribute', 'export', 'audit')


@dataclasses.dataclass(frozen=True)
class Kind:
  """What values a field takes: `accepts(value)`, and `allowed`, those values in words."""
  accepts: Callable[[Any], bool]
  allowed: str
  auto: bool = False  # whether the field also takes AUTO (held as an untyped reference)


def _is_number(value) -> bool:
  return isinstance(value, (int, float)) and not isinstance(value, bool)


def number(low: float | None = None, high: float | None = None, *, integer: bool = False,
           low_open: bool = False, high_open: bool = False, auto: bool = False) -> Kind:
  """A number (an integer if `integer`) in the range given, ends open or closed; `auto`:
  or AUTO."""
  def accepts(value):
    if auto and value == AUTO:
      return True
    if not _is_number(value) or (integer and not float(value).is_integer()):
      return False
    return ((low is None or (value > low if low_open else value >= low))
            and (high is None or (value < high if high_open else value <= high)))
  kind = 'an integer' if integer else 'a number'
  if low is not None and high is not None:
    kind += f' in {"(" if low_open else "["}{low:g}, {high:g}{")" if high_open else "]"}'
  elif low is not None:
    kind += f' {">" if low_open else ">="} {low:g}'
  return Kind(accepts, f"'auto' or {kind}" if auto else kind, auto)


def choice(*values: str) -> Kind:
  return Kind(lambda value: value in values, 'one of: ' + ', '.join(map(repr, values)))


SWITCH = Kind(lambda value: value == AUTO or isinstance(value, bool),
              "'auto', True or False (on the command line: auto, true or false)", auto=True)
BOOLEAN = Kind(lambda value: isinstance(value, bool), 'True or False')
TEXT = Kind(lambda value: isinstance(value, str), 'a string')
UNFREEZE = Kind(lambda value: isinstance(value, str) and (
    value == 'all' or (value.isdigit() and int(value) > 0)),
                "'all' or a positive number of top backbone layers, e.g. '40'")


@dataclasses.dataclass(frozen=True)
class Field:
  """One configuration field."""
  path: str  # 'section.name', or 'name' at the top
  default: Any
  kind: Kind
  doc: str  # its meaning, unit, and what 0 / '' / 'auto' mean

  @property
  def name(self) -> str:
    return self.path.rpartition('.')[2]

  @property
  def section(self) -> str:
    return self.path.rpartition('.')[0]


def _f(path: str, default, kind: Kind, doc: str) -> Field:
  return Field(path, default, kind, ' '.join(doc.split()))


# The declaration, section by section. Long by nature: one entry per field, each its documentation.
FIELDS: tuple[Field, ...] = (
    _f('seed', 0, number(0, integer=True), """Seeds the train/validation split, data order,
       augmentation and head initialisation."""),
    # Where examples come from, how they are split, cached and augmented.
    _f('data.source', 'tfds', choice(*SOURCES), 'Where examples come from.'),
    _f('data.name', 'cifar10', TEXT, """TFDS dataset name (source='tfds') or synthetic task
       name (source='synthetic')."""),
    _f('data.path', '', TEXT, """Image folder root, one sub-folder per class
       (source='folder'); TFRecord directory (source='tfrecord'); or a manifest, a .csv, .tsv
       or .jsonl file listing images and labels (source='csv', data/manifests.py)."""),
    _f('data.image_column', 'path', TEXT, """A manifest's column of image paths (relative to
       the manifest's folder, absolute, or gs://)."""),
    _f('data.label_column', 'label', TEXT, """A manifest's column of labels (one a row, or
       several split by data.label_delimiter)."""),
    _f('data.label_delimiter', '', TEXT, """Splits a manifest's label cell into several labels
       an image, e.g. '|'; '' = one label a row."""),
    _f('data.label_columns', '', TEXT, """A manifest's 0/1 columns, one per label (its header
       the label's name), comma-separated, e.g. 'cat,dog,indoor'; '' = data.label_column."""),
    _f('data.split_column', '', TEXT, """A manifest's column of splits (train, validation or
       val, test), respected instead of carving data.val_fraction; '' = carve."""),
    _f('data.data_dir', '', TEXT, """TFDS data directory; '' = TFDS default
       (~/tensorflow_datasets or $TFDS_DATA_DIR)."""),
    _f('data.download', False, BOOLEAN, """Let TFDS download and prepare a dataset that is not
       prepared locally (needs network)."""),
    _f('data.train_split', 'train', TEXT, """Split to train on (TFDS split syntax allowed, e.g.
       'train[:50%]')."""),
    _f('data.eval_split', AUTO, TEXT, """Split to validate on: a split name, 'carve' (a
       stratified `val_fraction` of the train split), or 'auto' = the source's 'validation'
       split if it has one, else 'carve'. 'auto' never picks 'test': a test split is for
       judging, not for choosing checkpoints."""),
    _f('data.val_fraction', 0.1, number(0, 1, high_open=True), """Fraction of each class held
       out for validation when the split is carved from train; 0 = no validation (the run's
       result is its last epoch, early stopping off)."""),
    _f('data.val_path', '', TEXT, """A folder (source='folder'), TFRecord directory
       (source='tfrecord') or manifest read with the same columns (source='csv') to
       validate on instead of carving data.val_fraction from data.path: its classes must be
       some or all of the training ones, matched by name; '' = carve."""),
    _f('data.split_seed', -1, number(-1, integer=True), """Seeds the stratified validation split
       carved from the training data (and the per-class cap); -1 = the run's seed."""),
    _f('data.max_examples_per_class', 0, number(0, integer=True), """Cap on training examples
       per class after the split (few-label runs, smoke tests); 0 = all."""),
    _f('data.cache', AUTO, choice(*CACHES), """Decoded-image cache: 'memory' | 'none' | 'auto'
       (memory when the decoded split fits in a quarter of RAM)."""),
    _f('data.shuffle_buffer', 0, number(0, integer=True), """Shuffle buffer in examples, applied
       after the cache; 0 = the whole training split."""),
    _f('data.crop_min_area', 0.35, number(0, 1, low_open=True), """Smallest crop area (fraction
       of the image) of random-resized-crop; 1.0 = no cropping."""),
    _f('data.flip', True, BOOLEAN, 'Random horizontal flips during training.'),
    _f('data.mixup_alpha', AUTO, number(0, auto=True), """Mixup (Zhang et al., 2018) on training
       batches: the Beta(alpha, alpha) parameter; 0 = off; 'auto' = by training set size (see
       training/rules.py). Not in a head phase on features."""),
    _f('data.cutmix_alpha', 0.0, number(0), """CutMix (Yun et al., 2019) on training batches:
       the Beta parameter; 0 = off. With mixup on too, each batch gets one of the two, chosen
       at random."""),
    _f('data.randaugment_ops', 0, number(0, integer=True), """RandAugment (Cubuk et al., 2020)
       operations per training image; 0 = off."""),
    _f('data.randaugment_magnitude', 0.5, number(0, 1, low_open=True), """RandAugment strength,
       Keras' factor in (0, 1] (about magnitude / 30 of the paper)."""),
    _f('data.on_bad_image', 'skip', choice(*BAD_IMAGE_POLICIES), """What the folder scan does
       with undecodable images: 'skip' (leave them out, listed in the workdir's
       data_report.json) | 'fail' (stop before training, naming them)."""),
    _f('data.max_image_pixels', 120_000_000, number(0, integer=True), """The one image-size
       limit, in frames x height x width pixels, of the folder scan, training and the exported
       serving signature alike; larger images are refused from their headers before decoding
       (decompression bombs). 0 = no limit. 120 MP admits every phone and camera photo up to
       108 MP (12000 x 9000) and 102 MP medium format (11648 x 8736), so 48-50 MP (8064 x 6048,
       8192 x 6144) and 64 MP (9248 x 6936) phones with margin; 200 MP phone modes (16320 x
       12240) need it raised. An image at the limit needs about 2.2 GB while it is decoded and
       shrunk."""),
    _f('data.imbalance_warning_ratio', 10.0, Kind(
        lambda value: _is_number(value) and (value == 0 or value >= 1),
        '0 (never warn) or a number >= 1 (largest / smallest class)'), """Warn (log and
       data_report.json) when the largest training class has more than this many times the
       examples of the smallest; 0 = never. 10 is a common mark of severe imbalance: accuracy
       can then look good while the small classes are mostly misclassified."""),
    _f('data.exclude_file', '', TEXT, """Images to leave out of an image folder: a text file of
       paths, one a line, relative to data.path (or absolute), '#' starting a comment, as
       `tftransfer-audit --write_exclusions` writes it; data_report.json lists what was left
       out. '' = none."""),
    # The backbone, its weights and input size, and the new head.
    _f('model.task', AUTO, choice(*TASKS), """'single_label' (one class an image, softmax) |
       'multi_label' (any number of labels an image: sigmoid per label, binary cross-entropy,
       thresholds chosen on validation) | 'auto' = multi_label when the data gives an image
       several labels (a manifest's label_columns, or a row with more than one label)."""),
    _f('model.backbone', 'resnet50', TEXT, """Registry name of the keras.applications backbone
       (see tftransfer/model/backbones.py), or 'keras_hub' for the preset of model.preset."""),
    _f('model.preset', '', TEXT, """With model.backbone='keras_hub': a keras-hub preset, a local
       directory (as save_to_preset writes it) or a handle ('kaggle://...', 'hf://...'; needs
       network once); its image converter's scale and offset go inside the model. '' = none
       (required with 'keras_hub', refused with any other backbone)."""),
    _f('model.width', 1.0, number(0, low_open=True), """Width multiplier (alpha) for MobileNets;
       must be 1.0 for other backbones."""),
    _f('model.weights', 'imagenet', TEXT, """'imagenet' (download from Keras; for 'keras_hub':
       the preset's own weights) | 'none' (random init) | path to a Keras weights file (.h5 or
       .weights.h5) for this backbone without its top."""),
    _f('model.image_size', AUTO, number(0, integer=True, auto=True), """Square input resolution
       in pixels; 0 = the backbone's native resolution; 'auto' = by the images' size and the
       time budget (see training/rules.py)."""),
    _f('model.dropout', 0.2, number(0, 1, high_open=True), 'Dropout rate before the new dense '
       'head.'),
    _f('model.pooling', 'avg', choice(*POOLINGS), "Pooling of the backbone's feature map."),
    _f('model.head_init', 'glorot_uniform', choice(*HEAD_INITS), """Initialiser of the new
       dense head's kernel (its bias starts at zero): 'glorot_uniform' (Keras' default, Glorot
       & Bengio, 2010) | 'normal' (N(0, head_init_stddev), the classic fine-tuning recipe's new
       fully connected layer)."""),
    _f('model.head_init_stddev', 0.02, number(0, low_open=True), "Standard deviation of "
       "head_init='normal'."),
    # The two phases, their optimizers and schedules, precision, checkpoints.
    _f('train.batch_size', 64, number(1, integer=True), 'Global batch size: summed over all '
       'replicas and workers.'),
    _f('train.head_epochs', AUTO, number(0, integer=True, auto=True), """Epochs of head-only
       training with the backbone frozen; 'auto' = by training set size and time budget (see
       training/rules.py)."""),
    _f('train.finetune_epochs', AUTO, number(0, integer=True, auto=True), """Epochs of
       fine-tuning after unfreezing; 0 = head only (a linear probe); 'auto' = by training set
       size and time budget."""),
    _f('train.time_budget_minutes', 0.0, number(0), """Finish within this many minutes of wall
       time, from start-up to the final metrics: the run measures its speed and plans its
       'auto' epochs (and resolution) to fit, and stops a phase early when its next epoch would
       not; 0 = no budget."""),
    _f('train.max_steps', 0, number(0, integer=True), """Stop after this many training steps in
       total (both phases); 0 = no cap. A cap inside an epoch evaluates there (a partial row,
       never selected); raising the cap continues the run and completes that epoch."""),
    _f('train.head_lr', 1e-3, number(0, low_open=True), 'Peak learning rate of the head phase.'),
    _f('train.finetune_lr', 1e-4, number(0, low_open=True), """Peak learning rate of the
       fine-tuning phase (lower, so pretrained features survive)."""),
    _f('train.warmup_fraction', 0.1, number(0, 1, high_open=True), """Linear warm-up at the
       start of each phase, as a fraction of that phase's steps; 0 = none."""),
    _f('train.lr_schedule', 'cosine', choice(*LR_SCHEDULES), """Learning rate after the
       warm-up: 'cosine' (decays to 0 at the phase's end) | 'constant'."""),
    _f('train.optimizer', 'adamw', choice(*OPTIMIZERS), "Optimizer: 'adamw' | 'sgd' "
       '(momentum).'),
    _f('train.momentum', 0.9, number(0, 1, high_open=True), "Momentum for 'sgd'."),
    _f('train.nesterov', True, BOOLEAN, """Nesterov momentum for 'sgd' (Sutskever et al., 2013);
       false = plain (heavy-ball) momentum."""),
    _f('train.weight_decay', 1e-4, number(0), """Decoupled weight decay; 0 = none. Not applied
       to biases or normalisation parameters."""),
    _f('train.label_smoothing', 0.1, number(0, 1, high_open=True), """Label smoothing of the
       cross-entropy loss; 0 = none."""),
    _f('train.class_weighting', AUTO, choice(*CLASS_WEIGHTINGS), """Loss weights per class:
       'balanced' = n_examples / (n_classes * n_class), as scikit-learn's
       compute_class_weight('balanced'); 'none'; 'auto' = 'balanced' when the classes are more
       than data.imbalance_warning_ratio times apart in size."""),
    _f('train.select_metric', AUTO, choice(*SELECT_METRICS), """Which epoch's weights the
       run keeps as its result (export, evaluate and predict use it): 'val_accuracy' |
       'val_loss' | 'val_balanced_accuracy' (mean recall per class) | 'val_map' (mean average
       precision over labels, multi-label) | 'auto' = val_map for multi-label, else
       val_accuracy."""),
    _f('train.early_stopping_patience', 0, number(0, integer=True), """Stop a phase after this
       many epochs without a new best select_metric; 0 = never."""),
    _f('train.unfreeze', 'all', UNFREEZE, """What fine-tuning unfreezes: 'all' or a number of
       top backbone layers, e.g. '40'."""),
    _f('train.freeze_batchnorm', AUTO, SWITCH, """Keep BatchNormalization in inference mode with
       frozen parameters while fine-tuning; 'auto' = True unless model.weights is 'none'."""),
    _f('train.head_on_features', AUTO, SWITCH, """Head phase on backbone features computed once
       (no augmentation; much faster); 'auto' = True except on TPUs."""),
    _f('train.mixed_precision', AUTO, choice(AUTO, *PRECISIONS), """Compute precision: 'auto' |
       'float32' | 'bfloat16' | 'float16' (mixed, float32 weights); runtime.py says what 'auto'
       picks."""),
    _f('train.jit_compile', AUTO, SWITCH, "XLA compilation of the train step; 'auto' = on GPUs "
       'and TPUs only.'),
    _f('train.steps_per_loop', 20, number(1, integer=True), """Train steps per tf.function call
       (fewer Python round trips). Progress is logged, and a Ctrl-C or SIGTERM stops with a
       checkpoint, between calls."""),
    _f('train.log_every_steps', 100, number(1, integer=True), 'Log progress every this many '
       'steps.'),
    _f('train.checkpoint_every_secs', 120, number(0), """Also checkpoint mid-epoch after this
       many seconds since the last checkpoint; 0 = only at epoch ends."""),
    _f('train.keep_checkpoints', 2, number(0, integer=True), """Checkpoints to keep in
       workdir/checkpoints (besides the best epoch's); 0 = every one (a benchmark scoring every
       epoch keeps them all)."""),
    # Where training runs.
    _f('distribute.strategy', AUTO, choice(AUTO, *STRATEGIES), """tf.distribute strategy:
       'auto' (one device, or mirrored over all local GPUs) | 'one_device' | 'mirrored' |
       'multi_worker' (cluster from TF_CONFIG) | 'tpu'."""),
    _f('distribute.tpu_address', '', TEXT, """TPU name or grpc:// address for strategy='tpu';
       '' = the local TPU VM."""),
    # What the exported serving signatures return (the largest image a request may carry is
    # data.max_image_pixels, as in training).
    _f('export.top_k', 5, number(1, integer=True), """Number of best classes the serving
       signatures return (capped at the number of classes)."""),
    # The data audit (tftransfer/auditing/): duplicates and leaks, label errors, outliers.
    _f('audit.in_training', True, BOOLEAN, """Audit the data while training (audit.json and
       data_report.json in the workdir), reusing the head phase's backbone features; False =
       only `tftransfer-audit` audits."""),
    _f('audit.near_duplicate_similarity', 0.95, number(0, 1, low_open=True), """Cosine
       similarity of two images' pooled backbone features at or above which they are near
       duplicates (derived by scripts/calibrate_audit.py: above every pair of 4,000 distinct
       CIFAR-10 images at 96 px; a different backbone or size may need its own)."""),
    _f('audit.near_duplicate_pixel_similarity', 0.99, number(0, 1, low_open=True), """Cosine
       similarity of two images' 8x8 grey, mirror-symmetric thumbnails (one's whole picture
       against the other's, or against one of its crop windows) at or above which they are near
       duplicates, when their colours agree too (near_duplicate_colour_distance); catches
       re-encoded, resized, mirrored and cropped copies. Derived by scripts/calibrate_audit.py:
       at most 0.25 % of 4,000 CIFAR-10 images paired, each pair the same picture (at 0.985,
       0.5 %, two of the ten pairs are different pictures)."""),
    _f('audit.near_duplicate_colour_distance', 16.0, number(0, low_open=True), """Largest
       distance, in RGB levels (0-255, Euclidean), between two images' mean colours (or one's
       and a crop window's of the other) for their thumbnails to count as near duplicates: the
       thumbnail is grey, so alike layouts in other colours would match. Measured by
       scripts/measure_near_duplicates.py: planted JPEG, resized, cropped and mirrored CIFAR-10
       copies are within 3 levels, distinct thumbnail matches of the quickstart's textures 24
       or more apart."""),
    _f('audit.near_duplicate_crop', 0.1, number(0, 0.5, high_open=True), """Fraction of its side
       a cropped near copy may have lost: thumbnails of windows of (1 - this) and (1 - this / 2)
       of each image's side are compared too; 0 = no windows."""),
    _f('audit.in_training_share', 0.1, number(0, 1, low_open=True), """Share of the run's
       estimated training time (the fine-tuning epochs at the measured speed of the feature
       pass) the in-training audit aims to stay within (auditing/share.py): beyond the
       images whose decode pass and neighbour searches fit it, a random sample of them (at
       least 1,000); the label model gets what is left: with label_model='auto', the logistic
       regression when its estimated cost fits, else the ridge classifier, else none.
       audit.json's 'in_training' and 'label_model' say what and why; tftransfer-audit audits
       every image with no limit."""),
    _f('audit.label_model', AUTO, choice(AUTO, 'logistic_regression', 'ridge_regression'),
       """What scores likely label errors from backbone features (auditing/label_errors.py):
       'logistic_regression', cross-validated (audit.folds, audit.regularization; its cost
       grows with images x classes x features); 'ridge_regression', a least-squares
       classifier's exact leave-one-out scores (cost grows with images x (features^2 +
       classes): 4 s instead of 60 at 10,000 images of 1,000 classes; it finds fewer planted
       errors); 'auto' = the first whose estimated cost fits the in-training audit's share of
       the run (audit.in_training_share), none in training if neither does (then
       tftransfer-audit judges labels); the audit command has no limit, so 'auto' is the
       logistic regression there."""),
    _f('audit.folds', 5, number(2, integer=True), """Folds of the cross-validated logistic
       regression on backbone features whose out-of-fold probabilities score likely label
       errors."""),
    _f('audit.regularization', 0.01, number(0, low_open=True), """Inverse L2 strength
       (scikit-learn's C) of that logistic regression on standardised features (0.01: out of
       fold, better calibrated and more accurate than 1 on CIFAR-10 subsets of 450, 5,000 and
       50,000 images: scripts/measure_label_errors.py, docs/audit_and_report.md)."""),
    _f('audit.label_error_exclusion_confidence', 0.5, number(0, 1), """Probability that a
       flagged label is wrong (auditing/label_errors.py's noise fit) at or above which
       tftransfer-audit --write_exclusions lists the image (0.5: more likely wrong than right;
       --exclude_label_errors_above overrides it for one audit)."""),
    _f('audit.neighbours', 10, number(1, integer=True), """Nearest neighbours searched per
       image: candidate near copies, and the neighbours whose mean similarity scores how far an
       image is from the rest (outliers)."""),
    _f('audit.exact_search_max_images', 50000, number(0, integer=True), """Images up to
       which the audit's nearest-neighbour searches are exact (time grows with the square of
       the images: 12 s per search at 50,000 here, 182 s at 200,000); above, an approximate
       FAISS HNSW index, near-linear (auditing/search.py; its recall in
       docs/audit_and_report.md)."""),
    _f('audit.outlier_z', 5.0, number(0, low_open=True), """An image is an outlier when its
       largest similarity to a class centroid, or its neighbours' mean similarity, lies more
       than this many robust standard deviations (1.4826 x median absolute deviation) below the
       median (5 flags 0.05 % of CIFAR-10's own images: scripts/audit_cifar10.py)."""),
    _f('audit.max_listed', 100, number(0, integer=True), """Likely label errors and outliers
       listed in audit.json, most suspect first (every duplicate group is listed); the counts
       cover all of them."""),
)

BY_PATH: dict[str, Field] = {field.path: field for field in FIELDS}
BY_NAME: dict[str, Field] = {field.name: field for field in FIELDS}
assert len(BY_NAME) == len(FIELDS), 'field names must be unique across sections'

# Words users try first for a field, mapped to the fields they mean ("did you mean").
ALIASES = {
    'epochs': ('train.head_epochs', 'train.finetune_epochs'),
    'num_epochs': ('train.head_epochs', 'train.finetune_epochs'),
    'lr': ('train.head_lr', 'train.finetune_lr'),
    'learning_rate': ('train.head_lr', 'train.finetune_lr'),
    'img_size': ('model.image_size',), 'input_size': ('model.image_size',),
    'resolution': ('model.image_size',), 'size': ('model.image_size',),
    'dropout_rate': ('model.dropout',), 'model_name': ('model.backbone',),
    'arch': ('model.backbone',), 'architecture': ('model.backbone',),
    'batch': ('train.batch_size',), 'bs': ('train.batch_size',),
    'wd': ('train.weight_decay',), 'patience': ('train.early_stopping_patience',),
    'steps': ('train.max_steps',), 'precision': ('train.mixed_precision',),
    'xla': ('train.jit_compile',), 'data_dir': ('data.data_dir',),
    'dataset': ('data.name', 'data.path'), 'budget': ('train.time_budget_minutes',),
}


def default_config() -> ml_collections.ConfigDict:
  """The full default configuration, locked: a field that does not exist cannot be set.

  Fields that take 'auto' hold untyped references, so that 'auto' and a number (or True and
  False) both fit them.
  """
  config = ml_collections.ConfigDict()
  for section in SECTIONS:
    config[section] = ml_collections.ConfigDict()
  for field in FIELDS:
    value = (ml_collections.FieldReference(field.default, field_type=object)
             if field.kind.auto else field.default)
    (config[field.section] if field.section else config)[field.name] = value
  return config.lock()


def field_docs() -> dict[str, str]:
  """{'train.batch_size': its meaning, ...} for every field."""
  return {field.path: field.doc for field in FIELDS}


def describe_fields() -> str:
  """Every field, its default, its values and its meaning: the --config flag's help."""
  return '\n'.join(f'  --config.{field.path}={field.default!r}\n      {field.doc} Values: '
                   f'{field.kind.allowed}.' for field in FIELDS)


def suggest(name: str) -> list[str]:
  """The fields a mistyped or guessed field name most likely means, best first: close
  spellings of a field's name, and the fields of ALIASES for words users try first
  (`epochs` -> train.head_epochs, train.finetune_epochs)."""
  word = name.rpartition('.')[2]
  found = list(ALIASES.get(word.lower(), ()))
  found += [BY_NAME[close].path for close in difflib.get_close_matches(word, BY_NAME, n=3,
                                                                       cutoff=0.7)]
  return list(dict.fromkeys(found))


def _field_value(config: ml_collections.ConfigDict, field: Field):
  return (config[field.section] if field.section else config)[field.name]


def _check(condition: bool, message: str) -> None:
  if not condition:
    raise errors.InvalidValueError(message)


def validate(config: ml_collections.ConfigDict) -> None:
  """Checks every field's value, and the rules across fields, without touching data or models.

  Raises:
    errors.InvalidValueError (a ValueError): naming the field, its value and what is allowed.
  """
  for field in FIELDS:
    value = _field_value(config, field)
    _check(field.kind.accepts(value),
           f'config.{field.path}={value!r} is not valid; use {field.kind.allowed}.')
  data, train = config.data, config.train
  if data.source in ('folder', 'tfrecord', 'csv'):
    _check(bool(data.path), f"config.data.source={data.source!r} needs config.data.path, "
           + ('e.g. --config.data.path=/data/labels.csv.' if data.source == 'csv' else
              'e.g. --config.data.path=/data/my_images.'))
  _check(not data.val_path or data.source in ('folder', 'tfrecord', 'csv'),
         f'config.data.val_path={data.val_path!r} names a folder, TFRecord directory or '
         f"manifest to validate on; it needs config.data.source='folder', 'tfrecord' or "
         f"'csv', not {data.source!r} (TFDS data: config.data.eval_split).")
  _check(not (data.val_path and data.split_column),
         f'config.data.val_path={data.val_path!r} and config.data.split_column='
         f'{data.split_column!r} both say what to validate on; give one.')
  _check(not (data.split_column or data.label_columns or data.label_delimiter)
         or data.source == 'csv',
         "config.data.split_column, label_columns and label_delimiter read a manifest; they "
         f"need config.data.source='csv', not {data.source!r}.")
  _check(not data.exclude_file or data.source == 'folder',
         f'config.data.exclude_file={data.exclude_file!r} lists files of an image folder; it '
         f"needs config.data.source='folder', not {data.source!r}.")
  model = config.model
  _check(bool(model.preset) == (model.backbone == 'keras_hub'),
         f"config.model.preset={model.preset!r} names a keras-hub preset, for "
         f"config.model.backbone='keras_hub' only (it is {model.backbone!r})" if model.preset
         else "config.model.backbone='keras_hub' needs config.model.preset: a preset "
         'directory, e.g. --config.model.preset=/models/efficientnet_b0_ra_imagenet, or a '
         "handle such as 'kaggle://keras/efficientnet/keras/efficientnet_b0_ra_imagenet'.")
  _check(AUTO in (train.head_epochs, train.finetune_epochs)
         or train.head_epochs + train.finetune_epochs > 0,
         'config.train.head_epochs and finetune_epochs are both 0: nothing to train.')


def from_fields(base: ml_collections.ConfigDict | None = None, **fields) -> (
    ml_collections.ConfigDict):
  """A copy of `base` (default: default_config()) with `fields` set by their names
  (`image_size=96`, or dotted paths `model.image_size=96`), validated.

  Raises:
    errors.InvalidValueError: a name that is no field (with the likely ones), or a bad value.
  """
  config = default_config() if base is None else copy_config(base)
  for name, value in fields.items():
    field = BY_PATH.get(name) or BY_NAME.get(name)
    if field is None:
      likely = suggest(name)
      raise errors.InvalidValueError(
          f'{name}={value!r}: no such config field'
          + (f"; did you mean {', '.join(repr(BY_PATH[path].name) for path in likely)}?"
             if likely else '; config.describe_fields() lists them.'))
    try:
      (config[field.section] if field.section else config)[field.name] = value
    except TypeError:  # ml_collections keeps a field's type: batch_size='32' is a str.
      raise errors.InvalidValueError(
          f'{name}={value!r} is a {type(value).__name__}; config.{field.path} takes '
          f'{field.kind.allowed}.') from None
  validate(config)
  return config


def load_file(spec: str) -> ml_collections.ConfigDict:
  """The ConfigDict of a config file, as --config=FILE[:ARG] reads it: 'configs/x.py' calls
  its get_config(), 'configs/quickstart.py:source' calls get_config('source').

  Raises:
    errors.NotFoundError: no such file.
    errors.InvalidValueError: a file without get_config, or one that returns no ConfigDict.
  """
  path, _, argument = spec.partition(':')
  if not os.path.isfile(path):
    raise errors.NotFoundError(f'config={spec!r}: no config file {os.path.abspath(path)}; '
                               'give a path to one of configs/*.py (or a ConfigDict).')
  module_spec = importlib.util.spec_from_file_location('tftransfer_config_file', path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  if not hasattr(module, 'get_config'):
    raise errors.InvalidValueError(f'config={spec!r}: {path} defines no get_config().')
  config = module.get_config(argument) if argument else module.get_config()
  if not isinstance(config, ml_collections.ConfigDict):
    raise errors.InvalidValueError(f'config={spec!r}: get_config() returned a '
                                   f'{type(config).__name__}, not a ConfigDict.')
  return config


def copy_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A deep copy of `config`, locked like it, whose 'auto' fields still take numbers."""
  return copy.deepcopy(config)
