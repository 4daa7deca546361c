"""Image ops shared by training, evaluation and the exported serving graph: decode, shrink,
crop, resize.

The same functions run inside tf.data and inside the SavedModel signatures, so a served
image goes through exactly the steps a validation image went through:

  decode_image -> fit_to_storage (uint8, shorter side <= image_size, cached)
               -> center_crop_resize (eval, serving) | random_crop_resize (training)
               -> the model, whose first layer applies the backbone's own convention
                  (model/backbones.py, BackbonePreprocess).
"""

import re

import tensorflow as tf

from tftransfer.data import bmp, exif, image_headers


def decode_image(encoded: tf.Tensor, *, max_pixels: int,
                 name: str | tf.Tensor = 'image') -> tf.Tensor:
  """Decodes JPEG/PNG/GIF/BMP/WebP bytes to uint8 RGB [H, W, 3] as viewers display them.

  The one decode of tftransfer: the folder scan, every tf.data source and the exported
  serving graph call it, so training and serving see the same pixels.

  - JPEGs are decoded with libjpeg's accurate integer IDCT (`dct_method='INTEGER_ACCURATE'`,
    JDCT_ISLOW), the default of libjpeg, Pillow and browsers, rather than TensorFlow's faster
    default (JDCT_IFAST), which is off by up to 5 levels: a client decoding with Pillow gets
    the same pixels, bit for bit.
  - A JPEG's EXIF orientation is applied (exif.py): a portrait phone photo comes out upright.
  - Palette BMPs are decoded through their colour table (bmp.py).
  - Images TensorFlow would decode wrongly or could not size are refused
    (image_headers.read's refusals), and so is anything with more than `max_pixels` pixels
    (all frames of an animated GIF), from its headers *before* it is decoded, so a
    decompression bomb never allocates its pixels.
  - The first frame of an animated GIF; alpha is dropped (transparent GIF pixels are black).

  Args:
    encoded: scalar tf.string, the file's bytes.
    max_pixels: largest frames x height x width accepted (config.data.max_image_pixels);
      0 = no limit.
    name: how error messages name the image (e.g. 'image_bytes[3]').

  Returns:
    uint8 [H, W, 3].

  Raises:
    tf.errors.InvalidArgumentError (when run): data TensorFlow cannot decode (with its reason),
      a refused variant, or too many pixels.
  """
  return decode_image_and_size(encoded, max_pixels=max_pixels, name=name)[0]


def decode_image_and_size(encoded: tf.Tensor, *, max_pixels: int,
                          name: str | tf.Tensor = 'image') -> tuple[tf.Tensor, tf.Tensor]:
  """decode_image's image, and the int64 frames x height x width its limit was checked on,
  which is computed only once the image has decoded (a caller may keep just the size)."""
  return _decode(encoded, tf.constant(max_pixels, tf.int64), tf.convert_to_tensor(name))


# One traced function for every caller: the decode is a thousand graph ops, which would
# otherwise be built again, and cost seconds, each time a dataset maps it (a scan, every
# split). Control flow stays one level deep, which keeps its optimisation cheap too.
@tf.function(input_signature=[tf.TensorSpec([], tf.string), tf.TensorSpec([], tf.int64),
                              tf.TensorSpec([], tf.string)], autograph=False)
def _decode(encoded: tf.Tensor, max_pixels: tf.Tensor,
            name: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
  facts = image_headers.read(encoded)
  frames, height, width = tf.unstack(facts.shape)
  pixels = frames * height * width
  checks = [
      _require(tf.equal(facts.refusal, ''), lambda: tf.strings.join(
          [name, ' is ', facts.refusal, '; convert it to PNG or JPEG.'])),
      _require(tf.logical_or(max_pixels <= 0, pixels <= max_pixels), lambda: tf.strings.join([
          name, ' is ', tf.strings.format('{} frame(s) of {} x {} pixels, more than the {} '
                                          'of data.max_image_pixels; use a smaller image.',
                                          [frames, width, height, max_pixels])]))]
  orientation = tf.where(tf.equal(facts.decoder, image_headers.JPEG_DECODER),
                         exif.jpeg_orientation(encoded), 1)
  # The checks run before decoding, so a refused image is never allocated.
  with tf.control_dependencies(checks):
    image = tf.switch_case(facts.decoder, {
        image_headers.JPEG_DECODER: lambda: tf.io.decode_jpeg(
            encoded, channels=3, dct_method='INTEGER_ACCURATE'),
        image_headers.PALETTE_BMP_DECODER: lambda: bmp.decode_indexed(encoded),
        image_headers.TENSORFLOW_DECODER: lambda: _as_rgb(tf.io.decode_image(
            encoded, channels=0, expand_animations=False, dtype=tf.uint8))})
  image = exif.apply_orientation(image, orientation)
  image.set_shape([None, None, 3])
  # Inlined into a caller's graph, a function's unused outputs are pruned, and a control
  # dependency on the call waits only for its Asserts: the size must wait for the decode.
  with tf.control_dependencies([image]):
    return image, tf.identity(pixels)


def _as_rgb(image: tf.Tensor) -> tf.Tensor:
  """uint8 [H, W, C] as decoded (C of 1 to 4) -> [H, W, 3]: grey repeated, alpha dropped.

  TensorFlow's decoders asked for 3 channels convert PNG and BMP themselves, but its WebP
  decoder refuses a WebP with an alpha channel ('Number of channels requested does not match
  input'), so every format is decoded as stored and converted here, the same way.
  """
  channels = tf.shape(image)[-1]
  grey = tf.tile(image[..., :1], [1, 1, 3])
  return tf.cond(channels < 3, lambda: grey, lambda: image[..., :3])


def _require(ok: tf.Tensor, message) -> tf.Tensor:
  """A check that fails with the text `message()` unless `ok`; the text is built only then."""
  def fail():
    with tf.control_dependencies([tf.debugging.Assert(ok, [message()])]):
      return tf.constant(False)
  return tf.cond(ok, lambda: tf.constant(True), fail)


def error_reason(error: tf.errors.OpError) -> str:
  """The line of a failed decode_image's error that says what is wrong with the image (its
  refusal, or TensorFlow's decoder's reason), without the graph's trace around it."""
  lines = error.message.splitlines()
  # The reason is the line just before the failing node's name, '\t [[{{node ...}}]]'.
  reason = next((lines[i - 1] for i in range(1, len(lines))
                 if lines[i].lstrip().startswith('[[')), lines[0] if lines else '')
  reason = re.sub(r'\{\{function_node [^}]*\}\}|\[Op:\w+\].*$', '', reason).strip()
  match = re.fullmatch(r'assertion failed: \[(.*)\]', reason)
  return (match.group(1) if match else reason) or type(error).__name__


def to_pixels(image: tf.Tensor) -> tf.Tensor:
  """A float image in 0-255 rounded to uint8 pixels (what a model taking pixels is sent)."""
  return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)


def fit_to_storage(image: tf.Tensor, max_size: int) -> tf.Tensor:
  """Shrinks a uint8 image so its shorter side is at most `max_size`, keeping its aspect.

  Images already that small pass through untouched, so a 32-pixel CIFAR image is cached at
  32 pixels and only enlarged per batch.
  """
  shape = tf.shape(image)
  height, width = shape[0], shape[1]
  shorter = tf.minimum(height, width)

  def shrink():
    scale = max_size / tf.cast(shorter, tf.float32)
    new_size = tf.cast(tf.round(tf.cast(tf.stack([height, width]), tf.float32) * scale),
                       tf.int32)
    return to_pixels(tf.image.resize(image, tf.maximum(new_size, 1), antialias=True))

  return tf.cond(shorter > max_size, shrink, lambda: image)


def _resize(image: tf.Tensor, image_size: int) -> tf.Tensor:
  """Resizes to image_size x image_size; antialiased only when shrinking, where it matters.

  For enlarging, antialiased and plain bilinear resizing agree to 3e-5 of a pixel level, but
  the antialiasing kernel costs twice as much, and enlarging small images is the common case
  (CIFAR-10's 32 pixels to a backbone's 96 or more).
  """
  size = (image_size, image_size)
  shrinking = tf.reduce_any(tf.shape(image)[:2] > image_size)
  resized = tf.cond(shrinking, lambda: tf.image.resize(image, size, antialias=True),
                    lambda: tf.image.resize(image, size))
  return tf.ensure_shape(resized, [image_size, image_size, 3])


def center_crop_resize(image: tf.Tensor, image_size: int) -> tf.Tensor:
  """The evaluation view: the central square, resized to image_size; float32 in 0-255."""
  shape = tf.shape(image)
  side = tf.minimum(shape[0], shape[1])
  top = (shape[0] - side) // 2
  left = (shape[1] - side) // 2
  return _resize(image[top:top + side, left:left + side], image_size)


def evaluation_view(image: tf.Tensor, image_size: int) -> tf.Tensor:
  """uint8 [H, W, 3] -> float32 [S, S, 3]: what validation batches and served requests show
  the model. (The eval pipeline runs the same two steps with its cache between them.)"""
  return center_crop_resize(fit_to_storage(image, image_size), image_size)


def random_crop_resize(image: tf.Tensor, seed: tf.Tensor, *, image_size: int,
                       min_area: float, flip: bool) -> tf.Tensor:
  """The training view: a random crop (area >= min_area, aspect 3/4-4/3), resized, flipped.

  Stateless ops seeded per example keep the augmentation reproducible for a given seed.

  Args:
    image: uint8 [H, W, 3].
    seed: int [2] stateless seed for this example.
    image_size: output side in pixels.
    min_area: smallest crop area as a fraction of the image; 1.0 disables cropping.
    flip: whether to flip left-right with probability 1/2.

  Returns:
    float32 [image_size, image_size, 3] in 0-255.
  """
  crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
  if min_area < 1.0:
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image), bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
        seed=crop_seed, min_object_covered=0.0, aspect_ratio_range=(3 / 4, 4 / 3),
        area_range=(min_area, 1.0), max_attempts=10, use_image_if_no_bounding_boxes=True)
    image = _resize(tf.slice(image, begin, size), image_size)
  else:
    image = center_crop_resize(image, image_size)
  if flip:
    image = tf.image.stateless_random_flip_left_right(image, flip_seed)
  return image
