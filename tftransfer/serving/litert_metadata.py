"""TFLite Model Metadata inside a .tflite: what MediaPipe Tasks, the TFLite Task Library and
ML Kit read for the class names and the input, written and read back.

The format is public (metadata_schema.fbs, schema 1.5.0; its Python classes are
metadata_schema_py_generated.py, made by scripts/generate_metadata_schema.sh): a
`ModelMetadata` FlatBuffer stored in one of the model's buffers under the name
TFLITE_METADATA, and its associated files (labels.txt, a multi-label model's thresholds.txt)
appended to the .tflite as an uncompressed zip archive, which the runtimes open by name.

Written per export (`embed`):
  model         name, description, version (the run's step), author, min_parser_version
  input         'images': an RGB image of the export's size. Every tftransfer .tflite takes
                uint8 pixels 0-255 and normalises inside its graph, so no NormalizationOptions
                (the runtimes feed uint8 pixels as they are); stats min 0, max 255.
  output        'probabilities', one per class; labels.txt as TENSOR_AXIS_LABELS (class names
                in label order), and for multi-label thresholds.txt (DESCRIPTIONS: the label
                thresholds, one a line in label order)

The existing writers cannot be used on TF 2.21: tflite-support pins protobuf<4 and
MediaPipe 1.2.2's metadata_writers does not import (docs/serving.md).
"""

import io
import zipfile

import flatbuffers
import numpy as np
from tensorflow.lite.python import schema_py_generated as tflite_schema

from tftransfer import errors
from tftransfer.serving import metadata_schema_py_generated as schema

METADATA_NAME = 'TFLITE_METADATA'
FILE_IDENTIFIER = b'M001'  # metadata_schema.fbs's
MODEL_IDENTIFIER = b'TFL3'  # the TFLite schema's
# Every field written exists since schema 1.0.0 (the runtimes refuse a larger version than
# they parse; tflite-support's populator computes the same).
MIN_PARSER_VERSION = '1.0.0'


def _associated(name: str, description: str, kind: int) -> schema.AssociatedFileT:
  item = schema.AssociatedFileT()
  item.name, item.description, item.type = name, description, kind
  return item


def _stats(low: float, high: float) -> schema.StatsT:
  stats = schema.StatsT()
  stats.min, stats.max = [low], [high]
  return stats


def metadata_flatbuffer(*, name: str, description: str, version: str, image_size: int,
                        num_classes: int, labels_file: str,
                        thresholds_file: str | None = None) -> bytes:
  """The ModelMetadata FlatBuffer (file identifier M001) of a tftransfer classifier.

  Args:
    name, description, version: the model's, as the runtimes show them.
    image_size: the input's height and width in pixels.
    num_classes: the output's length.
    labels_file: the associated labels file's name (class names, one a line).
    thresholds_file: a multi-label model's thresholds file name, or None.
  """
  image = schema.ImagePropertiesT()
  image.colorSpace = schema.ColorSpaceType.RGB
  image.defaultSize = schema.ImageSizeT()
  image.defaultSize.width = image.defaultSize.height = image_size
  content = schema.ContentT()
  content.contentPropertiesType = schema.ContentProperties.ImageProperties
  content.contentProperties = image
  images = schema.TensorMetadataT()
  images.name = 'images'
  images.description = (f'RGB pixels 0-255, uint8 [1, {image_size}, {image_size}, 3]; the '
                        'model resizes nothing and normalises inside its graph.')
  images.content, images.stats = content, _stats(0.0, 255.0)

  features = schema.ContentT()
  features.contentPropertiesType = schema.ContentProperties.FeatureProperties
  features.contentProperties = schema.FeaturePropertiesT()
  probabilities = schema.TensorMetadataT()
  probabilities.name = 'probabilities'
  probabilities.description = f'The probability of each of the {num_classes} classes.'
  probabilities.content, probabilities.stats = features, _stats(0.0, 1.0)
  probabilities.associatedFiles = [_associated(
      labels_file, 'The class names, one a line, in the order of the output.',
      schema.AssociatedFileType.TENSOR_AXIS_LABELS)]
  if thresholds_file:
    probabilities.associatedFiles.append(_associated(
        thresholds_file, 'Each label\'s decision threshold, one a line in label order: a '
        'label applies when its probability is at least its threshold.',
        schema.AssociatedFileType.DESCRIPTIONS))

  subgraph = schema.SubGraphMetadataT()
  subgraph.inputTensorMetadata, subgraph.outputTensorMetadata = [images], [probabilities]
  model = schema.ModelMetadataT()
  model.name, model.description, model.version = name, description, version
  model.author = 'tftransfer'
  model.subgraphMetadata = [subgraph]
  model.minParserVersion = MIN_PARSER_VERSION
  builder = flatbuffers.Builder(1024)
  builder.Finish(model.Pack(builder), FILE_IDENTIFIER)
  return bytes(builder.Output())


def embed(flatbuffer: bytes, metadata: bytes, files: dict[str, bytes]) -> bytes:
  """The .tflite `flatbuffer` with `metadata` as its TFLITE_METADATA (replacing any) and
  `files` ({name: content}) appended as an uncompressed zip.

  Raises:
    errors.InvalidValueError: `flatbuffer` is not a TFLite model.
  """
  if flatbuffer[4:8] != MODEL_IDENTIFIER:
    raise errors.InvalidValueError('Not a TFLite model (no TFL3 identifier): metadata can '
                                   'only be embedded in a .tflite file.')
  model = tflite_schema.ModelT.InitFromObj(tflite_schema.Model.GetRootAsModel(flatbuffer, 0))
  buffer = tflite_schema.BufferT()
  buffer.data = np.frombuffer(metadata, np.uint8)
  model.buffers.append(buffer)
  entry = tflite_schema.MetadataT()
  entry.name, entry.buffer = METADATA_NAME, len(model.buffers) - 1
  kept = [item for item in (model.metadata or []) if _text(item.name) != METADATA_NAME]
  model.metadata = kept + [entry]
  builder = flatbuffers.Builder(len(flatbuffer) + len(metadata) + 1024)
  builder.Finish(model.Pack(builder), MODEL_IDENTIFIER)
  archive = io.BytesIO()
  archive.write(bytes(builder.Output()))
  with zipfile.ZipFile(archive, 'a', compression=zipfile.ZIP_STORED) as appended:
    for name, content in files.items():
      appended.writestr(name, content)
  return archive.getvalue()


def _text(value) -> str:
  return value.decode() if isinstance(value, bytes) else (value or '')


def read(path_or_bytes: str | bytes) -> dict:
  """A .tflite's embedded metadata as plain Python values, and its associated files.

  Returns:
    {'name', 'description', 'version', 'author', 'min_parser_version',
     'inputs': [{'name', 'description', 'color_space' ('RGB', ...), 'image_size' [w, h],
                 'normalization': {'mean', 'std'} or None, 'stats': {'min', 'max'}}],
     'outputs': [{'name', 'description', 'stats', 'associated_files': [{'name', 'type',
                  'description'}]}],
     'files': {name: text of each file in the appended zip}}

  Raises:
    errors.InvalidValueError: not a .tflite, or one without TFLITE_METADATA.
  """
  data = path_or_bytes
  if isinstance(path_or_bytes, str):
    with open(path_or_bytes, 'rb') as f:
      data = f.read()
  if data[4:8] != MODEL_IDENTIFIER:
    raise errors.InvalidValueError('Not a TFLite model (no TFL3 identifier).')
  model = tflite_schema.Model.GetRootAsModel(data, 0)
  found = [model.Metadata(i) for i in range(model.MetadataLength())
           if _text(model.Metadata(i).Name()) == METADATA_NAME]
  if not found:
    raise errors.InvalidValueError('The model has no TFLITE_METADATA: export it again with '
                                   '`tftransfer-export --format=tflite`.')
  raw = model.Buffers(found[0].Buffer()).DataAsNumpy().tobytes()
  meta = schema.ModelMetadataT.InitFromObj(schema.ModelMetadata.GetRootAsModelMetadata(raw, 0))
  names = {value: key for key, value in vars(schema.AssociatedFileType).items()
           if not key.startswith('_')}
  spaces = {value: key for key, value in vars(schema.ColorSpaceType).items()
            if not key.startswith('_')}

  def tensor(item, is_input):
    described = {'name': _text(item.name), 'description': _text(item.description),
                 'stats': {'min': [float(v) for v in item.stats.min],
                           'max': [float(v) for v in item.stats.max]}
                 if item.stats else None}
    if is_input:
      image = item.content.contentProperties if item.content else None
      described['color_space'] = spaces.get(image.colorSpace) if image else None
      described['image_size'] = ([image.defaultSize.width, image.defaultSize.height]
                                 if image and image.defaultSize else None)
      units = [unit.options for unit in (item.processUnits or [])
               if unit.optionsType == schema.ProcessUnitOptions.NormalizationOptions]
      described['normalization'] = ({'mean': [float(v) for v in units[0].mean],
                                     'std': [float(v) for v in units[0].std]}
                                    if units else None)
    else:
      described['associated_files'] = [
          {'name': _text(f.name), 'type': names.get(f.type), 'description': _text(f.description)}
          for f in (item.associatedFiles or [])]
    return described

  subgraph = meta.subgraphMetadata[0]
  files = {}
  try:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
      files = {name: archive.read(name).decode() for name in archive.namelist()}
  except zipfile.BadZipFile:
    pass
  return {'name': _text(meta.name), 'description': _text(meta.description),
          'version': _text(meta.version), 'author': _text(meta.author),
          'min_parser_version': _text(meta.minParserVersion),
          'inputs': [tensor(item, True) for item in subgraph.inputTensorMetadata or []],
          'outputs': [tensor(item, False) for item in subgraph.outputTensorMetadata or []],
          'files': files}
