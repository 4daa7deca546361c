"""The client-side decoding recipe of docs/serving.md gives serving_default's pixels."""

import io
import pathlib
import re

import numpy as np
import pytest
import tensorflow as tf

from tftransfer.data import image_ops
from tests import image_variants
from tests.helpers import MAX_IMAGE_PIXELS, REPO

ACCEPTED = {name: encoded for name, (encoded, expected) in image_variants.variants().items()
            if not isinstance(expected, image_variants.Refused)}


@pytest.fixture(scope='module')
def serving_pixels():
  """The documented snippet itself, run as a client would paste it."""
  page = (pathlib.Path(REPO) / 'docs' / 'serving.md').read_text()
  snippets = [code for code in re.findall(r'```python\n(.*?)```', page, re.S)
              if 'def serving_pixels' in code]
  assert len(snippets) == 1, 'docs/serving.md should hold one serving_pixels recipe'
  namespace = {}
  exec(snippets[0], namespace)  # noqa: S102 - the docs' own code, under test
  return namespace['serving_pixels']


@pytest.mark.parametrize('name', sorted(ACCEPTED))
def test_the_documented_recipe_decodes_as_serving_does(serving_pixels, name):
  # Issue 28, kind 6: Image.open(...).convert('RGB') turned 16-bit grey PNGs white.
  served = image_ops.decode_image(tf.constant(ACCEPTED[name]), max_pixels=MAX_IMAGE_PIXELS)
  np.testing.assert_array_equal(serving_pixels(io.BytesIO(ACCEPTED[name])), served.numpy(),
                                err_msg=name)
