"""The workdir: a run's whole state, and the only place a run writes.

    config.json          resolved configuration ('auto' values replaced by what was chosen)
    data.json            class names and split sizes (export and predict read the names here)
    data_report.json     what the data holds and what was left out: counts per class and
                         split, undecodable files skipped with reasons, excluded files,
                         imbalance warnings, and the data audit's findings ('audit')
    audit.json           the data audit: duplicates and leaks, likely label errors, outliers
                         (tftransfer/auditing/), with audit_thumbnails.png beside it
    folder_scan.json     the image-folder scan's cache: a rerun skips decoding an unchanged
                         folder
    checkpoints/         tf.train checkpoints; the newest is where a re-run resumes
    tensorboard/         event files: loss, accuracy, learning rate, images/sec
    metrics.jsonl        one JSON object per finished epoch
    final_metrics.json   the final validation result; present = the run is finished
    backbone.weights.h5  the trained backbone, loadable as another run's model.weights

Files are replaced atomically (write, then rename) so a killed run never leaves half a file.
All I/O goes through tf.io.gfile, so a workdir can live on GCS (gs://...) or any filesystem
TensorFlow reads, as multi-worker and TPU runs need.
"""

import json
import os

import ml_collections
import tensorflow as tf

from tftransfer import errors, files

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


def flatten(tree: dict, prefix: str = '') -> dict:
  """{'section.field': value} of a nested dict (a config.json's content)."""
  flat = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      flat.update(flatten(value, f'{prefix}{key}.'))
    else:
      flat[f'{prefix}{key}'] = value
  return flat


def _changes(old: dict | None, new: dict, resumable: tuple[str, ...],
             skip_auto: bool = False) -> list[str]:
  """'field: old -> new' for every flattened field that differs, except `resumable` ones
  (and, with `skip_auto`, fields whose new value is 'auto', still to be decided)."""
  if old is None:
    return []
  old, new = flatten(old), flatten(new)
  return [f'{key}: {_short(old.get(key))} -> {_short(new.get(key))}'
          for key in sorted(old.keys() | new.keys())
          if old.get(key) != new.get(key) and not key.startswith(resumable)
          and not (skip_auto and new.get(key) == 'auto')]


def _short(value, limit: int = 200) -> str:
  text = repr(value)
  return text if len(text) <= limit else text[:limit] + '...'


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

  def exists(self, name: str) -> bool:
    return tf.io.gfile.exists(self.file(name))

  def save_local_file(self, name: str, write) -> None:
    """Atomically stores a file that a library can only write locally (e.g. HDF5 weights):
    `write(path)` writes to a local temporary file, which is then copied into place."""
    files.copy_local_file(self.file(name), write)

  @property
  def checkpoint_dir(self) -> str:
    return self.file('checkpoints')

  @property
  def tensorboard_dir(self) -> str:
    return self.file('tensorboard')

  def write_json(self, name: str, value) -> None:
    files.write_json(self.file(name), value)

  def read_json(self, name: str):
    """The parsed file, or None when it does not exist."""
    if not self.exists(name):
      return None
    with tf.io.gfile.GFile(self.file(name)) as f:
      return json.load(f)

  def check_same_config(self, config: ml_collections.ConfigDict, *,
                        skip_auto: bool = False) -> None:
    """Raises errors.InvalidValueError when the workdir holds a run of another configuration
    (apart from RESUMABLE_CHANGES): resuming it would mix two experiments. With `skip_auto`,
    fields still 'auto' in `config` are not compared (yet)."""
    self._refuse(_changes(self.read_json('config.json'), config.to_dict(), RESUMABLE_CHANGES,
                          skip_auto))

  def data_changes(self, data: dict) -> list[str]:
    """How `data` (a Data.summary()) differs from the data the run saw: class names or
    split sizes other than its data.json records, as when images were added to, removed
    from or renamed in its folder since."""
    return _changes(self.read_json('data.json'), data, ('description',))

  def check_same_data(self, data: dict) -> None:
    """Raises ValueError when the workdir's run saw other data (see data_changes): resuming
    would mix two experiments, or label predictions with the wrong class names."""
    self._refuse(self.data_changes(data))

  def _refuse(self, changed: list[str]) -> None:
    if changed:
      raise errors.InvalidValueError(
          f'Workdir {self.path} holds a run of a different experiment ({"; ".join(changed)}). '
          'Resuming it would mix two experiments; use a new --workdir, or the previous '
          'configuration and data to resume.')

  def save_experiment(self, config: ml_collections.ConfigDict, data: dict) -> None:
    """Writes config.json and data.json (once check_same_config and check_same_data pass)."""
    self.write_json('config.json', config.to_dict())
    self.write_json('data.json', data)

  def remove(self, name: str) -> None:
    if self.exists(name):
      tf.io.gfile.remove(self.file(name))

  def read_metrics(self) -> list[dict]:
    """The per-epoch rows of metrics.jsonl."""
    if not self.exists('metrics.jsonl'):
      return []
    with tf.io.gfile.GFile(self.file('metrics.jsonl')) as f:
      return [json.loads(line) for line in f if line.strip()]

  def append_metrics(self, row: dict) -> None:
    # Rewritten whole rather than appended: object stores such as GCS cannot append, and
    # a run has few enough epochs for this to cost nothing.
    self._write_metrics(self.read_metrics() + [row])

  def drop_metrics_after(self, step: int) -> None:
    """Forgets rows of epochs a crash undid (written after the checkpoint we resume from)."""
    rows = self.read_metrics()
    kept = [row for row in rows if row['step'] <= step]
    if len(kept) != len(rows):
      self._write_metrics(kept)

  def _write_metrics(self, rows: list[dict]) -> None:
    files.write_text(self.file('metrics.jsonl'),
                    ''.join(json.dumps(row, sort_keys=True) + '\n' for row in rows))
