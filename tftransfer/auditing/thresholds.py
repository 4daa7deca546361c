"""The near-duplicate thresholds, measured: how alike copies are, and how alike distinct images.

`measure` takes a set of distinct images (originals), makes near copies of some of them of
every kind the audit is meant to find (`near_copy`: re-encoded as JPEG at quality 20-50,
resized by 0.5-1.5x, cropped by 10 %, mirrored), and describes originals and copies as the
audit does (descriptors.compute, the backbone's pooled features). It records, per signal
('backbone': cosine of the features; 'pixels': descriptors.pixel_similarity):
  - each copy's similarity to its original, per kind;
  - each original's similarity to its most similar other original among the candidates the
    audit would judge (its nearest neighbours by either signal).
A threshold then trades the copies found against the originals that would get a partner
(`Calibration.threshold`: the smallest threshold at which at most a given fraction of the
originals have one). The originals are not known to be free of near copies themselves
(CIFAR-10 holds some), so that fraction is an upper bound of the false partners.

scripts/calibrate_audit.py runs this on CIFAR-10 and prints the thresholds that
config.audit's defaults come from.
"""

import dataclasses
import io
import pathlib
from typing import Callable

import numpy as np
from PIL import Image, ImageOps
import tensorflow as tf

from tftransfer.auditing import descriptors as descriptors_lib, duplicates, search
from tftransfer.data import dataset, features as features_lib

COPY_KINDS = ('jpeg', 'resize', 'crop', 'mirror')
SIGNALS = ('backbone', 'pixels')
GRID = np.round(np.arange(0.8, 1.0, 0.005), 3)  # the thresholds a calibration chooses from


def near_copy(encoded: bytes, kind: str, rng: np.random.Generator, *,
              crop: float = 0.1) -> tuple[bytes, str]:
  """A near copy of an encoded image: (encoded copy, its file suffix).

  Args:
    encoded: an image file's bytes (any format Pillow reads).
    kind: 'jpeg' (re-encoded at quality 20-50), 'resize' (by 0.5-1.5x, bicubic), 'crop' (a
      random window of (1 - crop) of each side) or 'mirror' (left-right).
    rng: draws the quality, scale or window.
    crop: the side fraction a crop removes.
  """
  image = Image.open(io.BytesIO(encoded)).convert('RGB')
  buffer = io.BytesIO()
  if kind == 'jpeg':
    image.save(buffer, 'JPEG', quality=int(rng.integers(20, 51)))
    return buffer.getvalue(), '.jpg'
  if kind == 'resize':
    scale = float(rng.uniform(0.5, 1.5))
    image = image.resize((max(1, round(image.width * scale)),
                          max(1, round(image.height * scale))), Image.BICUBIC)
  elif kind == 'crop':
    width, height = round(image.width * (1 - crop)), round(image.height * (1 - crop))
    left = int(rng.integers(0, image.width - width + 1))
    top = int(rng.integers(0, image.height - height + 1))
    image = image.crop((left, top, left + width, top + height))
  elif kind == 'mirror':
    image = ImageOps.mirror(image)
  else:
    raise ValueError(f'Unknown near-copy kind {kind!r}; one of {COPY_KINDS}.')
  image.save(buffer, 'PNG')
  return buffer.getvalue(), '.png'


@dataclasses.dataclass(frozen=True)
class Calibration:
  """Similarities measured by `measure`, per signal ('backbone', 'pixels')."""
  copy_similarity: dict[str, dict[str, np.ndarray]]  # signal -> kind -> float [copies]
  nearest_distinct: dict[str, np.ndarray]  # signal -> float [originals]
  nearest_index: dict[str, np.ndarray]  # signal -> int [originals], that other original

  def recall(self, signal: str, kind: str, threshold: float) -> float:
    """The fraction of `kind` copies at or above `threshold` from their original."""
    return float(np.mean(self.copy_similarity[signal][kind] >= threshold))

  def partner_rate(self, signal: str, threshold: float) -> float:
    """The fraction of originals with another original at or above `threshold`."""
    return float(np.mean(self.nearest_distinct[signal] >= threshold))

  def threshold(self, signal: str, *, max_partner_rate: float) -> float:
    """The smallest threshold of GRID at which at most `max_partner_rate` of the originals
    have a partner (1.0 if none of GRID is)."""
    for threshold in GRID:
      if self.partner_rate(signal, threshold) <= max_partner_rate:
        return float(threshold)
    return 1.0

  def partners(self, signal: str, threshold: float) -> list[tuple[int, int, float]]:
    """(original, its most similar other original, similarity) at or above `threshold`,
    each pair once, most similar first: what to look at before trusting a threshold."""
    found = {}
    for index in np.flatnonzero(self.nearest_distinct[signal] >= threshold):
      other = int(self.nearest_index[signal][index])
      found[(min(index, other), max(index, other))] = float(
          self.nearest_distinct[signal][index])
    return sorted(((*pair, value) for pair, value in found.items()), key=lambda p: -p[2])

  def table(self, signal: str, thresholds) -> str:
    """Recall per kind and partner rate at each of `thresholds`, as text lines."""
    kinds = list(self.copy_similarity[signal])
    lines = [f'{signal:>9} threshold  ' + '  '.join(f'{kind:>7}' for kind in kinds)
             + '  originals with a partner']
    for threshold in thresholds:
      lines.append(f'{threshold:>19.3f}  ' + '  '.join(
          f'{self.recall(signal, kind, threshold):>7.2f}' for kind in kinds)
          + f'  {self.partner_rate(signal, threshold):.4f}')
    return '\n'.join(lines)


def measure(paths: list[str], scratch_dir: str, *,
            extract: Callable[[tf.Tensor], tf.Tensor], image_size: int, batch_size: int,
            crop: float, colour_distance: float, neighbours: int, copies_per_kind: int,
            seed: int) -> Calibration:
  """Measures copies' and distinct images' similarities (see the module docstring).

  Args:
    paths: image files of distinct pictures, the originals.
    scratch_dir: where the copies are written.
    extract: float32 images [B, S, S, 3] in 0-255 -> float32 pooled features [B, D].
    image_size: S.
    batch_size: images per feature batch.
    crop: config.audit.near_duplicate_crop (the copies' crop and the descriptors' windows).
    colour_distance: config.audit.near_duplicate_colour_distance (the pixel signal's gate).
    neighbours: config.audit.neighbours (the candidates of the distinct similarities).
    copies_per_kind: originals copied per kind (drawn at random for each kind).
    seed: seeds which originals are copied and how.
  """
  rng = np.random.default_rng(seed)
  scratch = pathlib.Path(scratch_dir)
  scratch.mkdir(parents=True, exist_ok=True)
  sources, copy_paths = {}, []
  for kind in COPY_KINDS:
    sources[kind] = rng.choice(len(paths), min(copies_per_kind, len(paths)), replace=False)
    for number, index in enumerate(sources[kind]):
      data, suffix = near_copy(pathlib.Path(paths[index]).read_bytes(), kind, rng, crop=crop)
      copy_paths.append(str(scratch / f'{kind}_{number}{suffix}'))
      pathlib.Path(copy_paths[-1]).write_bytes(data)
  every = list(paths) + copy_paths
  split = dataset.file_split(every, np.zeros(len(every), np.int64), 1)  # labels unused
  described = descriptors_lib.compute(split, crop=crop)
  embeddings = search.normalise(features_lib.compute_features(
      extract, split, image_size=image_size, batch_size=batch_size)[0])

  def similarities(pairs):
    return {'backbone': search.pair_similarity(embeddings, pairs),
            'pixels': descriptors_lib.pixel_similarity(described, pairs,
                                                       max_colour_distance=colour_distance)}

  count, start = len(paths), len(paths)
  copy_similarity = {signal: {} for signal in SIGNALS}
  for kind in COPY_KINDS:
    copies = np.arange(start, start + len(sources[kind]))
    start += len(sources[kind])
    for signal, values in similarities(np.stack([copies, sources[kind]], axis=1)).items():
      copy_similarity[signal][kind] = values
  candidates = duplicates.candidate_pairs(
      search.nearest_neighbours(embeddings[:count], neighbours)[0],
      search.nearest_neighbours(described.thumbnails[:count], neighbours)[0])
  nearest, nearest_index = {}, {}
  for signal, values in similarities(candidates).items():
    # Each candidate pair seen from both ends, best first: the first row per image wins.
    ends = np.concatenate([candidates, candidates[:, ::-1]])
    both = np.concatenate([values, values])
    order = np.lexsort((-both, ends[:, 0]))
    images, first = np.unique(ends[order, 0], return_index=True)
    nearest[signal] = np.full(count, -1.0, np.float32)
    nearest_index[signal] = np.full(count, -1, np.int64)
    nearest[signal][images] = both[order][first]
    nearest_index[signal][images] = ends[order, 1][first]
  return Calibration(copy_similarity, nearest, nearest_index)
