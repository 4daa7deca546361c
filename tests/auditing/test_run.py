"""The audit on folders with planted faults of every kind: exact copies (byte-identical, and
the same pixels saved again) within and across classes and into a test folder; near copies
re-encoded, resized, cropped and mirrored; images moved to a wrong class; images of no
class. Thresholds are the config defaults, and the asserted rates sit below what was
measured (noted beside each) by a stated margin."""

import io
import json
import pathlib

import numpy as np
import pytest

from tests.helpers import SHARED_WEIGHTS, tiny_config
from tftransfer.auditing import run, thresholds


def _png(pixels):
  from PIL import Image
  buffer = io.BytesIO()
  Image.fromarray(pixels).save(buffer, 'PNG')
  return buffer.getvalue()


def _resaved(data):
  """The same pixels in other bytes: a PNG written again at another compression level, with
  a text chunk."""
  from PIL import Image, PngImagePlugin
  info = PngImagePlugin.PngInfo()
  info.add_text('Comment', 'saved again')
  buffer = io.BytesIO()
  Image.open(io.BytesIO(data)).save(buffer, 'PNG', compress_level=1, pnginfo=info)
  assert buffer.getvalue() != data
  return buffer.getvalue()


def plant(originals: dict[str, list[bytes]], root: pathlib.Path, *, copies: int,
          moved_fraction: float, outliers: list[bytes], test_per_class: int, seed: int = 0):
  """Writes root/train and root/test from {class: [encoded image, ...]} with faults planted
  from disjoint originals; returns what was planted (paths as the audit reports them)."""
  rng = np.random.default_rng(seed)
  classes = sorted(originals)
  pool = [(name, index) for name in classes for index in range(len(originals[name]))]
  pool = [pool[i] for i in rng.permutation(len(pool))]
  kinds = ('exact_within', 'exact_other_bytes', 'exact_across', 'exact_test', 'jpeg', 'resize',
           'crop', 'mirror')
  sources = {kind: [pool.pop() for _ in range(copies)] for kind in kinds}
  test = {name: [] for name in classes}
  for name, index in list(pool):
    if len(test[name]) < test_per_class:
      test[name].append(index)
      pool.remove((name, index))
  truth = {'copies': [], 'moved': [], 'outliers': []}

  def write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return str(path)

  for name in classes:
    for index in test[name]:
      write(root / 'test' / name / f'{index}.png', originals[name][index])
  moved = set(rng.choice(len(pool), round(moved_fraction * len(pool)), replace=False))
  for number, (name, index) in enumerate(pool):
    if number in moved:
      wrong = classes[(classes.index(name) + 1 + number % (len(classes) - 1)) % len(classes)]
      truth['moved'].append(write(root / 'train' / wrong / f'moved_{name}_{index}.png',
                                  originals[name][index]))
    else:
      write(root / 'train' / name / f'{index}.png', originals[name][index])
  for kind, chosen in sources.items():
    for number, (name, index) in enumerate(chosen):
      data = originals[name][index]
      original = write(root / 'train' / name / f'{index}.png', data)
      folder = root / ('test' if kind == 'exact_test' else 'train')
      target = classes[(classes.index(name) + 1) % len(classes)] if kind == 'exact_across' \
          else name
      if kind == 'exact_other_bytes':
        copy = write(folder / target / f'{kind}_{number}.png', _resaved(data))
      elif kind.startswith('exact'):
        copy = write(folder / target / f'{kind}_{number}.png', data)
      else:
        data, suffix = thresholds.near_copy(data, kind, rng)
        copy = write(folder / target / f'{kind}_{number}{suffix}', data)
      truth['copies'].append({'kind': kind, 'copy': copy, 'original': original})
  for number, data in enumerate(outliers):
    truth['outliers'].append(write(root / 'train' / classes[number % len(classes)] /
                                   f'outlier_{number}.png', data))
  return truth


def score(findings: dict, truth: dict) -> dict:
  """Recall per planted kind, false groups, and precision at the number planted."""
  def member(kind):
    return {image['path']: number for number, group in enumerate(findings[kind])
            for image in group['images']}
  exact, near = member('exact_duplicates'), member('near_duplicates')

  def together(copy, groups):
    return copy['copy'] in groups and groups.get(copy['original']) == groups[copy['copy']]
  recall = {}
  for kind in {copy['kind'] for copy in truth['copies']}:
    planted = [copy for copy in truth['copies'] if copy['kind'] == kind]
    found = [together(c, exact) or (not kind.startswith('exact') and together(c, near))
             for c in planted]
    recall[kind] = float(np.mean(found))
  planted = {copy['copy'] for copy in truth['copies']}
  unplanted = {kind: [len(group['images']) for group in findings[kind]
                      if not any(image['path'] in planted for image in group['images'])]
               for kind in ('exact_duplicates', 'near_duplicates')}
  false_groups = {kind: len(sizes) for kind, sizes in unplanted.items()}
  false_images = {kind: sum(sizes) for kind, sizes in unplanted.items()}
  largest = max((len(group['images']) for group in findings['near_duplicates']), default=0)
  moved, odd = set(truth['moved']), set(truth['outliers'])
  suspects = [suspect['path'] for suspect in findings['label_errors']][:len(moved)]
  outlying = [outlier['path'] for outlier in findings['outliers']]
  return {'recall': recall, 'false_groups': false_groups, 'false_group_images': false_images,
          'largest_near_group': largest,
          'label_precision_at_planted': sum(p in moved for p in suspects) / len(moved),
          'outliers_found': sum(p in odd for p in outlying),
          'outliers_false': sum(p not in odd for p in outlying)}


_CLASS_COLOURS = np.array([[220, 40, 40], [40, 200, 60], [50, 70, 230], [230, 210, 40],
                           [200, 60, 210]], float)


def _blob_originals(per_class, side=48):
  """{class: [PNG, ...]}: a disc of the class's colour (jittered) on a smooth random
  background, at a random place and size: photo-like low frequencies, distinct per image."""
  rng = np.random.default_rng(0)
  grid_y, grid_x = np.mgrid[0:side, 0:side] / side
  originals = {}
  for label, colour in enumerate(_CLASS_COLOURS):
    images = []
    for _ in range(per_class):
      corners = rng.uniform(30, 160, (2, 2, 3))
      background = (corners[0, 0] * (1 - grid_y)[..., None] * (1 - grid_x)[..., None]
                    + corners[0, 1] * (1 - grid_y)[..., None] * grid_x[..., None]
                    + corners[1, 0] * grid_y[..., None] * (1 - grid_x)[..., None]
                    + corners[1, 1] * grid_y[..., None] * grid_x[..., None])
      centre, radius = rng.uniform(0.25, 0.75, 2), rng.uniform(0.15, 0.35)
      disc = (grid_y - centre[0]) ** 2 + (grid_x - centre[1]) ** 2 < radius ** 2
      image = np.where(disc[..., None], colour + rng.normal(0, 15, 3), background)
      image += rng.normal(0, 4, image.shape)
      images.append(_png(image.clip(0, 255).astype(np.uint8)))
    originals[f'class_{label}'] = images
  return originals


def _noise_outliers(count, side=48):
  """Images of no class: uniform colour noise."""
  rng = np.random.default_rng(1)
  return [_png(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)) for _ in range(count)]


_COPIES = 10  # planted of each duplicate kind
# Noise images planted: more than config.audit.neighbours, so they are each other's nearest
# neighbours and only their distance to every class centroid tells them apart.
_OUTLIERS = 12


@pytest.fixture(scope='module')
def planted(tmp_path_factory):
  """A generated folder with planted faults, audited once through the command's function
  with the real pretrained MobileNet-0.25 at 96 px (features of random weights carry no
  class: their linear model is at chance, so label errors could not be ranked)."""
  if not SHARED_WEIGHTS.is_file():
    pytest.skip(f'needs {SHARED_WEIGHTS}')
  root = tmp_path_factory.mktemp('planted')
  truth = plant(_blob_originals(80), root, copies=_COPIES, moved_fraction=0.05,
                outliers=_noise_outliers(_OUTLIERS), test_per_class=4)
  config = tiny_config(data__source='folder', data__path=str(root / 'train'),
                       data__max_examples_per_class=0, model__weights=str(SHARED_WEIGHTS),
                       model__image_size=96)
  with config.unlocked():
    config.audit.max_listed = 1000
  findings = run.audit_workdir(str(root / 'audit'), config=config,
                               test_dir=str(root / 'test'),
                               exclusions_file=str(root / 'exclusions.txt'))
  return root, truth, findings


def test_exact_duplicates_are_found_exactly(planted):
  _, truth, findings = planted
  measured = score(findings, truth)
  for kind in ('exact_within', 'exact_other_bytes', 'exact_across', 'exact_test'):
    assert measured['recall'][kind] == 1.0, kind
  assert measured['false_groups']['exact_duplicates'] == 0
  # A byte-identical copy's group says so; a picture saved again (other bytes) is found by
  # its decoded pixels alone.
  same_bytes = {image['path']: group['same_bytes'] for group in findings['exact_duplicates']
                for image in group['images']}
  for copy in truth['copies']:
    if copy['kind'].startswith('exact'):
      assert same_bytes[copy['copy']] == (copy['kind'] != 'exact_other_bytes'), copy
  conflicts = [g for g in findings['exact_duplicates'] if g['label_conflict']]
  assert len(conflicts) == _COPIES == findings['counts']['exact_label_conflicts']
  leaks = [g for g in findings['exact_duplicates'] if 'test' in g['splits']]
  assert len(leaks) == _COPIES and all(g['cross_split'] for g in leaks)
  assert findings['counts']['test_with_copy_in_train_or_val'] >= _COPIES


def test_near_copies_are_found_with_few_false_groups(planted):
  _, truth, findings = planted
  measured = score(findings, truth)
  print(json.dumps(measured))
  # Measured (10 copies of each kind): jpeg 0.7, resize 1.0, crop 0.9, mirror 1.0. Without
  # the crop windows crop was 0.6. Groups are complete-linkage (every two members a near
  # pair): the largest holds 2 images. With connected components (union-find) instead, the
  # near pairs chained into one group of 249 images. Complete linkage with the backbone's
  # pairs left 72 groups of 162 images with no planted copy: the backbone paired half of
  # these alike generated pictures (smooth gradients with one disc), so it is not judged
  # here (findings.crowded), which leaves 13 groups of 26 images, pixel pairs (issue 30).
  minimum = {'jpeg': 0.5, 'resize': 0.8, 'crop': 0.7, 'mirror': 0.8}
  for kind, recall in minimum.items():
    assert measured['recall'][kind] >= recall, (kind, measured)
  assert measured['largest_near_group'] <= 20, measured
  assert measured['false_group_images']['near_duplicates'] <= 40, measured


def test_moved_images_rank_above_untouched_ones(planted):
  _, truth, findings = planted
  measured = score(findings, truth)
  # Measured 0.53 of the 5 % (15) moved images ranked first (chance: 0.05).
  assert measured['label_precision_at_planted'] >= 0.4, measured


def test_outliers_are_flagged(planted):
  _, truth, findings = planted
  measured = score(findings, truth)
  # Measured: all 12 noise images flagged (by their distance to every class centroid: they
  # are each other's nearest neighbours), with 9 generated images as well.
  assert measured['outliers_found'] >= 10 and measured['outliers_false'] <= 14, measured


def test_audit_json_thumbnails_and_exclusions(planted):
  root, truth, findings = planted
  written = json.loads((root / 'audit' / 'audit.json').read_text())
  assert written['counts'] == findings['counts']
  from PIL import Image
  sheet = Image.open(root / 'audit' / 'audit_thumbnails.png')
  assert sheet.format == 'PNG' and sheet.mode == 'P'  # a palette: a third of the bytes
  # To pretrained MobileNet these generated pictures look alike (half of them would be in a
  # backbone near pair), so near duplicates are judged by their pixels alone, and it says so.
  assert 'look alike' in written['not_judged']['backbone_near_duplicates']
  assert all(set(group['similarity']) == {'pixels'} == set(group['thresholds'])
             for group in findings['near_duplicates'])
  listed = [line for line in (root / 'exclusions.txt').read_text().splitlines()
            if line and not line.startswith('#')]
  assert len(listed) == len(set(listed))
  assert not any(line.startswith('/') or line.startswith('..') for line in listed)
  # Of each same-label exact group inside train and validation one copy stays; of a group
  # with conflicting labels none; of a group holding a test image every training copy (the
  # suspects, outliers and near duplicates are listed by their own rules).
  suspects = {item['path'] for item in findings['label_errors'] + findings['outliers']}
  suspects |= {image['path'] for group in findings['near_duplicates']
               for image in group['images']}
  for group in findings['exact_duplicates']:
    paths = [str(pathlib.Path(i['path']).relative_to(root / 'train')) for i in group['images']
             if i['split'] != 'test' and i['path'] not in suspects]
    kept = [path for path in paths if path not in listed]
    if group['label_conflict'] or 'test' in group['splits']:
      assert not kept, group
    elif len(paths) == len(group['images']):
      assert len(kept) == 1, group
