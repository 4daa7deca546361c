"""The workdir: a run's whole state, and the only place a run writes.

    config.json          resolved configuration ('auto' values replaced by what was chosen)
    data.json            class names and split sizes (export and predict read the names here)
    data_report.json     what the data holds and what was left out: counts per class and
                         split, undecodable files skipped with reasons, imbalance warnings
    folder_scan.json     the image-folder scan's cache: a rerun skips decoding an unchanged
                         folder
    checkpoints/         tf.train checkpoints; the newest is where a re-run resumes
    tensorboard/         event files: loss, accuracy, learning rate, images/sec
    metrics.jsonl        one JSON object per finished epoch
    final_metrics.json   the final validation result; present = the run is finished
    backbone.weights.h5  the trained backbone, loadable as another run's model.weights

Files are replaced atomically (write, then rename) so a killed run never leaves half a file.
"""

import json
import os
import uuid

import ml_collections

# Fields that may change between a run and its resumption: they steer how a run executes
# (or when it stops, or what it reports), not what it learns. data.on_bad_image only decides
# whether a run with undecodable files starts at all.
RESUMABLE_CHANGES = ('train.max_steps', 'train.mixed_precision', 'train.jit_compile',
                     'train.steps_per_loop', 'train.log_every_steps',
                     'train.checkpoint_every_secs', 'train.keep_checkpoints',
                     'data.on_bad_image', 'data.imbalance_warning_ratio',
                     'distribute.', 'export.')


def write_json_file(path: str, value) -> None:
  """Writes `value` as JSON to `path` atomically: readers see the old file or the new one.

  The temporary name is unique, so workers of one job writing the same file do not collide.
  """
  temporary = os.path.join(os.path.dirname(path),
                           f'.{os.path.basename(path)}.{uuid.uuid4().hex}.tmp')
  try:
    with open(temporary, 'x') as f:
      json.dump(value, f, indent=2, sort_keys=True)
      f.write('\n')
    os.replace(temporary, path)
  except BaseException:
    if os.path.exists(temporary):
      os.unlink(temporary)
    raise


def _flatten(tree: dict, prefix: str = '') -> dict:
  flat = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      flat.update(_flatten(value, f'{prefix}{key}.'))
    else:
      flat[f'{prefix}{key}'] = value
  return flat


class Workdir:
  """Paths and readers/writers of one run's files."""

  def __init__(self, path: str):
    self.path = os.path.abspath(path)
    os.makedirs(self.path, exist_ok=True)

  def file(self, name: str) -> str:
    return os.path.join(self.path, name)

  @property
  def checkpoint_dir(self) -> str:
    return self.file('checkpoints')

  @property
  def tensorboard_dir(self) -> str:
    return self.file('tensorboard')

  @property
  def backbone_weights(self) -> str:
    return self.file('backbone.weights.h5')

  def write_json(self, name: str, value) -> None:
    write_json_file(self.file(name), value)

  def read_json(self, name: str):
    """The parsed file, or None when it does not exist."""
    if not os.path.exists(self.file(name)):
      return None
    with open(self.file(name)) as f:
      return json.load(f)

  def save_config(self, config: ml_collections.ConfigDict) -> None:
    """Writes config.json, after checking a previous run here was the same experiment.

    Raises:
      ValueError: the workdir holds a run of a different configuration.
    """
    new = config.to_dict()
    old = self.read_json('config.json')
    if old is not None:
      old_flat, new_flat = _flatten(old), _flatten(new)
      changed = sorted(
          key for key in old_flat.keys() | new_flat.keys()
          if old_flat.get(key) != new_flat.get(key) and not key.startswith(RESUMABLE_CHANGES))
      if changed:
        details = ', '.join(f'{k}: {old_flat.get(k)!r} -> {new_flat.get(k)!r}' for k in changed)
        raise ValueError(
            f'Workdir {self.path} holds a run with a different configuration ({details}). '
            'Resuming it would mix two experiments; use a new --workdir, or the previous '
            'values to resume.')
    self.write_json('config.json', new)

  def read_metrics(self) -> list[dict]:
    """The per-epoch rows of metrics.jsonl."""
    if not os.path.exists(self.file('metrics.jsonl')):
      return []
    with open(self.file('metrics.jsonl')) as f:
      return [json.loads(line) for line in f if line.strip()]

  def append_metrics(self, row: dict) -> None:
    with open(self.file('metrics.jsonl'), 'a') as f:
      f.write(json.dumps(row, sort_keys=True) + '\n')
      f.flush()
      os.fsync(f.fileno())

  def drop_metrics_after(self, step: int) -> None:
    """Forgets rows of epochs a crash undid (written after the checkpoint we resume from)."""
    rows = self.read_metrics()
    kept = [row for row in rows if row['step'] <= step]
    if len(kept) != len(rows):
      temporary = self.file('.metrics.jsonl.tmp')
      with open(temporary, 'w') as f:
        f.writelines(json.dumps(row, sort_keys=True) + '\n' for row in kept)
      os.replace(temporary, self.file('metrics.jsonl'))
