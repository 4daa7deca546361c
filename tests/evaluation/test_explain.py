"""tftransfer-explain: the run's top-k and a Grad-CAM PNG for any image file."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tftransfer.evaluation import explain
from tests.helpers import encode_image, expected_probabilities, random_image


@pytest.fixture
def images(tmp_path):
  paths = []
  for seed, name in enumerate(('a/photo.png', 'b/photo.png', 'wide.jpg')):
    path = tmp_path / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(encode_image(random_image(40, 60 + seed, seed=seed),
                                  'JPEG' if name.endswith('jpg') else 'PNG'))
    paths.append(path)
  broken = tmp_path / 'broken.jpg'
  broken.write_bytes(b'not an image')
  return paths, broken


def test_explain_files_matches_the_model_and_writes_overlays(trained, images, tmp_path):
  paths, broken = images
  results = list(explain.explain_files(trained, [str(p) for p in [*paths, broken]],
                                       str(tmp_path / 'out'), top_k=3))
  assert [r['path'] for r in results] == [str(p) for p in [*paths, broken]]
  assert 'error' in results[-1] and 'class' not in results[-1]
  expected = expected_probabilities(trained.model, [p.read_bytes() for p in paths])
  for result, probabilities in zip(results, expected):
    ranked = np.argsort(-probabilities)[:3]
    assert [k['class'] for k in result['top_k']] == [trained.class_names[i] for i in ranked]
    np.testing.assert_allclose([k['score'] for k in result['top_k']], probabilities[ranked],
                               atol=1e-4)
    assert result['explained'] == result['class'] == result['top_k'][0]['class']
    overlay = tf.io.decode_png(tf.io.read_file(result['gradcam']))
    assert overlay.shape == (32, 32, 3)
  # Two files named photo.png get two overlays.
  assert len({result['gradcam'] for result in results[:-1]}) == 3


def test_an_image_with_a_long_name_is_explained_and_so_are_the_others(trained, tmp_path):
  # Issue 28, kind 2: '<250-byte stem>.gradcam.png' was too long to write, and it stopped
  # the images after it.
  paths = []
  for seed, stem in enumerate(('x' * 246, 'x' * 246 + 'y', 'short')):
    path = tmp_path / 'in' / f'{stem}.png'
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(encode_image(random_image(40, 40, seed=seed), 'PNG'))
    paths.append(str(path))
  results = list(explain.explain_files(trained, paths, str(tmp_path / 'out'), top_k=1))
  assert [r['path'] for r in results] == paths and not any('error' in r for r in results)
  written = sorted(os.listdir(tmp_path / 'out'))
  assert len(written) == 3 and 'short.gradcam.png' in written
  assert all(len(name.encode()) <= 255 and name.endswith('.gradcam.png') for name in written)


def test_explain_files_refuses_an_unknown_class(trained, images, tmp_path):
  paths, _ = images
  with pytest.raises(ValueError, match=r"--class_name='unicorn' is not a class"):
    list(explain.explain_files(trained, [str(paths[0])], str(tmp_path), class_name='unicorn'))
  result, = explain.explain_files(trained, [str(paths[0])], str(tmp_path),
                                  class_name=trained.class_names[-1])
  assert result['explained'] == trained.class_names[-1]


@pytest.mark.slow
def test_the_explain_command(tiny_run, images, tmp_path):
  paths, broken = images
  command = [sys.executable, '-m', 'tftransfer.explain', f'--workdir={tiny_run}',
             f'--output_dir={tmp_path / "why"}', '--top_k=2']
  result = subprocess.run(command + [str(paths[0]), str(broken)], capture_output=True,
                          text=True, timeout=300)
  assert result.returncode == 1, result.stderr[-3000:]
  lines = [json.loads(line) for line in result.stdout.splitlines()]
  assert len(lines[0]['top_k']) == 2 and 'error' in lines[1]
  assert (tmp_path / 'why' / 'photo.gradcam.png').is_file()
  assert result.stderr.splitlines()[-1] == ('1 of 2 images could not be read (see their '
                                            '"error").')
  missing = subprocess.run(command, capture_output=True, text=True, timeout=300)
  assert missing.returncode == 2
  assert missing.stderr.splitlines()[-1] == (
      'tftransfer-explain: error: Name at least one image file to explain.')
