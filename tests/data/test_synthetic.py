"""The synthetic 'patches' task: the class is a coloured square exactly where patch_boxes says."""

import numpy as np

from tftransfer.data import synthetic


def test_the_patch_is_where_its_box_says_and_decides_the_class():
  images, labels = synthetic.generate('patches', 'validation')
  boxes = synthetic.patch_boxes('patches', 'validation')
  assert images.shape == (200, 32, 32, 3) and boxes.shape == (200, 4)
  assert np.all(boxes[:, 2] - boxes[:, 0] == 10) and np.all(boxes[:, 3] - boxes[:, 1] == 10)
  names = synthetic.get_task('patches').class_names
  for image, label, (top, left, bottom, right) in zip(images, labels, boxes):
    pixels = image.astype(float)
    saturation = pixels.max(axis=-1) - pixels.min(axis=-1)  # 0 for grey
    inside = np.zeros((32, 32), bool)
    inside[top:bottom, left:right] = True
    assert saturation[inside].mean() > 100 and saturation[~inside].max() < 60
    # The square's mean colour is its class's colour, within the pixel noise.
    colour = pixels[inside].mean(axis=0)
    assert np.abs(colour - synthetic._PATCH_COLOURS[names[label]]).max() < 10
  # The positions vary: the test of Grad-CAM needs the square anywhere.
  assert len({tuple(box) for box in boxes[:, :2]}) > 100
  # Texture tasks' boxes are the whole image.
  assert np.all(synthetic.patch_boxes('textures_target', 'validation') == [0, 0, 32, 32])
