"""The exported SavedModel: its contract, parity with the trained model, bad requests, layout."""

import io
import json
import os
import shutil
import stat
import subprocess
import sys
import zlib

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from tftransfer import image_headers, preprocessing, restore, serving

IMAGE_SIZE = 32  # tiny_config's model.image_size
# Graph and eager kernels round differently (measured up to 1.2e-5); a preprocessing mismatch
# (another crop or resize) moves probabilities by 1e-2 and more.
TOLERANCE = 1e-4
CLASSES = ['zigzag', 'spiral', 'diamonds', 'waves', 'hatch']  # textures_target, label order


def _image(height, width, seed=0):
  return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _encode(image, image_format='PNG', mode=None):
  buffer = io.BytesIO()
  picture = Image.fromarray(image)
  (picture.convert(mode) if mode else picture).save(buffer, image_format)
  return buffer.getvalue()


def _expected_probabilities(model, encoded_images):
  """The in-memory model on the evaluation view, built from the preprocessing functions."""
  views = [preprocessing.center_crop_resize(
      preprocessing.fit_to_storage(preprocessing.decode_image(data), IMAGE_SIZE), IMAGE_SIZE)
      for data in encoded_images]
  return tf.nn.softmax(model(tf.stack(views), training=False)).numpy()


@pytest.fixture(scope='module')
def served(tiny_export):
  return tf.saved_model.load(str(tiny_export))


@pytest.fixture(scope='module')
def trained(tiny_run):
  return restore.restore(str(tiny_run))


def test_saved_model_cli_shows_the_contract(tiny_export):
  shown = subprocess.run(['saved_model_cli', 'show', '--dir', str(tiny_export), '--all'],
                         capture_output=True, text=True, check=True).stdout
  for signature, name, dtype, shape in (('serving_default', 'image_bytes', 'DT_STRING', '(-1)'),
                                        ('predict_images', 'images', 'DT_UINT8',
                                         '(-1, -1, -1, 3)')):
    block = shown.split(f"signature_def['{signature}']:")[1].split('signature_def[')[0]
    expected = [(f"inputs['{name}']", dtype, shape),
                ("outputs['probabilities']", 'DT_FLOAT', '(-1, 5)'),
                ("outputs['classes']", 'DT_STRING', '(-1, 3)'),
                ("outputs['scores']", 'DT_FLOAT', '(-1, 3)')]
    for tensor, tensor_dtype, tensor_shape in expected:
      assert (f'{tensor} tensor_info:\n        dtype: {tensor_dtype}\n        '
              f'shape: {tensor_shape}') in block, (signature, tensor)
    assert 'Method name is: tensorflow/serving/predict' in block


def test_export_layout_labels_and_metadata(tiny_export, tiny_run):
  assert sorted(os.listdir(tiny_export)) == ['assets', 'assets.extra', 'fingerprint.pb',
                                             'saved_model.pb', 'variables']
  assert (tiny_export / 'assets' / 'labels.txt').read_text() == ''.join(
      f'{name}\n' for name in CLASSES)
  metadata = json.loads((tiny_export / 'assets.extra' / 'tftransfer.json').read_text())
  final = json.loads((tiny_run / 'final_metrics.json').read_text())
  assert metadata['step'] == final['step'] and metadata['final_metrics'] == final
  assert (metadata['image_size'], metadata['top_k'], metadata['max_image_pixels']) == (
      IMAGE_SIZE, 3, 64 * 64)
  # Readable by a TF Serving running as another user, as the files inside it are.
  umask = os.umask(0)
  os.umask(umask)
  assert stat.S_IMODE(os.stat(tiny_export).st_mode) == 0o777 & ~umask


@pytest.mark.parametrize('sizes', [[(32, 32)], [(48, 40), (20, 28), (64, 33)]],
                         ids=['training_size', 'other_sizes'])
def test_serving_default_matches_the_trained_model(served, trained, sizes):
  encoded = [_encode(_image(*size, seed=i)) for i, size in enumerate(sizes)]
  outputs = served.signatures['serving_default'](image_bytes=tf.constant(encoded))
  expected = _expected_probabilities(trained.model, encoded)
  assert outputs['probabilities'].dtype == tf.float32
  np.testing.assert_allclose(outputs['probabilities'].numpy(), expected, atol=TOLERANCE)
  # Outputs that did not depend on the image would make this parity meaningless.
  if len(encoded) > 1:
    assert np.ptp(expected, axis=0).max() > 1e-3


@pytest.mark.parametrize('size', [(32, 32), (50, 37), (16, 16)])
def test_predict_images_matches_the_trained_model(served, trained, size):
  images = np.stack([_image(*size, seed=1), _image(*size, seed=2)])
  outputs = served.signatures['predict_images'](images=tf.constant(images))
  expected = _expected_probabilities(trained.model, [_encode(image) for image in images])
  np.testing.assert_allclose(outputs['probabilities'].numpy(), expected, atol=TOLERANCE)


def test_grayscale_rgba_and_every_format_are_accepted(served, trained):
  image = _image(40, 30, seed=3)
  encoded = [_encode(image, 'PNG', 'L'), _encode(image, 'PNG', 'RGBA'), _encode(image, 'GIF'),
             _encode(image, 'BMP'), _encode(image, 'WEBP'), _encode(image, 'JPEG')]
  outputs = served.signatures['serving_default'](image_bytes=tf.constant(encoded))
  np.testing.assert_allclose(outputs['probabilities'].numpy(),
                             _expected_probabilities(trained.model, encoded), atol=TOLERANCE)


def test_classes_and_scores_are_the_top_k_probabilities(served):
  encoded = [_encode(_image(32, 32, seed=seed)) for seed in range(6)]
  outputs = served.signatures['serving_default'](image_bytes=tf.constant(encoded))
  probabilities = outputs['probabilities'].numpy()
  np.testing.assert_allclose(probabilities.sum(axis=-1), 1, atol=1e-5)
  best = np.argsort(-probabilities, axis=-1)[:, :3]
  np.testing.assert_allclose(outputs['scores'].numpy(),
                             np.take_along_axis(probabilities, best, axis=-1), atol=1e-7)
  assert outputs['classes'].numpy().astype(str).tolist() == np.array(CLASSES)[best].tolist()


def _png_claiming(width, height):
  """A PNG signature and IHDR declaring width x height, with no image data after it."""
  header = width.to_bytes(4, 'big') + height.to_bytes(4, 'big') + bytes([8, 2, 0, 0, 0])
  chunk = b'IHDR' + header
  return (b'\x89PNG\r\n\x1a\n' + len(header).to_bytes(4, 'big') + chunk
          + zlib.crc32(chunk).to_bytes(4, 'big'))


def _gif(frames, height, width, *, canvas=None):
  """An animated GIF; `canvas` (width, height) overwrites the declared screen size."""
  images = [Image.fromarray(_image(height, width, seed=i)) for i in range(frames)]
  encoded = io.BytesIO()
  images[0].save(encoded, 'GIF', save_all=frames > 1, append_images=images[1:])
  encoded = bytearray(encoded.getvalue())
  if canvas:
    encoded[6:10] = canvas[0].to_bytes(2, 'little') + canvas[1].to_bytes(2, 'little')
  return bytes(encoded)


@pytest.mark.parametrize('bad,message', [
    (b'', r'image_bytes\[1\] is empty'),
    (b'definitely not an image', r'image_bytes\[1\] is not a JPEG, PNG, GIF, BMP or WebP'),
    (_encode(_image(100, 70)), r'image_bytes\[1\] is 1 frame\(s\) of 70 x 100 pixels, more '
                               r'than this model accepts \(4096 pixels'),
    # 10^10 pixels declared in 33 bytes: rejected from the header, before any decoding.
    (_png_claiming(100_000, 100_000), r'is 1 frame\(s\) of 100000 x 100000 pixels'),
    # The decoder allocates every frame of a GIF, and each frame grown to the largest one.
    (_gif(3, 40, 40), r'is 3 frame\(s\) of 40 x 40 pixels'),
    (_gif(1, 80, 80, canvas=(1, 1)), r'is 1 frame\(s\) of 80 x 80 pixels'),
    (_encode(_image(20, 20))[:60], r'PNG'),  # truncated: the decoder's own error
], ids=['empty', 'garbage', 'over_limit', 'decompression_bomb', 'gif_frames',
        'gif_frame_beyond_canvas', 'truncated'])
def test_bad_requests_fail_as_invalid_argument_and_serving_goes_on(served, bad, message):
  serve = served.signatures['serving_default']
  good = _encode(_image(32, 32))
  with pytest.raises(tf.errors.InvalidArgumentError, match=message):
    serve(image_bytes=tf.constant([good, bad]))
  assert serve(image_bytes=tf.constant([good]))['probabilities'].shape == (1, 5)


def _decoded_shape(encoded):
  return image_headers.decoded_shape(encoded).numpy().tolist()


def test_image_headers_read_every_format():
  for size in ((5, 7), (300, 17), (1, 4000)):
    image = _image(*size)
    for image_format in ('PNG', 'GIF', 'BMP', 'WEBP', 'JPEG'):
      assert _decoded_shape(_encode(image, image_format)) == [1, *size], image_format
  lossless = io.BytesIO()
  Image.fromarray(_image(9, 11)).save(lossless, 'WEBP', lossless=True)
  assert _decoded_shape(lossless.getvalue()) == [1, 9, 11]
  assert _decoded_shape(b'GIF') == [1, -1, -1]
  # What TensorFlow's GIF decoder really allocates: every frame, at the largest extent.
  for gif in (_gif(3, 9, 11), _gif(1, 9, 11, canvas=(2, 3)), _gif(2, 9, 11, canvas=(20, 4))):
    assert _decoded_shape(gif) == list(tf.io.decode_gif(gif).shape[:3])
  # Truncated before its first frame: the walk ends at the end of the data (and the
  # decoder refuses the file).
  assert _decoded_shape(_gif(2, 9, 11)[:40]) == [1, 0, 0]


def test_warmup_requests_parse_and_run(tiny_export, served):
  path = tiny_export / 'assets.extra' / 'tf_serving_warmup_requests'
  signatures = []
  for record in tf.data.TFRecordDataset(str(path)):
    request = prediction_log_pb2.PredictionLog.FromString(record.numpy()).predict_log.request
    signatures.append(request.model_spec.signature_name)
    inputs = {key: tf.make_ndarray(value) for key, value in request.inputs.items()}
    outputs = served.signatures[request.model_spec.signature_name](**inputs)
    assert outputs['probabilities'].shape == (1, 5)
  assert signatures == ['serving_default', 'predict_images']


def test_reloads_in_a_fresh_process_with_tensorflow_alone(tiny_export, tmp_path):
  png = tmp_path / 'image.png'
  png.write_bytes(_encode(_image(45, 30)))
  script = f'''
import json, sys
import numpy as np
import tensorflow as tf
model = tf.saved_model.load({str(tiny_export)!r})
by_bytes = model.signatures['serving_default'](
    image_bytes=tf.constant([open({str(png)!r}, 'rb').read()]))
by_pixels = model.signatures['predict_images'](images=tf.constant(np.zeros((2, 20, 24, 3),
                                                                           np.uint8)))
assert 'tftransfer' not in sys.modules, 'the export must not need tftransfer'
print(json.dumps({{'classes': by_bytes['classes'].numpy().astype(str).tolist(),
                  'probabilities': by_pixels['probabilities'].numpy().tolist()}}))
'''
  result = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  outputs = json.loads(result.stdout.splitlines()[-1])
  assert len(outputs['classes'][0]) == 3 and set(outputs['classes'][0]) <= set(CLASSES)
  assert np.asarray(outputs['probabilities']).shape == (2, 5)


def test_versions_count_up_and_are_never_overwritten(tiny_run, tmp_path):
  models = tmp_path / 'models'
  first = serving.export(str(tiny_run), str(models))
  assert first == str(models / '1')
  (models / 'not_a_version').mkdir()
  assert serving.export(str(tiny_run), str(models)) == str(models / '2')
  before = (models / '1' / 'saved_model.pb').stat()
  with pytest.raises(FileExistsError, match=r'1 already exists.*--version.*--overwrite'):
    serving.export(str(tiny_run), str(models), version=1)
  assert (models / '1' / 'saved_model.pb').stat().st_mtime_ns == before.st_mtime_ns
  serving.export(str(tiny_run), str(models), version=1, overwrite=True)
  assert (models / '1' / 'saved_model.pb').stat().st_ino != before.st_ino
  assert serving.export(str(tiny_run), str(models), version=7) == str(models / '7')
  assert serving.next_version(str(models)) == 8
  assert sorted(os.listdir(models)) == ['1', '2', '7', 'not_a_version']


@pytest.mark.parametrize('failing', ['write_warmup', '_check_loads'])
def test_a_failed_export_leaves_no_version_behind(tiny_run, tmp_path, monkeypatch, failing):
  def fail(*args, **kwargs):
    raise OSError('disk full (simulated)')

  monkeypatch.setattr(serving, failing, fail)
  with pytest.raises(OSError, match='simulated'):
    serving.export(str(tiny_run), str(tmp_path / 'models'))
  assert os.listdir(tmp_path / 'models') == []  # no version, no half-written staging copy


def test_an_unfinished_run_is_refused_unless_allowed(tiny_run, tmp_path):
  workdir = tmp_path / 'run'
  shutil.copytree(tiny_run, workdir)
  (workdir / 'final_metrics.json').unlink()
  with pytest.raises(ValueError, match=r'unfinished.*--allow_unfinished'):
    serving.export(str(workdir), str(tmp_path / 'models'))
  assert not (tmp_path / 'models').exists()
  path = serving.export(str(workdir), str(tmp_path / 'models'), allow_unfinished=True)
  assert json.loads((tmp_path / 'models' / '1' / 'assets.extra' / 'tftransfer.json'
                     ).read_text())['final_metrics'] is None
  assert path.endswith('1')


def test_a_missing_workdir_is_refused_without_creating_it(tmp_path):
  with pytest.raises(FileNotFoundError, match='holds no training run'):
    serving.export(str(tmp_path / 'typo'), str(tmp_path / 'models'))
  assert not (tmp_path / 'typo').exists()


def test_a_bfloat16_run_serves_float32(tmp_path):
  from tftransfer import training
  from conftest import tiny_config
  workdir = tmp_path / 'run'
  training.train_and_evaluate(tiny_config(train__mixed_precision='bfloat16', train__max_steps=2,
                                          train__head_epochs=0), str(workdir))
  served = tf.saved_model.load(serving.export(str(workdir), str(tmp_path / 'models')))
  encoded = [_encode(_image(40, 40))]
  outputs = served.signatures['serving_default'](image_bytes=tf.constant(encoded))
  assert outputs['probabilities'].dtype == tf.float32
  np.testing.assert_allclose(
      outputs['probabilities'].numpy(),
      _expected_probabilities(restore.restore(str(workdir)).model, encoded), atol=TOLERANCE)
