"""One self-contained HTML page per run: what the model learned and where it fails.

    report_workdir(W)   restores W's model, predicts its validation split (or --data=DIR)
                        and writes W/report/index.html
    write_report(p, …)  the same page from predictions already made (tftransfer-evaluate)

Sections, in order: header (run, data, backbone, accuracy, top-5, balanced accuracy, the
command); training curves (curves.py); per-class table, worst first, and the confusion
matrix normalised by true class (only the classes of the most confused pairs beyond
MAX_MATRIX_CLASSES; the table's first MAX_TABLE_ROWS rows beyond that many, every row in
per_class.csv beside the page, as the data's class counts in classes.csv); the worst
mistakes with Grad-CAM (gradcam.py) and the most confused pairs with examples (mistakes.py);
calibration (calibration.py); the data report. A multi-label run's page has, instead of the
per-class to calibration sections, a per-label table, its precision-recall curves and the
worst false positives and negatives with Grad-CAM of their label (multilabel_page.py).
Images and plots are embedded as data: URIs and the page has no script, so it opens from a
file:// URL or an artifact store without any network. The page is rendered by Jinja2 from
templates/report.html.j2 or report_multilabel.html.j2, both extending base.html.j2.
"""

import base64
import csv
import datetime
import io
import os
import time

from absl import logging
import jinja2
from matplotlib import colormaps
from matplotlib.figure import Figure
import numpy as np
import tensorflow as tf

from tftransfer import files, workdir as workdir_lib
from tftransfer.evaluation import calibration as calibration_lib
from tftransfer.evaluation import curves, gradcam, mistakes
from tftransfer.evaluation import multilabel_page
from tftransfer.evaluation import predictions as predictions_lib
from tftransfer.workdir import Workdir

# Defaults of the command's flags: how many worst mistakes and confused pairs to show.
NUM_MISTAKES = 24
NUM_PAIRS = 24
# Example images shown per confused pair.
EXAMPLES_PER_PAIR = 2
# Beyond this many classes the confusion matrix shows only those of the most confused pairs.
MAX_MATRIX_CLASSES = 30
# Images shown in the page are JPEGs of this quality (plots stay PNG).
JPEG_QUALITY = 90
# Rows shown of a per-class (per-label) table and of the data's class counts: the worst
# (the fewest images in any split) first; every row is in a CSV file beside the page
# (TABLE_FILES).
MAX_TABLE_ROWS = 50
TABLE_FILES = {'per_class': 'per_class.csv', 'per_label': 'per_label.csv',
               'classes': 'classes.csv'}


def _image_uri(image: np.ndarray) -> str:
  """uint8 [H, W, 3] -> a JPEG data: URI."""
  data = tf.io.encode_jpeg(image, quality=JPEG_QUALITY).numpy()
  return 'data:image/jpeg;base64,' + base64.b64encode(data).decode('ascii')


def _figure_uri(figure: Figure) -> str:
  """A matplotlib figure -> a PNG data: URI."""
  buffer = io.BytesIO()
  figure.savefig(buffer, format='png')
  return 'data:image/png;base64,' + base64.b64encode(buffer.getvalue()).decode('ascii')


def _path_text(split, index: int) -> str:
  if split.paths is None:
    return '(no file path)'
  # A file name that is not valid UTF-8 shows its bytes escaped.
  return os.fsencode(split.paths[index]).decode('utf-8', 'backslashreplace')


def bounded_table(rows: list[dict], output_dir: str, key: str) -> tuple[list[dict], dict]:
  """The first MAX_TABLE_ROWS of `rows` (dicts with the same keys, in the order the page
  shows them), and {'shown', 'total', 'file'}. With more rows, every one is written to
  output_dir/TABLE_FILES[key] (CSV, a header of the keys) and 'file' is its name (else
  None: write_report removes a file an earlier report left)."""
  if len(rows) <= MAX_TABLE_ROWS:
    return rows, {'shown': len(rows), 'total': len(rows), 'file': None}
  buffer = io.StringIO()
  writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator='\n')
  writer.writeheader()
  writer.writerows(rows)
  files.write_text(os.path.join(output_dir, TABLE_FILES[key]), buffer.getvalue())
  return rows[:MAX_TABLE_ROWS], {'shown': MAX_TABLE_ROWS, 'total': len(rows),
                                 'file': TABLE_FILES[key]}


def _per_class(metrics: dict, confusion: np.ndarray) -> list[dict]:
  """Per-class rows, worst F1 first, each with the class it is most often mistaken for."""
  rows = []
  for label, (name, values) in enumerate(metrics['per_class'].items()):
    wrong = confusion[label].copy()
    wrong[label] = 0
    rows.append({'name': name, **values, 'mistaken_for': (
        f'{metrics["confusion_matrix"]["class_names"][int(wrong.argmax())]} '
        f'({int(wrong.max())})' if wrong.max() else '')})
  return sorted(rows, key=lambda row: (row['f1'], row['recall'], row['name']))


def _matrix(confusion: np.ndarray, class_names: tuple[str, ...]) -> dict:
  """The confusion matrix as table cells: counts, coloured by the fraction of the true class."""
  shown = mistakes.matrix_classes(confusion, MAX_MATRIX_CLASSES)
  totals = np.maximum(confusion.sum(axis=1), 1)
  colours = colormaps['Blues']
  rows = []
  for true in shown:
    cells = []
    for predicted in shown:
      count, fraction = int(confusion[true, predicted]), confusion[true, predicted] / totals[true]
      red, green, blue, _ = colours(0.05 + 0.95 * fraction)
      cells.append({'count': count, 'background': f'#{int(red * 255):02x}{int(green * 255):02x}'
                                                   f'{int(blue * 255):02x}',
                    'dark': fraction > 0.5, 'diagonal': true == predicted,
                    'title': f'true {class_names[true]}, predicted {class_names[predicted]}: '
                             f'{count} of {int(totals[true])} ({100 * fraction:.1f} %)'})
    rows.append({'name': class_names[true], 'cells': cells})
  return {'rows': rows, 'columns': [class_names[i] for i in shown],
          'num_shown': len(shown), 'num_classes': len(class_names)}


def _mistake_cards(result: predictions_lib.Predictions, probabilities: np.ndarray,
                   losses: np.ndarray, indices: np.ndarray, images: dict) -> list[dict]:
  """One card per worst mistake: image, Grad-CAM of the predicted class, labels, top-3."""
  names = result.trained.class_names
  explain = gradcam.GradCam(result.trained.model)
  stacked = np.stack([images[int(i)] for i in indices]) if len(indices) else None
  # The class each card shows as predicted (from the float view; the stored image is uint8).
  shown = probabilities[indices].argmax(axis=-1)
  heatmaps = []
  batch_size = result.trained.config.train.batch_size
  for start in range(0, len(indices), batch_size):
    batch = slice(start, start + batch_size)
    heatmaps.extend(gradcam.upsample(explain(stacked[batch], shown[batch])[0],
                                     result.trained.image_size))
  cards = []
  for index, heatmap in zip(indices, heatmaps):
    index = int(index)
    ranked = np.argsort(-probabilities[index], kind='stable')[:3]
    cards.append({
        'index': index, 'loss': float(losses[index]), 'path': _path_text(result.split, index),
        'true': names[result.labels[index]], 'predicted': names[ranked[0]],
        'probability': float(probabilities[index, ranked[0]]),
        'true_probability': float(probabilities[index, result.labels[index]]),
        'top3': [(names[k], float(probabilities[index, k])) for k in ranked],
        'image': _image_uri(images[index]),
        'gradcam': _image_uri(gradcam.overlay(images[index], heatmap))})
  return cards


def _header(result: predictions_lib.Predictions, metrics: dict, run: Workdir,
            command: str | None) -> dict:
  """The facts every report's header shows, and the headline metrics of its task."""
  config, final = result.trained.config, result.trained.final_metrics or {}
  backbone = config.model.backbone + (f' (width {config.model.width:g})'
                                      if config.model.width != 1.0 else '') + (
      f" ({config.model.preset})" if config.model.get('preset') else '')
  if result.trained.multi_label:
    headline = {key: metrics[key] for key in ('mean_average_precision',
                                              'micro_average_precision', 'macro_f1',
                                              'exact_match')}
  else:
    recalls = [values['recall'] for values in metrics['per_class'].values()
               if values['support'] > 0]
    headline = {'accuracy': metrics['top1_accuracy'], 'top5': metrics.get('top5_accuracy'),
                # Mean per-class recall (classes with examples), as sklearn's
                # balanced_accuracy_score.
                'balanced_accuracy': float(np.mean(recalls))}
  return {
      'run': run.path, 'data': result.description, 'backbone': backbone,
      'image_size': result.trained.image_size, 'selected': final.get('selected'),
      'checkpoint': os.path.basename(result.trained.checkpoint),
      'step': result.trained.step, 'finished': bool(final), **headline,
      'num_images': metrics['num_examples'],
      'command': command or '(called from Python, not from a command)',
      'generated': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'),
  }


def _single_label_sections(result: predictions_lib.Predictions, metrics: dict, *,
                           num_mistakes: int, num_pairs: int) -> dict:
  """The single-label template's sections: per class, confusion matrix, worst mistakes,
  confused pairs, calibration."""
  names = result.trained.class_names
  probabilities = result.probabilities
  confusion = np.asarray(metrics['confusion_matrix']['counts'])
  losses = mistakes.losses(probabilities, result.labels)
  worst = mistakes.worst_mistakes(probabilities, result.labels, num_mistakes)
  pairs = [(true, predicted, count, mistakes.pair_examples(
      probabilities, result.labels, true, predicted, EXAMPLES_PER_PAIR))
           for true, predicted, count in mistakes.confused_pairs(confusion, num_pairs)]
  wanted = np.unique(np.concatenate([worst, *(examples for *_, examples in pairs),
                                     np.zeros(0, np.int64)]).astype(np.int64))
  images = dict(zip(wanted.tolist(), predictions_lib.evaluation_images(
      result.split, wanted, result.trained.image_size)))
  reliability = calibration_lib.calibration(probabilities, result.labels)
  return {
      'per_class': _per_class(metrics, confusion),
      'matrix': _matrix(confusion, names),
      'num_misclassified': int(np.sum(probabilities.argmax(-1) != result.labels)),
      'mistakes': _mistake_cards(result, probabilities, losses, worst, images),
      'pairs': [{'true': names[true], 'predicted': names[predicted], 'count': count,
                 'examples': [{'index': int(i), 'image': _image_uri(images[int(i)]),
                               'probability': float(probabilities[i, predicted]),
                               'path': _path_text(result.split, int(i))} for i in examples]}
                for true, predicted, count, examples in pairs],
      'calibration': reliability, 'num_bins': len(reliability.counts),
      'reliability': _figure_uri(calibration_lib.plot_reliability(reliability)),
  }


def write_report(result: predictions_lib.Predictions, workdir: str, output_dir: str, *,
                 command: str | None = None, num_mistakes: int = NUM_MISTAKES,
                 num_pairs: int = NUM_PAIRS) -> str:
  """Writes output_dir/index.html from a run's predictions; returns its path.

  Args:
    result: the model's predictions on the judged data (predictions.predict_workdir).
    workdir: the run's directory (metrics.jsonl, final_metrics.json).
    output_dir: created if missing; index.html is replaced atomically.
    command: the command line that made the report, shown in its header.
    num_mistakes: how many of the highest-loss misclassified images to show.
    num_pairs: how many of the most confused class pairs to show, each with two examples.
  """
  started = time.monotonic()
  run = Workdir(workdir, create=False)
  metrics = result.metrics()
  if result.trained.multi_label:
    template, sections = 'report_multilabel.html.j2', multilabel_page.sections(
        result, metrics, num_mistakes=num_mistakes, image_uri=_image_uri,
        figure_uri=_figure_uri, path_text=_path_text)
  else:
    template, sections = 'report.html.j2', _single_label_sections(
        result, metrics, num_mistakes=num_mistakes, num_pairs=num_pairs)
  rows = run.read_metrics()
  os.makedirs(output_dir, exist_ok=True)
  data_reports = [dict(report) for report in (result.data_report,) if report]
  tables = {}
  for key in ('per_class', 'per_label'):
    if key in sections:
      sections[key], tables[key] = bounded_table(sections[key], output_dir, key)
  for report in data_reports:
    if report.get('classes'):
      classes = report['classes']
      if len(classes) > MAX_TABLE_ROWS:  # those with the fewest images in a split first
        classes = sorted(classes, key=lambda row: (
            min(count for key, count in row.items() if key != 'name'), row['name']))
      report['classes'], tables['classes'] = bounded_table(classes, output_dir, 'classes')
  for key, name in TABLE_FILES.items():  # no table of this page: no file an earlier one left
    if not tables.get(key, {}).get('file') and os.path.exists(os.path.join(output_dir, name)):
      os.remove(os.path.join(output_dir, name))
  page = {
      'header': _header(result, metrics, run, command),
      'curves': _figure_uri(curves.plot_training_curves(rows)) if rows else None,
      'data_reports': data_reports, 'tables': tables,
      **sections,
  }
  environment = jinja2.Environment(
      loader=jinja2.PackageLoader('tftransfer.evaluation', 'templates'),
      autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
  html = environment.get_template(template).render(**page)
  path = os.path.join(output_dir, 'index.html')
  files.write_text(path, html)
  logging.info('Wrote %s (%d images judged, %d KB) in %.1f s.', path,
               metrics['num_examples'], len(html) // 1024, time.monotonic() - started)
  return path


def report_workdir(workdir: str, *, data: str = predictions_lib.VALIDATION,
                   output_dir: str | None = None, checkpoint: str | int = 'best',
                   allow_unfinished: bool = False, columns: dict | None = None,
                   setting: str = '--data', **options) -> str:
  """Restores the run in `workdir`, predicts `data` ('val' = its validation split, a folder
  of its classes, or a manifest read with `columns`, None = the run's) with its `checkpoint`
  ('best', 'last' or a step) and writes the report (default workdir/report/index.html, for a
  folder or manifest workdir/report/<its name>/index.html, as evaluate does); returns its
  path. `setting` is what errors call `data` (the command's flag, or the Python argument).
  `options` are write_report's command, num_mistakes and num_pairs.
  """
  result = predictions_lib.predict_workdir(workdir, data=data, checkpoint=checkpoint,
                                           allow_unfinished=allow_unfinished, columns=columns,
                                           setting=setting)
  subdirectory = workdir_lib.judged_subdirectory(
      None if data == predictions_lib.VALIDATION else data)
  return write_report(result, workdir, output_dir or os.path.join(
      workdir, workdir_lib.REPORT, subdirectory), **options)
