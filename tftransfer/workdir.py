"""The workdir: a run's whole state, every file's name, and the only place a run writes.

    config.json          the configuration as given ('auto' kept): written once, when the
                         experiment starts; a re-run must give the same one to resume
    plan.json            what the run trains and why (tftransfer/plan.py reads and writes it)
    data.json            class names and split sizes (export and predict read the names here)
    data_report.json     what the data holds and what was left out: counts per class and
                         split, undecodable files skipped with reasons, excluded files,
                         imbalance warnings, and the data audit's findings ('audit')
    audit.json           the data audit: duplicates and leaks, likely label errors, outliers
                         (tftransfer/auditing/), with audit_thumbnails.png beside it
    folder_scan.json     the image-folder scan's cache: a rerun skips decoding an unchanged
                         folder
    checkpoints/         tf.train checkpoints (`checkpoint_of` says what one holds); the
                         newest is where a re-run resumes, checkpoints/best/ the run's result
    tensorboard/         event files: loss, accuracy, learning rate, images/sec
    metrics.jsonl        one JSON object per evaluated epoch; the last is marked
                         "partial" when train.max_steps stopped the run inside it
    final_metrics.json   the final validation result; present = the run is finished
    backbone.weights.h5  the selected epoch's backbone, loadable as another run's
                         model.weights
    thresholds.json      a multi-label run's threshold of each label, chosen on validation
    eval/, report/, explain/   what evaluate, report and explain write about the run
    images/              arrays a notebook trained or judged on (tft.ImageData.from_arrays),
                         written as image folders
    run_config.py        a configs/-style file that recreates a notebook's run from the
                         command line (tft.ImageClassifier.create writes it)
    lock.json            present while a training runs here: its host, pid, start time and
                         command (Workdir.lock); a second training is refused while it holds
                         it, and a lock whose process is gone (same host) is taken over

Files are replaced atomically (write, then rename) so a killed run never leaves half a file.
All I/O goes through tf.io.gfile, so a workdir can live on GCS (gs://...) or any filesystem
TensorFlow reads, as multi-worker and TPU runs need. Reading a saved run back (its model, its
data) is tftransfer/restore.py, on top of this module.
"""
# About 380 lines, over the project's ~350: the table above is the map of a run on disk, and
# every one of its files' names, readers and writers belongs to this one owner (the lock's
# mechanics are locking.py's). Split it by file and a reader has two places to look.

import contextlib
import json
import os
from typing import Iterator, Mapping

import keras
import ml_collections
import tensorflow as tf

from tftransfer import config as config_lib, errors, files, locking

CONFIG = 'config.json'
PLAN = 'plan.json'
DATA = 'data.json'
DATA_REPORT = 'data_report.json'
AUDIT = 'audit.json'
AUDIT_THUMBNAILS = 'audit_thumbnails.png'
FOLDER_SCAN = 'folder_scan.json'
METRICS = 'metrics.jsonl'
FINAL_METRICS = 'final_metrics.json'
THRESHOLDS = 'thresholds.json'  # a multi-label run's per-label decision thresholds
BACKBONE = 'backbone.weights.h5'
CHECKPOINTS = 'checkpoints'
BEST = 'best'  # checkpoints/best/: the selected epoch's checkpoint and best.json
BEST_RECORD = 'best.json'
TENSORBOARD = 'tensorboard'
EVAL = 'eval'
REPORT = 'report'
EXPLAIN = 'explain'
EXCLUSIONS = 'exclusions.txt'
IMAGES = 'images'  # arrays a notebook trained or judged on, written as image folders
RUN_CONFIG = 'run_config.py'  # a configs/-style file that recreates a notebook's run
LOCK = 'lock.json'  # who trains in this workdir now: host, pid, since, command
CHECKPOINT_CHOICES = ('best', 'last')  # or a global step number

# Fields that may change between a run and its resumption: they steer how a run executes
# (or when it stops, or what it reports, as the data audit's settings do), not what it learns.
# data.on_bad_image only decides whether a run with undecodable files starts at all;
# data.max_image_pixels also sets what the export serves, and if it changes which images the
# run trains on, the data check refuses.
RESUMABLE_CHANGES = ('train.max_steps', 'train.mixed_precision', 'train.jit_compile',
                     'train.steps_per_loop', 'train.log_every_steps',
                     'train.checkpoint_every_secs', 'train.keep_checkpoints',
                     'train.early_stopping_patience',
                     'data.on_bad_image', 'data.imbalance_warning_ratio',
                     'data.max_image_pixels', 'distribute.', 'export.', 'audit.')


def judged_subdirectory(data: str | None) -> str:
  """Where in eval/ and report/ the results of judging `data` go: '' for the run's own
  validation split (None), else the held-out folder's or manifest's name without its
  extension, so a test set's report never replaces the validation split's."""
  return os.path.splitext(os.path.basename(os.path.abspath(data)))[0] if data else ''


def flatten(tree: dict, prefix: str = '') -> dict:
  """{'section.field': value} of a nested dict (a config.json's content)."""
  flat = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      flat.update(flatten(value, f'{prefix}{key}.'))
    else:
      flat[f'{prefix}{key}'] = value
  return flat


def _changes(old: dict | None, new: dict, resumable: tuple[str, ...]) -> list[str]:
  """'field: old -> new' for every flattened field that differs, except `resumable` ones."""
  if old is None:
    return []
  old, new = flatten(old), flatten(new)
  return [f'{key}: {_short(old.get(key))} -> {_short(new.get(key))}'
          for key in sorted(old.keys() | new.keys())
          if old.get(key) != new.get(key) and not key.startswith(resumable)]


def _short(value, limit: int = 200) -> str:
  text = repr(value)
  return text if len(text) <= limit else text[:limit] + '...'


def with_metrics_row(rows: list[dict], row: dict) -> list[dict]:
  """`rows` (metrics.jsonl's) with `row` added last, in place of any partial row of the same
  phase and epoch: a run stopped by train.max_steps inside an epoch evaluated it there
  ('partial': true), and the epoch's next row, when a continued run reaches its end (or a
  higher cap), supersedes it. So the file holds one row per epoch, as an uninterrupted run's."""
  epoch = (row.get('phase'), row.get('epoch'))
  return [kept for kept in rows
          if not (kept.get('partial') and (kept.get('phase'), kept.get('epoch')) == epoch)
          ] + [row]


RANDOM_STATES = 'random_states'  # a training checkpoint's seed generator states


def random_states(model: keras.Model) -> list[keras.Variable]:
  """The state variables (int64 [2]: seed, counter) of `model`'s Keras seed generators, its
  dropout's: Keras keeps them out of `model.weights`, so training checkpoints save them on
  their own (checkpoint_of), and passes that must not draw from them put them back."""
  return [variable for variable in model.variables
          if variable.path.endswith('seed_generator_state')]


def holds_random_states(checkpoint_path: str) -> bool:
  """Whether the checkpoint at `checkpoint_path` (a prefix, .../ckpt-N) saved the model's
  random states (checkpoints written before they were saved, of older runs, did not)."""
  return any(name.startswith(f'{RANDOM_STATES}/')
             for name, _ in tf.train.list_variables(checkpoint_path))


def checkpoint_of(model: keras.Model, step: tf.Variable,
                  optimizers: Mapping[str, keras.optimizers.Optimizer] | None = None,
                  elapsed_seconds: tf.Variable | None = None, *,
                  with_random_states: bool = True) -> tf.train.Checkpoint:
  """What a checkpoint holds, the one definition training saves and restore reads: `model`
  (images -> logits, every weight and BatchNorm statistic), the global `step` and, when
  training, each phase's optimizer by phase name, the seconds the run has spent (its
  clock counts them across resumed sessions) and the model's random states (its dropout's
  Keras seed generators, which Keras keeps out of the model's weights), so a resumed run
  draws the dropout masks the uninterrupted one would have.

  `with_random_states=False` leaves them out: what checkpoints of older runs hold.

  Optimizers are stored without float16's loss-scale wrapper, so a run can resume under
  another precision (the dynamic loss scale then restarts, and adapts within a few steps).
  """
  extra = {} if elapsed_seconds is None else {'elapsed_seconds': elapsed_seconds}
  if optimizers and with_random_states:
    extra[RANDOM_STATES] = random_states(model)
  return tf.train.Checkpoint(
      model=model, step=step, **extra,
      **{f'{name}_optimizer': getattr(optimizer, 'inner_optimizer', optimizer)
         for name, optimizer in (optimizers or {}).items()})


class Workdir:
  """Paths and readers/writers of one run's files."""

  def __init__(self, path: str, *, create: bool = True):
    """Opens the workdir at `path` (a local path or a tf.io.gfile URL such as gs://...),
    creating the directory unless `create` is False (readers of a finished run)."""
    self.path = path if '://' in path else os.path.abspath(path)
    if create:
      tf.io.gfile.makedirs(self.path)

  def file(self, name: str) -> str:
    return os.path.join(self.path, name)

  @contextlib.contextmanager
  def lock(self, command: str | None = None) -> Iterator[None]:
    """Holds the workdir's lock (lock.json) inside the block: one training at a time.

    Taken before any other work and released on the way out, also on an exception or
    Ctrl-C. A lock left by a killed process of this host is taken over (locking.acquire);
    readers (export, evaluate, report) never take it. Within the process that holds it, a
    nested lock() is a no-op (the notebook's create() holds it around its training). On a
    local disk the lock is atomic; on GCS it is best effort (no exclusive creation there;
    see locking.create_exclusive).

    Args:
      command: what the lock says holds it; None = this process's command line.

    Raises:
      errors.InUseError: another training holds the workdir (the message names its host,
        pid, start time and command, and how to remove the lock if it is gone).
    """
    path = self.file(LOCK)
    if locking.holds(path):
      yield
      return
    text = locking.acquire(self.path, path, command=command or locking.command_line())
    try:
      yield
    finally:
      locking.release(path, text)

  def training_holder(self) -> dict | None:
    """Who trains in this workdir now (lock.json's host, pid, since, command), or None."""
    return locking.live_holder(self.file(LOCK))

  def exists(self, name: str) -> bool:
    return tf.io.gfile.exists(self.file(name))

  def save_local_file(self, name: str, write) -> None:
    """Atomically stores a file that a library can only write locally (e.g. HDF5 weights):
    `write(path)` writes to a local temporary file, which is then copied into place."""
    files.copy_local_file(self.file(name), write)

  @property
  def checkpoint_dir(self) -> str:
    return self.file(CHECKPOINTS)

  @property
  def best_dir(self) -> str:
    return self.file(f'{CHECKPOINTS}/{BEST}')

  @property
  def tensorboard_dir(self) -> str:
    return self.file(TENSORBOARD)

  def write_json(self, name: str, value) -> None:
    files.write_json(self.file(name), value)

  def read_json(self, name: str):
    """The parsed file, or None when it does not exist."""
    if not self.exists(name):
      return None
    with tf.io.gfile.GFile(self.file(name)) as f:
      return json.load(f)

  def remove(self, name: str) -> None:
    if self.exists(name):
      tf.io.gfile.remove(self.file(name))

  # The experiment: the configuration as given and the data it saw.

  def check_same_config(self, config: ml_collections.ConfigDict) -> None:
    """Raises errors.InvalidValueError when the workdir holds a run of another configuration
    (apart from RESUMABLE_CHANGES): resuming it would mix two experiments."""
    self._refuse(_changes(self.read_json(CONFIG), config.to_dict(), RESUMABLE_CHANGES))

  def data_changes(self, data: dict) -> list[str]:
    """How `data` (a Data.summary()) differs from the data the run saw: class names or
    split sizes other than its data.json records, as when images were added to, removed
    from or renamed in its folder since."""
    return _changes(self.read_json(DATA), data, ('description',))

  def check_same_data(self, data: dict) -> None:
    """Raises errors.InvalidValueError when the workdir's run saw other data (see
    data_changes): resuming would mix two experiments, or label predictions with the wrong
    class names."""
    self._refuse(self.data_changes(data))

  def _refuse(self, changed: list[str]) -> None:
    if changed:
      raise errors.InvalidValueError(
          f'Workdir {self.path} holds a run of a different experiment ({"; ".join(changed)}). '
          'Resuming it would mix two experiments; use a new --workdir, or the previous '
          'configuration and data to resume.')

  def save_experiment(self, config: ml_collections.ConfigDict, data: dict) -> None:
    """Writes config.json and data.json when the experiment starts (once check_same_config
    and check_same_data pass); a resumed run leaves them as they are."""
    if not self.exists(CONFIG):
      self.write_json(CONFIG, config.to_dict())
    if not self.exists(DATA):
      self.write_json(DATA, data)

  def saved_config(self) -> ml_collections.ConfigDict:
    """The run's configuration as config.json holds it, locked; fields added to tftransfer
    since the run was saved take their defaults. The one place that knows older runs' files.

    Raises:
      errors.NotFoundError: the workdir holds no run (no config.json).
    """
    saved = self.read_json(CONFIG)
    if saved is None:
      raise errors.NotFoundError(
          f'--workdir={self.path!r} holds no training run (no {CONFIG}). Pass the workdir '
          'given to `tftransfer-train --workdir`.')
    flat = flatten(saved)
    if 'data.max_image_pixels' not in flat:
      # A run from before data.max_image_pixels: its only limit was the serving one.
      flat['data.max_image_pixels'] = flat.get('export.max_image_pixels', 0)
    config = config_lib.default_config()
    with config.unlocked():
      for path, value in flat.items():
        field = config_lib.BY_PATH.get(path)
        if field is None:
          continue  # a field tftransfer no longer has
        if field.kind is config_lib.SWITCH and value in ('true', 'false'):
          value = value == 'true'  # runs from before switches were booleans
        section, _, name = path.rpartition('.')
        (config[section] if section else config)[name] = value
    return config

  # Metrics rows, one per epoch (with_metrics_row).

  def read_metrics(self) -> list[dict]:
    """The per-epoch rows of metrics.jsonl (the last one 'partial': True when the run was
    capped inside that epoch)."""
    if not self.exists(METRICS):
      return []
    with tf.io.gfile.GFile(self.file(METRICS)) as f:
      return [json.loads(line) for line in f if line.strip()]

  def append_metrics(self, row: dict) -> None:
    """Adds `row` last, in place of a partial row of its epoch (with_metrics_row)."""
    # Rewritten whole rather than appended: object stores such as GCS cannot append, and
    # a run has few enough epochs for this to cost nothing.
    self._write_metrics(with_metrics_row(self.read_metrics(), row))

  def drop_metrics_after(self, step: int) -> None:
    """Forgets rows of epochs a crash undid (written after the checkpoint we resume from)."""
    rows = self.read_metrics()
    kept = [row for row in rows if row['step'] <= step]
    if len(kept) != len(rows):
      self._write_metrics(kept)

  def _write_metrics(self, rows: list[dict]) -> None:
    files.write_text(self.file(METRICS),
                     ''.join(json.dumps(row, sort_keys=True) + '\n' for row in rows))

  # Checkpoints.

  def latest_checkpoint(self) -> str | None:
    return tf.train.latest_checkpoint(self.checkpoint_dir)

  def best_checkpoint(self) -> tuple[str | None, dict | None]:
    """(path, record) of the run's selected checkpoint (checkpoints/best/), or (None, None)
    for a run that has none yet (or was trained before tftransfer kept one)."""
    record = self.read_json(f'{CHECKPOINTS}/{BEST}/{BEST_RECORD}')
    if not record:
      return None, None
    return f'{self.best_dir}/{record["checkpoint"]}', record

  def choose_checkpoint(self, which: str | int) -> str:
    """The checkpoint path of `which`: 'best' (the selected epoch's; the newest for runs
    that kept none), 'last' (the newest) or a step number (a kept checkpoint of that step).

    Raises:
      errors.InvalidValueError: `which` is none of those.
      errors.NotFoundError: no checkpoint yet, or none kept of that step.
    """
    if str(which) not in CHECKPOINT_CHOICES and not str(which).isdigit():
      raise errors.InvalidValueError(
          f'--checkpoint={which!r} must be best, last or a step number.')
    latest = self.latest_checkpoint()
    if latest is None:
      raise errors.NotFoundError(f'{self.checkpoint_dir} holds no checkpoint: the run in '
                                 f'{self.path} has not saved one yet.')
    if which == 'last':
      return latest
    best, record = self.best_checkpoint()
    if which == 'best':
      return best or latest
    kept = {int(path.rsplit('-', 1)[-1]): path for path in
            tf.train.get_checkpoint_state(self.checkpoint_dir).all_model_checkpoint_paths}
    if record:
      kept.setdefault(record['step'], best)
    step = int(which)
    if step not in kept:
      raise errors.NotFoundError(
          f'--checkpoint={which}: the run in {self.path} keeps checkpoints of steps '
          f'{sorted(kept)} only; use one of them, best or last.')
    return kept[step]
