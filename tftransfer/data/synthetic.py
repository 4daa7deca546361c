"""Procedurally generated classification tasks, for offline runs and tests.

Two texture tasks share one generator but no classes: 'textures_source' (10 pattern families,
many labels) is what a small backbone is pretrained on; 'textures_target' (5 other families,
few labels) is what it is transferred to. Whether features learned on the first help with the
second is exactly the question transfer learning answers, asked without any download.

A third task, 'patches', decides the class by a small coloured square at a random place on
grey clutter, and `patch_boxes` says where each square is: the ground truth against which
Grad-CAM's heat maps are checked (evaluation/gradcam.py).

Images are 32x32 RGB: a two-colour pattern of random scale, phase and colours with pixel
noise. Orientation is part of some classes (stripes at 45 vs 135 degrees), so runs on these
tasks must not flip images. Every split is a pure function of (task, split), independent of
the run's seed, so different runs see identical data.
"""

import dataclasses
import zlib

import numpy as np

from tftransfer import errors

IMAGE_SIZE = 32
_GRID = np.arange(IMAGE_SIZE) + 0.5
_Y, _X = np.meshgrid(_GRID, _GRID, indexing='ij')


def _rotated(theta):
  return (_X * np.cos(theta) + _Y * np.sin(theta), -_X * np.sin(theta) + _Y * np.cos(theta))


def _stripes(degrees):
  def pattern(rng):
    u, _ = _rotated(np.deg2rad(degrees + rng.normal(0, 6)))
    return np.sin(2 * np.pi * u / rng.uniform(4, 9) + rng.uniform(0, 2 * np.pi)) > 0
  return pattern


def _checks(base_angle):
  def pattern(rng):
    u, v = _rotated(base_angle + rng.normal(0, 0.1))
    period = rng.uniform(4, 9)
    return (np.floor(u / period) + np.floor(v / period)) % 2 == 0
  return pattern


def _dots(rng):
  u, v = _rotated(rng.uniform(0, np.pi))
  period = rng.uniform(6, 10)
  return ((np.mod(u, period) - period / 2) ** 2 + (np.mod(v, period) - period / 2) ** 2
          < (period * rng.uniform(0.2, 0.3)) ** 2)


def _centre(rng, low, high):
  cx, cy = rng.uniform(low, high, size=2)
  return np.hypot(_X - cx, _Y - cy), np.arctan2(_Y - cy, _X - cx)


def _rings(rng):
  radius, _ = _centre(rng, 4, 28)
  return np.sin(2 * np.pi * radius / rng.uniform(4, 8)) > 0


def _rays(rng):
  _, angle = _centre(rng, 8, 24)
  return np.sin(angle * rng.integers(5, 9) + rng.uniform(0, 2 * np.pi)) > 0


def _spiral(rng):
  radius, angle = _centre(rng, 8, 24)
  return np.sin(angle * 2 + 2 * np.pi * radius / rng.uniform(5, 9)) > 0


def _grid(rng):
  u, v = _rotated(rng.normal(0, 0.1))
  period, width = rng.uniform(5, 9), rng.uniform(1, 2)
  return (np.mod(u, period) < width) | (np.mod(v, period) < width)


def _hatch(rng):
  angle = rng.uniform(0, np.pi)
  u, _ = _rotated(angle)
  v, _ = _rotated(angle + np.pi / 2 + rng.normal(0, 0.1))
  period = rng.uniform(5, 8)
  return (np.mod(u, period) < 1.5) | (np.mod(v, period) < 1.5)


def _blocks(rng):
  return np.kron(rng.normal(size=(4, 4)), np.ones((8, 8))) > 0


def _zigzag(rng):
  u, v = _rotated(rng.normal(0, 0.15))
  period, amplitude = rng.uniform(5, 9), rng.uniform(4, 8)
  offset = np.abs(np.mod(u / period, 2) - 1) * amplitude
  return np.sin(2 * np.pi * (v + offset) / rng.uniform(5, 9)) > 0


def _waves(rng):
  u, v = _rotated(rng.uniform(0, np.pi))
  bend = 2.5 * np.sin(2 * np.pi * u / rng.uniform(10, 16))
  return np.sin(2 * np.pi * (v + bend) / rng.uniform(5, 8)) > 0


_PATTERNS = {
    'stripes_0': _stripes(0), 'stripes_45': _stripes(45), 'stripes_90': _stripes(90),
    'stripes_135': _stripes(135), 'checks': _checks(0.0), 'dots': _dots, 'rings': _rings,
    'grid': _grid, 'blocks': _blocks, 'rays': _rays,
    'zigzag': _zigzag, 'spiral': _spiral, 'diamonds': _checks(np.pi / 4), 'waves': _waves,
    'hatch': _hatch,
}


# The 'patches' task's class colours (RGB): saturated, so grey clutter never looks like one.
_PATCH_COLOURS = {'red': (220, 40, 40), 'green': (40, 200, 60), 'blue': (50, 70, 230),
                  'yellow': (230, 210, 30)}


@dataclasses.dataclass(frozen=True)
class Task:
  """A synthetic classification task: its classes and examples per class in each split."""
  class_names: tuple[str, ...]
  examples_per_class: dict[str, int]
  # > 0: the class is a coloured square of this side (pixels) at a random place on grey
  # clutter; 0: the class is a texture filling the whole image.
  patch_size: int = 0


TASKS = {
    'textures_source': Task(('stripes_0', 'stripes_45', 'stripes_90', 'stripes_135', 'checks',
                             'dots', 'rings', 'grid', 'blocks', 'rays'),
                            {'train': 600, 'validation': 100}),
    'textures_target': Task(('zigzag', 'spiral', 'diamonds', 'waves', 'hatch'),
                            {'train': 200, 'validation': 100}),
    'patches': Task(tuple(_PATCH_COLOURS), {'train': 500, 'validation': 50}, patch_size=10),
}


def get_task(name: str) -> Task:
  """Returns the task called `name`, or raises naming the valid choices."""
  if name not in TASKS:
    raise errors.InvalidValueError(f'Unknown synthetic task config.data.name={name!r}; valid: '
                                   f'{", ".join(sorted(TASKS))}.')
  return TASKS[name]


def _render(pattern: str, rng: np.random.Generator) -> np.ndarray:
  """Draws one pattern in two random, clearly different colours: uint8 [32, 32, 3]."""
  mask = _PATTERNS[pattern](rng)
  background = rng.uniform(0, 255, size=3)
  foreground = rng.uniform(0, 255, size=3)
  while np.abs(foreground - background).sum() < 150:
    foreground = rng.uniform(0, 255, size=3)
  image = np.where(mask[..., None], foreground, background)
  image += rng.normal(0, 10, size=image.shape)
  return np.clip(np.round(image), 0, 255).astype(np.uint8)


def _render_patch(colour: str, size: int, rng: np.random.Generator
                  ) -> tuple[np.ndarray, tuple[int, int, int, int]]:
  """Grey clutter (blocks and noise) with a `size`-pixel square of `colour` somewhere on it:
  (uint8 [32, 32, 3], the square's (top, left, bottom, right), bottom and right exclusive)."""
  clutter = np.kron(rng.uniform(40, 215, size=(8, 8)), np.ones((4, 4)))
  image = np.repeat(clutter[..., None], 3, axis=-1) + rng.normal(0, 12, size=(32, 32, 1))
  top, left = rng.integers(0, IMAGE_SIZE - size + 1, size=2)
  image[top:top + size, left:left + size] = (np.asarray(_PATCH_COLOURS[colour])
                                             + rng.normal(0, 12, size=(size, size, 3)))
  return (np.clip(np.round(image), 0, 255).astype(np.uint8),
          (int(top), int(left), int(top + size), int(left + size)))


def _generate(name: str, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(images, labels, boxes [N, 4]) of one split; a texture's box is the whole image."""
  task = get_task(name)
  if split not in task.examples_per_class:
    raise errors.InvalidValueError(
        f'Synthetic task {name!r} has splits {sorted(task.examples_per_class)}, '
        f'not {split!r}.')
  rng = np.random.default_rng(zlib.crc32(f'{name}/{split}'.encode()))
  labels = np.tile(np.arange(len(task.class_names), dtype=np.int32),
                   task.examples_per_class[split])
  if task.patch_size:
    images, boxes = zip(*(_render_patch(task.class_names[label], task.patch_size, rng)
                          for label in labels))
  else:
    images = [_render(task.class_names[label], rng) for label in labels]
    boxes = [(0, 0, IMAGE_SIZE, IMAGE_SIZE)] * len(labels)
  return np.stack(images), labels, np.asarray(boxes, np.int32).reshape(-1, 4)


def generate(name: str, split: str) -> tuple[np.ndarray, np.ndarray]:
  """Returns (uint8 images [N, 32, 32, 3], int32 labels [N]) of one split, class-interleaved."""
  images, labels, _ = _generate(name, split)
  return images, labels


def patch_boxes(name: str, split: str) -> np.ndarray:
  """Where the class is drawn in each image of `generate(name, split)`: int32 [N, 4] of
  (top, left, bottom, right) in pixels of the 32x32 image, bottom and right exclusive (the
  whole image for texture tasks)."""
  return _generate(name, split)[2]
