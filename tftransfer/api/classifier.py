"""`tft.ImageClassifier`: a run driven from Python, in the shape of Model Maker's.

    clf = tft.ImageClassifier.create(train, validation=None, workdir=None, **fields)
    clf.evaluate(data) -> dict          the keys of `tftransfer evaluate`'s metrics.json
    clf.predict(x) -> [dict, ...]       the keys of `tftransfer predict`'s JSON lines
    clf.export(export_dir) -> dict      format -> path, what `tftransfer export` writes
    clf.report() -> Report              the HTML page, shown inline in Jupyter
    clf.audit() -> dict                 audit.json's findings
    clf.history, clf.config, clf.result the epochs' rows, the resolved config, final metrics
    tft.ImageClassifier.load(workdir)   a finished run reopened

Every method calls the library function the matching command calls, with the same checks
and messages (errors.UserError subclasses) and the same workdir, so a run made here resumes,
exports and reports from the command line and the other way round.
"""

import difflib
import html
import inspect
import os
import tempfile

from absl import logging
import ml_collections

from tftransfer import config as config_lib, errors, files, plan as plan_lib, restore
from tftransfer import workdir as workdir_lib
from tftransfer.api import progress as progress_lib
from tftransfer.api.data import ImageData, run_fields
from tftransfer.api.exported import predict_with
from tftransfer.auditing import run as audit_run
from tftransfer.evaluation import evaluate as evaluate_lib, predictions
from tftransfer.evaluation import report as report_lib
from tftransfer.serving import export as export_lib, prediction
from tftransfer.training import loop

_RUN_CONFIG = '''"""Recreates this run from the command line (tft.ImageClassifier.create wrote it):

  tftransfer train --config={path} --workdir={workdir}
"""

from tftransfer import config as config_lib


def get_config():
  return config_lib.from_fields(**{{
{fields}
  }})
'''


class Report(os.PathLike):
  """A written HTML report: its `path`; Jupyter shows the page inline."""

  def __init__(self, path: str):
    self.path = path

  def __fspath__(self) -> str:
    return self.path

  def __repr__(self) -> str:
    return f'Report({self.path!r})'

  def _repr_html_(self) -> str:
    with open(self.path, encoding='utf-8') as f:
      page = f.read()
    # In its own frame, so the page's styles stay out of the notebook's.
    return (f'<iframe srcdoc="{html.escape(page, quote=True)}" style="width: 100%; '
            'height: 900px; border: 1px solid #ddd;"></iframe>')


# What export() passes on besides formats and quantize: the export function's own options.
_EXPORT_OPTIONS = tuple(name for name, parameter in inspect.signature(
    export_lib.export).parameters.items()
    if parameter.kind == parameter.KEYWORD_ONLY and name not in ('formats', 'quantize'))


def _base_config(config) -> ml_collections.ConfigDict | None:
  """create()'s `config`: a ConfigDict, None, or a config file's path 'configs/x.py[:arg]'."""
  if isinstance(config, (str, os.PathLike)):
    return config_lib.load_file(os.fspath(config))
  if config is not None and not isinstance(config, ml_collections.ConfigDict):
    raise errors.InvalidValueError(
        f'config={config!r}: give a ConfigDict (e.g. from a configs/ file\'s get_config()) '
        "or the file's path, config='configs/mobilenet_cpu.py'.")
  return config


def _config_with(config: ml_collections.ConfigDict | None, fields: dict):
  """`config` (default: default_config()) with `fields` by name, validated."""
  return config_lib.from_fields(config, **fields)


def _changed_fields(config: ml_collections.ConfigDict) -> dict:
  """{'section.field': value} of every field that differs from its default."""
  defaults = workdir_lib.flatten(config_lib.default_config().to_dict())
  return {path: value for path, value in workdir_lib.flatten(config.to_dict()).items()
          if value != defaults.get(path)}


class ImageClassifier:
  """A training run in a workdir, with the methods a notebook calls on it."""

  def __init__(self, workdir: str):
    """Use `create` or `load`."""
    self.workdir = os.path.abspath(workdir)
    self._run = workdir_lib.Workdir(self.workdir, create=False)

  def __repr__(self) -> str:
    return f'ImageClassifier({self.workdir!r})'

  @classmethod
  def create(cls, train: ImageData, validation: ImageData | None = None,
             workdir: str | None = None, *, config: ml_collections.ConfigDict | str | None = None,
             callbacks=(), **fields) -> 'ImageClassifier':
    """Trains a classifier on `train`, validating on `validation`, in `workdir`.

    Args:
      train: the training images (tft.ImageData).
      validation: the images to validate on (choosing the best epoch); None = a stratified,
        seeded `val_fraction` (0.1) of `train`. Both sides of one `train.split()` work too.
      workdir: the run's directory; None = a new temporary one (its path is logged). A
        workdir that holds this run resumes it, or returns it when it is finished; one that
        holds another experiment is refused.
      config: the config to start from (default: the defaults): a ConfigDict, or a config
        file's path as --config takes it, 'configs/mobilenet_cpu.py' or
        'configs/quickstart.py:transfer'.
      callbacks: Keras callbacks (on_train_begin, on_epoch_end with the epoch's metrics row,
        on_train_end; progress.REFUSED lists those that cannot work, and why).
      **fields: config fields by name (image_size=96, head_epochs=3, weights='/w.h5', ...;
        config.describe_fields() lists them), or by path ('model.image_size').

    Returns:
      The trained classifier.

    Raises:
      errors.UserError (InvalidValueError, NotFoundError, ...): a field that does not exist
        (naming the likely ones), a bad value, data the config cannot express; checked
        before anything is written or decoded. What the train command raises afterwards
        (a workdir of another experiment, undecodable images under on_bad_image='fail',
        errors.InUseError for a workdir another training holds, before anything is written).
      training.interrupts.Interrupted: the kernel was interrupted; a checkpoint was saved
        and create() with the same workdir resumes.
    """
    listeners = progress_lib.check_callbacks(callbacks)
    config = _base_config(config)
    _config_with(config, fields)  # Every field and the data checked before anything is
    run_fields(train, validation, images_dir=None)  # written or decoded.
    if workdir is None:
      workdir = tempfile.mkdtemp(prefix='tftransfer_run_')
      logging.warning('Training in %s (pass workdir= to choose the directory).', workdir)
    workdir = os.path.abspath(workdir)
    run = workdir_lib.Workdir(workdir)
    with run.lock():  # Before the arrays are written: another training may read them.
      _train(run, config, fields, train, validation, listeners)
    return cls(workdir)

  @classmethod
  def load(cls, workdir: str) -> 'ImageClassifier':
    """Reopens the finished run in `workdir` (made by create or `tftransfer train`).

    Raises:
      errors.NotFoundError: `workdir` holds no run.
      errors.InvalidValueError: the run is unfinished (re-run create or train to finish it).
    """
    classifier = cls(workdir)
    classifier._run.saved_config()  # Raises NotFoundError for a workdir without a run.
    if classifier.result is None:
      raise errors.InvalidValueError(
          f'The run in {classifier.workdir} is unfinished (no '
          f'{workdir_lib.FINAL_METRICS}); finish it with ImageClassifier.create(..., '
          f'workdir={classifier.workdir!r}) or its train command.')
    return classifier

  # What the run is.

  @property
  def history(self) -> list[dict]:
    """Every evaluated epoch's metrics row (metrics.jsonl), both phases, in order; the last
    has 'partial': True when max_steps stopped the run inside that epoch (continuing the run
    with a higher cap replaces it with the whole epoch's row)."""
    return self._run.read_metrics()

  @property
  def result(self) -> dict | None:
    """final_metrics.json: the selected epoch's results (None while unfinished)."""
    return self._run.read_json(workdir_lib.FINAL_METRICS)

  @property
  def config(self) -> ml_collections.ConfigDict:
    """The run's config with every 'auto' as its plan decided it."""
    plan = plan_lib.load(self._run)
    saved = self._run.saved_config()
    return plan_lib.resolved_config(saved, plan) if plan else saved

  @property
  def config_file(self) -> str:
    """A configs/-style file that recreates the run: tftransfer train --config=THIS."""
    return self._run.file(workdir_lib.RUN_CONFIG)

  @property
  def class_names(self) -> tuple[str, ...]:
    return tuple(self._run.read_json(workdir_lib.DATA)['class_names'])

  # What to do with it.

  def evaluate(self, data: ImageData | None = None, *, checkpoint: str | int = 'best') -> dict:
    """Scores the run on `data` (None: its own validation split), as `tftransfer evaluate`
    does; `data`'s classes are matched to the run's by name (some or all of them).

    Returns:
      metrics.json's content: accuracy (= top1_accuracy), balanced_accuracy, top5_accuracy
      (more than 5 classes), macro_f1, per_class {name: precision, recall, f1, support},
      confusion_matrix {class_names, counts}, and what was judged.

    Raises:
      errors.InvalidValueError: data with a class the run lacks.
    """
    if data is None:
      return evaluate_lib.evaluate_workdir(self.workdir, checkpoint=checkpoint, report=False,
                                           setting='data')
    path, columns = self._judged(data, 'evaluate')
    return evaluate_lib.evaluate_workdir(self.workdir, checkpoint=checkpoint, report=False,
                                         data_dir=path, columns=columns, setting='data')

  def predict(self, x, *, top_k: int | None = None, batch_size: int = 32) -> list[dict]:
    """Classifies images with the run's selected epoch, through the functions its export's
    signatures run (decoding included), as `tftransfer predict` does with an export.

    Args:
      x: an image file's path, a folder (searched for images), or a list of them; encoded
        image bytes or a list of them; a uint8 image [H, W, 3] or [N, H, W, 3], or a list of
        images of any sizes; or a tft.ImageData.
      top_k: classes listed per image, best first; None = the run's export.top_k.
      batch_size: images per call for encoded images.

    Returns:
      One dict per image, in order: {'path' (files), 'class', 'score', 'top_k': [{'class',
      'score'}, ...]}, or {'path', 'error'} for a file that is no usable image.
    """
    trained = restore.restore(self.workdir)
    model = prediction.in_memory(
        trained.model, trained.class_names, image_size=trained.image_size,
        top_k=top_k or trained.config.export.top_k,
        max_image_pixels=trained.config.data.max_image_pixels,
        metadata={'workdir': self.workdir, 'step': trained.step},
        thresholds=trained.label_thresholds() if trained.multi_label else None)
    return predict_with(model, x, batch_size=batch_size)

  def export(self, export_dir: str, *, formats=('saved_model',), quantize=None,
             **options) -> dict[str, str]:
    """Writes a version of the run, as `tftransfer export` does (options: version,
    overwrite, checkpoint, max_accuracy_drop, calibration_images, latency_runs, top_k).

    Returns:
      {'saved_model': the version directory, 'keras': model.keras, 'tflite': model.tflite,
       'tflite_int8': ..., 'labels': labels.txt, 'export_report': ...} for what was written.
    """
    unknown = sorted(set(options) - set(_EXPORT_OPTIONS))
    if unknown:
      likely = difflib.get_close_matches(unknown[0], _EXPORT_OPTIONS, n=1)
      raise errors.InvalidValueError(
          f'export({unknown[0]}=...): no such option'
          + (f'; did you mean {likely[0]!r}?' if likely else
             f"; the options are {', '.join(_EXPORT_OPTIONS)}."))
    version = export_lib.export(self.workdir, export_dir, formats=formats,
                                quantize=quantize, **options)
    written = {'saved_model': version} if 'saved_model' in export_lib.as_names(formats) else {}
    for name in sorted(os.listdir(version)):
      if name.endswith('.tflite'):
        written['tflite' + name[len('model'):-len('.tflite')]] = os.path.join(version, name)
      elif name in ('model.keras', 'labels.txt', 'export_report.json'):
        written[{'model.keras': 'keras', 'labels.txt': 'labels',
                 'export_report.json': 'export_report'}[name]] = os.path.join(version, name)
    return written

  def report(self, data: ImageData | None = None, **options) -> Report:
    """Writes the run's HTML report (on `data`, or its validation split), as `tftransfer
    report` does; in Jupyter the returned Report shows the page inline. Options:
    output_dir, checkpoint, num_mistakes, num_pairs."""
    path, columns = (predictions.VALIDATION, None) if data is None else self._judged(
        data, 'report')
    return Report(report_lib.report_workdir(self.workdir, data=path, columns=columns,
                                            setting='data', **options))

  def audit(self, test: ImageData | None = None) -> dict:
    """Audits the run's data (and `test`, a held-out folder, for leaks), as `tftransfer
    audit` does; returns audit.json's findings (findings.py documents their shape)."""
    path, columns = (None, None) if test is None else self._judged(test, 'audit')
    return audit_run.audit_workdir(self.workdir, test_dir=path, test_columns=columns)

  def _judged(self, data: ImageData, what: str) -> tuple[str, dict | None]:
    """(the folder or manifest `data` is, a manifest's columns): arrays and DataFrames are
    written into the workdir first."""
    if not isinstance(data, ImageData) or data.part is not None or data.kind not in (
        'folder', 'arrays', 'csv'):
      raise errors.InvalidValueError(
          f'{what}: give a whole tft.ImageData of a folder, a manifest or arrays (not '
          f'{data!r}).')
    if data.kind == 'folder':
      return data.path, None
    if data.kind == 'csv':
      return data.manifest_path(self._run.file(workdir_lib.IMAGES)), dict(data.columns)
    return data.write_arrays(self._run.file(
        f'{workdir_lib.IMAGES}/{what}_{data.arrays.sha256()[:12]}')), None


def _train(run: workdir_lib.Workdir, config: ml_collections.ConfigDict, fields: dict,
           train, validation, listeners) -> None:
  """ImageClassifier.create's work once it holds the workdir's lock: the arrays written as
  folders, run_config.py for a new experiment, the training with its progress display."""
  workdir = run.path
  data_fields = run_fields(train, validation, images_dir=run.file(workdir_lib.IMAGES))
  full = _config_with(config, {**fields, **data_fields})
  script = run.file(workdir_lib.RUN_CONFIG)
  if not run.exists(workdir_lib.CONFIG):  # A new experiment (a resumed one has its file).
    fields_text = '\n'.join(f'      {path!r}: {value!r},'
                            for path, value in sorted(_changed_fields(full).items()))
    files.write_text(script, _RUN_CONFIG.format(path=script, workdir=workdir,
                                                fields=fields_text))
  display = progress_lib.Display(listeners, bars=progress_lib.in_notebook())
  hooks = loop.Hooks(features_ready=audit_run.in_training, progress=display.progress,
                     epoch_end=display.epoch_end)
  display.begin()
  with display.logs():
    final = loop.train_and_evaluate(full, workdir, hooks=hooks)
  display.end(final)
