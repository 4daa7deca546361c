"""The near-duplicate thresholds' calibration: copies, the measurement, the rule, and (with
../shared) the config defaults re-derived from CIFAR-10 by scripts/calibrate_audit.py."""

import importlib.util
import io

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from tests.helpers import REPO, SHARED_TRAIN, SHARED_WEIGHTS, smooth_picture
from tftransfer import config as config_lib
from tftransfer.auditing import thresholds


def _smooth_png(seed):
  picture = smooth_picture(seed)
  buffer = io.BytesIO()
  Image.fromarray(picture).save(buffer, 'PNG')
  return picture, buffer.getvalue()


def _decoded(data):
  return np.asarray(Image.open(io.BytesIO(data)).convert('RGB'))


def test_near_copies_are_what_their_kind_says():
  picture, data = _smooth_png(0)
  rng = np.random.default_rng(0)
  mirrored, suffix = thresholds.near_copy(data, 'mirror', rng)
  assert suffix == '.png' and np.array_equal(_decoded(mirrored), picture[:, ::-1])
  cropped = _decoded(thresholds.near_copy(data, 'crop', rng)[0])
  assert cropped.shape == (29, 29, 3)
  assert any(np.array_equal(cropped, picture[top:top + 29, left:left + 29])
             for top in range(4) for left in range(4))
  resized = _decoded(thresholds.near_copy(data, 'resize', rng)[0])
  assert 16 <= resized.shape[0] == resized.shape[1] <= 48
  jpeg, suffix = thresholds.near_copy(data, 'jpeg', rng)
  assert suffix == '.jpg' and jpeg[:2] == b'\xff\xd8' and _decoded(jpeg).shape == picture.shape
  with pytest.raises(ValueError, match='blur'):
    thresholds.near_copy(data, 'blur', rng)


def test_threshold_is_the_smallest_that_pairs_few_enough_originals():
  measured = thresholds.Calibration(
      copy_similarity={'pixels': {'crop': np.array([0.97, 0.985, 0.995, 1.0])}},
      nearest_distinct={'pixels': np.array([0.5, 0.9, 0.9812, 0.9812, 0.991, 0.991] + [0.6] * 94)},
      nearest_index={'pixels': np.array([1, 0, 3, 2, 5, 4] + [0] * 94)})
  assert measured.partner_rate('pixels', 0.99) == 0.02
  assert measured.recall('pixels', 'crop', 0.99) == 0.5
  # 6 % of originals have a partner up to 0.9, 4 % up to 0.98, 2 % up to 0.99, none above.
  assert measured.threshold('pixels', max_partner_rate=0.04) == 0.905
  assert measured.threshold('pixels', max_partner_rate=0.03) == 0.985
  assert measured.threshold('pixels', max_partner_rate=0.0) == 0.995
  assert measured.partners('pixels', 0.98) == [(4, 5, pytest.approx(0.991)),
                                               (2, 3, pytest.approx(0.9812))]
  assert '0.990     0.50  0.0200' in measured.table('pixels', [0.99])


def test_measure_pairs_each_copy_with_its_original(tmp_path):
  (tmp_path / 'originals').mkdir()
  paths = []
  for seed in range(40):
    paths.append(str(tmp_path / 'originals' / f'{seed}.png'))
    (tmp_path / 'originals' / f'{seed}.png').write_bytes(_smooth_png(seed)[1])

  def extract(images):  # 'features': the images' colours on a 4x4 grid
    return tf.reshape(tf.image.resize(images, (4, 4), method='area'), [tf.shape(images)[0], -1])

  measured = thresholds.measure(paths, str(tmp_path / 'copies'), extract=extract,
                                 image_size=32, batch_size=16, crop=0.1, colour_distance=16,
                                 neighbours=5, copies_per_kind=6, seed=0)
  pixels = measured.copy_similarity['pixels']
  assert set(pixels) == set(thresholds.COPY_KINDS) and len(pixels['crop']) == 6
  # Mirror-symmetric thumbnails: a mirrored copy's is its original's.
  np.testing.assert_allclose(pixels['mirror'], 1.0, atol=1e-5)
  # Measured: resize >= 0.9997, JPEG >= 0.9935, crop 0.961-0.99997.
  assert min(pixels[kind].min() for kind in ('resize', 'jpeg', 'crop')) > 0.95, pixels
  assert measured.copy_similarity['backbone']['resize'].min() > 0.99
  # Distinct smooth pictures are far apart, each with its most similar other picture.
  assert measured.nearest_distinct['pixels'].max() < 0.85
  assert np.all(measured.nearest_index['pixels'] != np.arange(40))
  assert measured.threshold('pixels', max_partner_rate=0.0) <= 0.85


def _calibrate_script():
  spec = importlib.util.spec_from_file_location('calibrate_audit',
                                                REPO / 'scripts' / 'calibrate_audit.py')
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@pytest.mark.shared_data
def test_cifar10_calibration_rederives_the_config_defaults():
  script = _calibrate_script()
  flags = script.FLAGS
  _, derived, _, _ = script.derive(
      SHARED_TRAIN, SHARED_WEIGHTS, per_class=flags['per_class'].default,
      copies=flags['copies'].default, seed=flags['seed'].default,
      partner_rates={'backbone': flags['backbone_partner_rate'].default,
                     'pixels': flags['pixels_partner_rate'].default})
  defaults = config_lib.default_config().audit
  assert derived == {'backbone': defaults.near_duplicate_similarity,
                     'pixels': defaults.near_duplicate_pixel_similarity}
