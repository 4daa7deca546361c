"""Every image decoded once, before training: which files training can read, and why the
others cannot; the verdicts cached under a fingerprint of the files.

A folder (folders.py) and a manifest (manifest_source.py) hand their files here. Each file is
decoded with the function training and serving use (`image_ops.decode_image`, under
`data.max_image_pixels`), so a file it accepts cannot stop a run in epoch 3, and the others
are reported with the reason TensorFlow gave. The verdicts are cached (the run's
folder_scan.json) under a fingerprint the caller computes (paths, sizes, modification
times), one entry per folder or manifest, so a resumed run does not decode them again.
"""

import json
import os
from typing import Sequence

from absl import logging
import numpy as np
import tensorflow as tf

from tftransfer import files, passes, tf_noise
from tftransfer.data import image_ops

# Bump when what the scan accepts changes, so that cached verdicts of an older scan are redone.
# 2: palette BMPs decode through their colour table, misdecoded variants are refused, JPEGs
# are decoded with the accurate IDCT and turned upright, images have a pixel limit.
SCAN_VERSION = 2


def verdicts(paths: Sequence[str], names: Sequence[str], *, root: str, fingerprint: str,
             max_image_pixels: int, cache_path: str | None
             ) -> tuple[dict[str, str], int, bool]:
  """Decodes every file of `paths` once (or reads the cached verdicts).

  Args:
    paths: the files, as they are read.
    names: each file's name as reports give it (relative to a folder, or as a manifest
      writes it); the keys of the failures.
    root: the folder or manifest the files come from (the cache entry's key).
    fingerprint: a hash of the files' paths, sizes and modification times (and whatever
      else decides the verdicts): a different one decodes again.
    max_image_pixels: images with more pixels are refused from their headers; 0 = no limit.
    cache_path: the JSON file keeping verdicts; None = always decode.

  Returns:
    ({name: why it cannot be used} of the rejected files, frames x height x width of the
    largest accepted image, whether the verdicts came from the cache).
  """
  key = {'version': SCAN_VERSION, 'root': root, 'fingerprint': fingerprint,
         'max_image_pixels': max_image_pixels}
  cached = _read_cache(cache_path, key)
  if cached is not None:
    logging.info('Scan of %s: unchanged since the cached scan in %s; not decoding.', root,
                 cache_path)
    return cached['skipped'], cached['largest_image_pixels'], True
  failures, largest = _undecodable(list(paths), list(names), max_image_pixels,
                                   what=f'Scan of {root}')
  if cache_path:
    _write_cache(cache_path, {**key, 'num_files': len(paths), 'largest_image_pixels': largest,
                              'skipped': failures})
  return failures, largest, False


def _cached_scans(cache_path: str) -> dict:
  """{root: scan} of a cache file (one scan per folder a run reads: training, validation).
  Files written before it held several kept one scan at the top."""
  if not tf.io.gfile.exists(cache_path):
    return {}
  with tf.io.gfile.GFile(cache_path) as f:
    cached = json.load(f)
  return cached['scans'] if 'scans' in cached else {cached.get('root'): cached}


def _read_cache(cache_path: str | None, key: dict) -> dict | None:
  """The cached scan of key['root'], if it describes this listing scanned with these
  settings (`key`)."""
  cached = _cached_scans(cache_path).get(key['root']) if cache_path else None
  if cached is None:
    return None
  if any(cached.get(field) != value for field, value in key.items()):
    logging.info('Folder %s or the scan settings changed since the cached scan in %s: '
                 'scanning again.', key['root'], cache_path)
    return None
  return cached


def _write_cache(cache_path: str, scan: dict) -> None:
  scans = {root: cached for root, cached in _cached_scans(cache_path).items() if root}
  files.write_json(cache_path, {'scans': {**scans, scan['root']: scan}})


def _undecodable(paths: list[str], names: list[str], max_image_pixels: int, *,
                 what: str = 'Scan') -> tuple[dict[str, str], int]:
  """({name: reason} of every file `image_ops.decode_image` rejects, frames x height x width
  of the largest file it accepts).

  All files are decoded in a parallel tf.data map that drops failures (`ignore_errors`) and
  yields the index of each file that decoded; the few that did not are then decoded again
  one by one to capture TensorFlow's reason. A long scan logs progress lines with an ETA
  (passes.Progress, titled `what`). Per-file Python (a thread pool, or tf.py_function)
  measured twice as slow on the 50,000 CIFAR-10 JPEGs.
  """

  def decode(index, path):
    _, pixels = image_ops.decode_image_and_size(tf.io.read_file(path),
                                                max_pixels=max_image_pixels)
    return index, pixels  # an error when the file does not decode

  # Paths as bytes: a file name that is not valid UTF-8 must not stop the scan.
  encoded = [os.fsencode(path) for path in paths]
  decoded = tf.data.Dataset.from_tensor_slices(tf.constant(encoded, tf.string)).enumerate()
  decoded = decoded.map(decode, num_parallel_calls=tf.data.AUTOTUNE,
                        deterministic=False).ignore_errors()
  ok = np.zeros(len(encoded), bool)
  largest = 0
  failures = {}
  # TF logs every failing decode a second time ('Local rendezvous is aborting'), and oneDNN
  # its notice on the first uint8 op; the reason is reported below, once.
  with tf_noise.filtered(tf_noise.expected_failure_dropper()):
    progress, done = passes.Progress(what, len(encoded)), 0
    for indices, pixels in decoded.batch(4096):
      ok[indices.numpy()] = True
      done += len(indices)
      progress.update(done)
      largest = max(largest, int(np.max(pixels.numpy(), initial=0)))
    reasons = {index: _decode_error(paths[index], max_image_pixels)
               for index in np.flatnonzero(~ok)}
  for index, reason in reasons.items():
    if reason is None:
      logging.warning('%s failed to decode in the parallel scan but decoded on a second try '
                      '(a transient read error?); keeping it.', paths[index])
    else:
      failures[names[index]] = reason
  return failures, largest


def _decode_error(path: str, max_image_pixels: int) -> str | None:
  """Why `image_ops.decode_image` rejects the file at `path`, or None if it does not."""
  try:
    image_ops.decode_image(tf.io.read_file(os.fsencode(path)), max_pixels=max_image_pixels)
  except tf.errors.OpError as error:
    return image_ops.error_reason(error)
  return None
