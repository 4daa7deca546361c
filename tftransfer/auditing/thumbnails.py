"""The audit's thumbnail sheet: a PNG with one row per finding, its images side by side.

Rows, most telling first: exact duplicates with conflicting labels or across splits, then
near duplicates likewise, then the other duplicate groups, the most likely label errors and
the farthest outliers; each image captioned with its split and label (and, for a suspect,
the suggested label).
"""

import io
import os

from matplotlib.figure import Figure
import numpy as np
from PIL import Image
import tensorflow as tf

from tftransfer.data import image_ops

_SIDE = 64  # pixels each thumbnail is drawn at
_PER_ROW = 6  # images shown per finding
_DPI = 90  # the sheet's pixels per inch


def _image(path: str) -> np.ndarray:
  # A finding's file passed the folder scan's size limit already.
  image = image_ops.decode_image(tf.io.read_file(os.fsencode(path)), max_pixels=0)
  return tf.cast(image_ops.center_crop_resize(image, _SIDE), tf.uint8).numpy()


def rows(findings: dict, *, per_kind: int) -> list[tuple[str, list[tuple[str, str]]]]:
  """(row title, [(path, caption), ...]) of the findings to draw, `per_kind` per kind."""
  chosen = []
  for kind in ('exact_duplicates', 'near_duplicates'):
    groups = sorted(findings[kind], key=lambda g: not (g['label_conflict'] or g['cross_split']))
    for group in groups[:per_kind]:
      flags = [flag for flag, on in (('labels conflict', group['label_conflict']),
                                     ('across splits', group['cross_split'])) if on]
      flags += [f'{signal} {value:.3f}' for signal, value in group.get('similarity', {}).items()]
      title = kind.replace('_', ' ')[:-1] + (f' ({", ".join(flags)})' if flags else '')
      chosen.append((title, [(image['path'], f"{image['split']}: {image['label']}")
                             for image in group['images'][:_PER_ROW]]))
  suspects = findings['label_errors'][:per_kind * _PER_ROW]
  for start in range(0, len(suspects), _PER_ROW):
    chosen.append(('likely label errors (given -> suggested)', [
        (s['path'], f"{s['label']} -> {s['suggested']}\nwrong {s['confidence']:.2f}")
        for s in suspects[start:start + _PER_ROW]]))
  outlying = findings['outliers'][:per_kind * _PER_ROW]
  for start in range(0, len(outlying), _PER_ROW):
    chosen.append(('outliers', [(o['path'], f"{o['split']}: {o['label']}\nz={o['z']:.1f}")
                                for o in outlying[start:start + _PER_ROW]]))
  return chosen


def write_sheet(findings: dict, path, *, per_kind: int = 2) -> bool:
  """Draws `rows(findings)` as a PNG into `path` (a file name or a binary file): one
  sub-figure per finding, its title above its images, in at most 256 colours (photos in a
  palette PNG are a third of the size). False (nothing written) when there is nothing to
  draw or the images are not files (TFDS, TFRecord and synthetic sources)."""
  chosen = [(title, images) for title, images in rows(findings, per_kind=per_kind)
            if all(os.path.isfile(image_path) for image_path, _ in images)]
  if not chosen:
    return False
  figure = Figure(figsize=(1.1 * _PER_ROW, 1.45 * len(chosen)), dpi=_DPI,
                  layout='constrained')
  sub_figures = figure.subfigures(len(chosen), 1, squeeze=False)[:, 0]
  for (title, images), row in zip(chosen, sub_figures):
    row.suptitle(title, x=0.01, ha='left', fontsize=8, fontweight='bold')
    for column, axes in enumerate(row.subplots(1, _PER_ROW)):
      axes.set_axis_off()
      if column < len(images):
        image_path, caption = images[column]
        axes.imshow(_image(image_path))
        axes.set_title(caption, fontsize=6.5)
  rendered = io.BytesIO()
  figure.savefig(rendered, format='png')
  palette = Image.open(rendered).convert('RGB').quantize(256)
  palette.save(path, format='PNG', optimize=True)
  return True
