"""tftransfer: fine-tune pretrained Keras applications, export them for TF Serving and phones.

From Python (docs/api.md):

    import tftransfer as tft
    train, validation = tft.ImageData.from_folder('/data/flowers').split(0.2)
    clf = tft.ImageClassifier.create(train, validation, backbone='mobilenet', width=0.25)
    clf.evaluate(), clf.predict('photo.jpg'), clf.export('/models/flowers'), clf.report()

The names below are loaded on first use, so that `import tftransfer` (and every command's
start) does not import TensorFlow before it must.
"""

__version__ = '0.1.0'

# name -> the module of tftransfer/api/ that defines it.
_API = {'ImageData': 'data', 'ImageClassifier': 'classifier', 'Report': 'classifier',
        'Model': 'exported', 'load_model': 'exported', 'predictions_frame': 'exported'}
__all__ = ['__version__', *_API]


def __getattr__(name: str):
  if name in _API:
    import importlib  # pylint: disable=g-import-not-at-top
    return getattr(importlib.import_module(f'tftransfer.api.{_API[name]}'), name)
  raise AttributeError(f"module 'tftransfer' has no attribute {name!r}")
