"""Test helpers: tiny offline configs, generated image folders, fake pretrained weight files.

Imported by tests as `tests.helpers` (the repository root is on sys.path: tests/ is a package).
"""

import base64
import importlib.util
import io
import os
import pathlib
import sys
import zlib

import keras
import numpy as np
import tensorflow as tf

from tftransfer import config as config_lib
from tftransfer import runtime
from tftransfer.model import backbones

REPO = pathlib.Path(__file__).resolve().parents[1]
# ../shared beside the checkout; TFTRANSFER_SHARED points elsewhere (a git worktree's checkout
# has no ../shared beside it), and TFTRANSFER_SHARED=none hides it, as on a user's clone.
_SHARED = os.environ.get('TFTRANSFER_SHARED', str(REPO.parent / 'shared'))
SHARED = pathlib.Path('/nonexistent/shared' if _SHARED == 'none' else _SHARED)
SHARED_TRAIN = SHARED / 'data' / 'cifar10' / 'train'
SHARED_WEIGHTS = SHARED / 'weights' / 'mobilenet_2_5_224_tf_no_top.h5'
# config.data.max_image_pixels by default: what a scan or decode in a test allows.
MAX_IMAGE_PIXELS = config_lib.default_config().data.max_image_pixels


def tiny_config(**overrides):
  """A config that trains a MobileNet-0.25 at 32 px on 40 synthetic images in seconds.

  Overrides are dotted field names with '__' for '.', e.g. train__head_epochs=2.
  """
  config = config_lib.default_config()
  config.data.source = 'synthetic'
  config.data.name = 'textures_target'
  config.data.eval_split = 'carve'
  config.data.val_fraction = 0.1
  config.data.max_examples_per_class = 8
  config.data.flip = False
  config.model.backbone = 'mobilenet'
  config.model.width = 0.25
  config.model.image_size = 32
  config.model.weights = 'none'
  config.train.batch_size = 8
  config.train.head_epochs = 1
  config.train.finetune_epochs = 1
  config.train.steps_per_loop = 5
  config.train.log_every_steps = 5
  config.train.mixed_precision = 'float32'
  config.train.checkpoint_every_secs = 0
  for dotted, value in overrides.items():
    section, _, field = dotted.rpartition('__')
    (config[section] if section else config)[field] = value
  return config.lock()


def tiny_run_config(run: pathlib.Path):
  """The config of the `tiny_run` fixture's `run` (its calibrated weights lie beside it): a
  tiny_config with calibrated 'pretrained' weights, export.top_k=3 and a 64x64 pixel limit."""
  return tiny_config(model__weights=str(pathlib.Path(run).parent /
                                        'calibrated_mobilenet.weights.h5'),
                     export__top_k=3, data__max_image_pixels=64 * 64)


def write_fake_weights(path, *, backbone='mobilenet', width=0.25, image_size=32, seed=7):
  """Writes a 'pretrained' backbone weights file: random weights nobody could mistake
  for the default initialisation (BatchNorm statistics included). Returns the weights."""
  model = backbones.build_backbone(backbone, image_size=image_size, width=width,
                                   weights='none')
  rng = np.random.default_rng(seed)
  for variable in model.weights:
    value = variable.numpy() + rng.normal(0, 0.05, variable.shape)
    if 'moving_variance' in variable.path:
      value = rng.uniform(0.5, 1.5, variable.shape)
    variable.assign(value.astype(variable.dtype))
  model.save_weights(str(path))
  return [w.numpy() for w in model.weights]


def write_calibrated_weights(path, *, backbone='mobilenet', width=0.25, image_size=32, seed=7):
  """Writes a 'pretrained' backbone whose features depend on the image.

  In inference mode an untrained MobileNet's activations vanish with depth (its BatchNorm
  statistics are the initial 0 and 1), so every image gets the same features. One training-mode
  pass over random images with momentum 0 sets each BatchNorm's statistics to the batch's.
  """
  with runtime.seeded(seed):  # the same weights whatever ran before in this process
    model = backbones.build_backbone(backbone, image_size=image_size, width=width,
                                     weights='none')
  for layer in model.layers:
    if isinstance(layer, keras.layers.BatchNormalization):
      layer.momentum = 0.0
  images = np.random.default_rng(seed).uniform(-1, 1, (64, image_size, image_size, 3))
  model(images.astype(np.float32), training=True)
  model.save_weights(str(path))


def write_image_folder(root, *, classes=('cat', 'dog', 'frog'), per_class=6, size=(40, 36),
                       seed=0):
  """Writes root/<class>/<i>.png|jpg images whose mean colour depends on the class (noise
  seeded by `seed` + the image's index)."""
  root = pathlib.Path(root)
  for label, name in enumerate(classes):
    (root / name).mkdir(parents=True, exist_ok=True)
    for index in range(per_class):
      colour = np.zeros(3)
      colour[label % 3] = 200
      image = np.clip(colour + np.random.default_rng(seed + index).normal(0, 20, size + (3,)), 0,
                      255).astype(np.uint8)
      if index % 2:
        data = tf.io.encode_jpeg(image).numpy()
        (root / name / f'{index}.jpg').write_bytes(data)
      else:
        data = tf.io.encode_png(image).numpy()
        (root / name / f'{index}.png').write_bytes(data)
  return root


# The tags of write_tag_manifest: a colour in one of the image's quadrants.
TAGS = ('blue_bottom', 'green_right', 'red_top_left')


def write_tag_manifest(root, *, count=60, side=32, seed=0):
  """Writes root/img/<i>.png and root/tags.csv (path,tags with '|' between tags): each image
  noise with one to three of TAGS painted in (each tag on about half the images). Returns the
  manifest's path."""
  root = pathlib.Path(root)
  (root / 'img').mkdir(parents=True, exist_ok=True)
  rng = np.random.default_rng(seed)
  half = side // 2
  lines = ['path,tags']
  for index in range(count):
    image = rng.normal(90, 25, (side, side, 3))
    tags = [tag for tag in TAGS if rng.random() < 0.5] or [TAGS[index % len(TAGS)]]
    if 'red_top_left' in tags:
      image[:half, :half, 0] = 240
    if 'green_right' in tags:
      image[:, half:, 1] = 240
    if 'blue_bottom' in tags:
      image[half:, :, 2] = 240
    data = tf.io.encode_png(np.clip(image, 0, 255).astype(np.uint8)).numpy()
    (root / 'img' / f'{index}.png').write_bytes(data)
    lines.append(f'img/{index}.png,{"|".join(tags)}')
  manifest = root / 'tags.csv'
  manifest.write_text('\n'.join(lines) + '\n')
  return manifest


def _pil_bytes(image, format_name, **options):
  buffer = io.BytesIO()
  image.save(buffer, format_name, **options)
  return buffer.getvalue()


def write_messy_folder(root):
  """Writes an image folder as users have them: odd formats, broken files, clutter.

  Returns (valid, broken): the paths relative to `root` of the images training can use, and
  {relative path: a fragment of the reason it cannot} for the ones it cannot.
  """
  from PIL import Image  # TF cannot write these formats.

  root = pathlib.Path(root)
  rng = np.random.default_rng(0)
  pixels = rng.integers(0, 256, (24, 20, 3), dtype=np.uint8)
  jpeg = tf.io.encode_jpeg(pixels).numpy()
  png = tf.io.encode_png(pixels).numpy()
  rgb = Image.fromarray(pixels)
  files = {
      # Odd but valid: every format and mode decode_image turns into RGB.
      'cat/gray.jpg': tf.io.encode_jpeg(pixels[..., :1]).numpy(),
      'cat/cmyk.jpg': _pil_bytes(rgb.convert('CMYK'), 'JPEG'),
      'cat/palette.png': _pil_bytes(rgb.convert('P'), 'PNG'),
      'cat/rgba.png': tf.io.encode_png(np.concatenate([pixels, pixels[..., :1]], -1)).numpy(),
      'cat/deep.png': tf.io.encode_png(pixels.astype(np.uint16) * 257).numpy(),
      'cat/anim.gif': _pil_bytes(rgb.convert('P'), 'GIF', save_all=True,
                                 append_images=[Image.fromarray(255 - pixels).convert('P')]),
      'cat/image.bmp': _pil_bytes(rgb, 'BMP'),
      'cat/photo.webp': _pil_bytes(rgb, 'WEBP', lossless=True),
      # Extensions in any case, nested folders, non-ASCII and non-UTF-8 names, a PNG named .jpg.
      'dog/UPPER.JPG': jpeg,
      'dog/lower.jpeg': jpeg,
      'dog/Mixed.Png': png,
      'dog/nested/inner.png': png,
      'dog/nested/deeper/inner.jpg': jpeg,
      'dog/naïve_狗.jpg': jpeg,
      os.fsdecode(b'dog/caf\xe9_latin1.jpg'): jpeg,
      'dog/png_named.jpg': png,
      'émeu/0.jpg': jpeg, 'émeu/1.jpg': png, 'émeu/2.jpg': jpeg, 'émeu/3.png': png,
  }
  valid = sorted(files)
  broken = {
      'cat/zero.jpg': (b'', 'Input is empty'),
      'cat/text.jpg': (b'This is a text file, not a JPEG.\n', 'Unknown image file format'),
      'cat/truncated.jpg': (jpeg[:len(jpeg) // 2], 'JPEG'),
      'dog/nested/truncated.png': (png[:len(png) // 2], 'PNG'),
      # A valid JPEG XL codestream: TensorFlow decodes it, but serving could not size it.
      'dog/jpeg_xl.jpg': (base64.b64decode('/woAEBAJCAABACgASxiLFcJJQU5/AA=='),
                          'is JPEG XL, which is not supported'),
  }
  files.update({path: data for path, (data, _) in broken.items()})
  # Clutter the scan must pass over: non-images, hidden files and folders (even valid ones).
  files.update({'cat/.DS_Store': b'\0\0\0\1Bud1', 'cat/Thumbs.db': b'\xd0\xcf\x11\xe0',
                'dog/notes.txt': b'labels are folders', 'dog/.hidden.jpg': jpeg,
                'dog/.thumbnails/0.jpg': jpeg, '.cache/0.jpg': jpeg,
                'unsorted.jpg': jpeg})  # In no class folder: left out, with a warning.
  for path, data in files.items():
    (root / path).parent.mkdir(parents=True, exist_ok=True)
    (root / path).write_bytes(data)
  return valid, {path: reason for path, (_, reason) in broken.items()}


def random_image(height, width, seed=0):
  """uint8 [height, width, 3] of seeded uniform noise."""
  return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def encode_image(image, image_format='PNG', mode=None):
  """`image` encoded by Pillow in `image_format`, converted to `mode` ('L', 'RGBA', ...) first."""
  from PIL import Image
  buffer = io.BytesIO()
  picture = Image.fromarray(image)
  (picture.convert(mode) if mode else picture).save(buffer, image_format)
  return buffer.getvalue()


def gif_bytes(frames, height, width, *, canvas=None):
  """An animated GIF; `canvas` (width, height) overwrites the declared screen size."""
  from PIL import Image
  images = [Image.fromarray(random_image(height, width, seed=i)) for i in range(frames)]
  encoded = io.BytesIO()
  images[0].save(encoded, 'GIF', save_all=frames > 1, append_images=images[1:])
  encoded = bytearray(encoded.getvalue())
  if canvas:
    encoded[6:10] = canvas[0].to_bytes(2, 'little') + canvas[1].to_bytes(2, 'little')
  return bytes(encoded)


def png_claiming(width, height):
  """A PNG signature and IHDR declaring width x height, with no image data after it."""
  header = width.to_bytes(4, 'big') + height.to_bytes(4, 'big') + bytes([8, 2, 0, 0, 0])
  chunk = b'IHDR' + header
  return (b'\x89PNG\r\n\x1a\n' + len(header).to_bytes(4, 'big') + chunk
          + zlib.crc32(chunk).to_bytes(4, 'big'))


def expected_probabilities(model, encoded_images, image_size=32):
  """The in-memory model on the evaluation view, built from the image ops: what an export's
  signatures must answer for `encoded_images`."""
  from tftransfer.data import image_ops
  views = [image_ops.evaluation_view(image_ops.decode_image(data, max_pixels=MAX_IMAGE_PIXELS),
                                     image_size) for data in encoded_images]
  return tf.nn.softmax(model(tf.stack(views), training=False)).numpy()


def load_config(path, arg=None):
  """The config `path`.get_config(arg) of a file in configs/."""
  spec = importlib.util.spec_from_file_location(pathlib.Path(path).stem, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg) if arg else module.get_config()


def smooth_picture(seed: int, side: int = 32) -> np.ndarray:
  """uint8 [side, side, 3]: bicubic-upsampled 6x6 random colours plus a little noise, a
  photo-like picture unlike any other seed's."""
  rng = np.random.default_rng(seed)
  coarse = rng.uniform(0, 255, (1, 6, 6, 3)).astype(np.float32)
  picture = tf.image.resize(coarse, (side, side), method='bicubic')[0].numpy()
  return np.clip(picture + rng.normal(0, 6, picture.shape), 0, 255).astype(np.uint8)


def console_script(name: str) -> str:
  """The path of an installed console script (saved_model_cli, tftransfer-*) of the Python
  running the tests, whether or not its environment is activated (on PATH)."""
  return str(pathlib.Path(sys.executable).parent / name)
