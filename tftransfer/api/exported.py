"""Predicting from Python: an export loaded as `tft.load_model`, predictions for any of
predict's inputs (`predict_with`, which `ImageClassifier.predict` shares) and as a pandas
DataFrame (`tft.predictions_frame`), through serving/prediction.py as `tftransfer predict`.
"""

import os

import numpy as np

from tftransfer import errors
from tftransfer.api.data import ImageData
from tftransfer.api.in_memory import as_rgb
from tftransfer.data import manifests
from tftransfer.serving import prediction


class Model:
  """An exported model loaded for predicting (tft.load_model)."""

  def __init__(self, loaded):
    self.loaded = loaded
    self.class_names = loaded.class_names
    self.path = loaded.path

  def __repr__(self) -> str:
    return f'tft.load_model({self.path!r})'

  def predict(self, x, *, batch_size: int = 32) -> list[dict]:
    """As ImageClassifier.predict, through the export itself."""
    return predict_with(self.loaded, x, batch_size=batch_size)


def load_model(path: str) -> Model:
  """An export for predicting: a SavedModel version directory (export_dir/N) or a .tflite
  file in one, as `tftransfer predict --model` loads it.

  Raises:
    errors.NotFoundError: `path` is no export.
  """
  return Model(prediction.load_model(path))


def predict_with(model, x, *, batch_size: int = 32) -> list[dict]:
  """Predictions of a loaded (or in-memory) export for any of predict's inputs."""
  if isinstance(x, ImageData):
    if x.kind == 'arrays' and x.part is None:
      return list(prediction.predict_pixels(model, x.arrays.images))
    if x.kind == 'folder' and x.part is None:
      x = x.path
    elif x.kind == 'csv' and x.part is None:  # every image the table lists, in its order
      x = [row.file for row in manifests.read(x.manifest_path(), **dict(x.columns)).rows]
    else:
      raise errors.InvalidValueError(f'predict: give a whole ImageData of a folder, a manifest '
                                     f'or arrays, not {x!r}.')
  if isinstance(x, (str, os.PathLike)):
    x = [x]
  if isinstance(x, bytes):
    x = [x]
  if isinstance(x, np.ndarray):
    x = [x] if x.ndim in (2, 3) else list(x)
  x = list(x)
  if not x:
    raise errors.InvalidValueError('predict: no images given.')
  if all(isinstance(item, (str, os.PathLike)) for item in x):
    paths = prediction.image_files([os.fspath(item) for item in x])
    return list(prediction.predict_files(model, paths, batch_size=batch_size))
  if all(isinstance(item, bytes) for item in x):
    return list(prediction.predict_encoded(
        model, ((None, lambda item=item: item) for item in x), batch_size=batch_size))
  if all(isinstance(item, np.ndarray) for item in x):
    return list(prediction.predict_pixels(
        model, (as_rgb(item, f'images[{index}]') for index, item in enumerate(x))))
  raise errors.InvalidValueError(
      'predict: give file paths or folders, encoded image bytes, uint8 images or a '
      f'tft.ImageData, one kind at a time (got {sorted({type(item).__name__ for item in x})}).')


def predictions_frame(results: list[dict]):
  """The predictions as a pandas DataFrame: one row per image (path, class, score, error).

  Raises:
    ImportError: pandas is not installed (`pip install pandas`; tftransfer does not need it).
  """
  try:
    import pandas  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise ImportError('predictions_frame needs pandas, which tftransfer does not install: '
                      'pip install pandas.') from None
  return pandas.DataFrame([{key: value for key, value in result.items() if key != 'top_k'}
                           for result in results])
