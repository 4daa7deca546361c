"""Several labels an image, end to end at tiny scale: a CSV of tags trains a sigmoid head,
chooses per-label thresholds, and export, serving, predict, evaluate, the report and the
audit all speak in labels."""

import json
import pathlib
import shutil

import numpy as np
import pytest
import tensorflow as tf

from tftransfer import restore, workdir as workdir_lib
from tftransfer.auditing import run as audit_run
from tftransfer.evaluation import evaluate, report
from tftransfer.serving import export, litert_metadata, prediction, signatures
from tftransfer.training import loop
from tests.helpers import TAGS, tiny_config, write_calibrated_weights, write_tag_manifest

pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def tag_run(tmp_path_factory):
  """A finished multi-label run on 60 tagged images, with an exact copy of one image listed
  under other tags (for the audit)."""
  root = tmp_path_factory.mktemp('tags')
  manifest = write_tag_manifest(root / 'data')
  shutil.copy(root / 'data' / 'img' / '0.png', root / 'data' / 'img' / 'copy_of_0.png')
  first_tags = manifest.read_text().splitlines()[1].split(',')[1].split('|')
  other = next(tag for tag in TAGS if tag not in first_tags)
  with manifest.open('a') as f:
    f.write(f'img/copy_of_0.png,{other}\n')
  weights = root / 'calibrated.weights.h5'
  write_calibrated_weights(weights)
  config = tiny_config(data__source='csv', data__path=str(manifest), data__label_column='tags',
                       data__label_delimiter='|', data__max_examples_per_class=0,
                       data__val_fraction=0.3, model__weights=str(weights),
                       train__head_epochs=2, train__head_lr=3e-2)
  final = loop.train_and_evaluate(config, str(root / 'run'))
  return root, root / 'run', final


def test_training_is_multi_label_and_selects_by_mean_average_precision(tag_run):
  _, workdir, final = tag_run
  assert final['task'] == 'multi_label'
  assert final['selected']['metric'] == 'val_map'
  assert 0 <= final['val_map'] <= 1
  rows = [json.loads(line) for line in (workdir / workdir_lib.METRICS).read_text().splitlines()]
  assert all('val_map' in row for row in rows)
  thresholds = json.loads((workdir / workdir_lib.THRESHOLDS).read_text())
  assert sorted(thresholds) == sorted(TAGS)
  trained = restore.restore(str(workdir))
  assert trained.multi_label and trained.class_names == tuple(sorted(TAGS))
  assert np.allclose(trained.label_thresholds(),
                     [thresholds[name] for name in trained.class_names])
  assert 'val_balanced_accuracy' not in final and len(final['val_label_recall']) == len(TAGS)


@pytest.fixture(scope='module')
def tag_export(tag_run):
  root, workdir, _ = tag_run
  return root, pathlib.Path(export.export(
      str(workdir), str(root / 'models'), formats=('saved_model', 'tflite'),
      quantize=('none', 'int8'), max_accuracy_drop=100.0, latency_runs=2))


def _validation_images(workdir):
  trained = restore.restore(str(workdir))
  data = restore.run_data(str(workdir), trained.config)
  files = list(data.val.paths)
  return trained, files


def test_the_saved_models_labels_are_its_thresholded_probabilities(tag_run, tag_export):
  _, workdir = tag_run[:2]
  _, version = tag_export
  trained, files = _validation_images(workdir)
  served = tf.saved_model.load(str(version)).signatures[signatures.SERVING_DEFAULT]
  outputs = served(image_bytes=tf.constant([open(f, 'rb').read() for f in files]))
  probabilities = outputs['probabilities'].numpy()
  labels, counts = outputs['labels'].numpy(), outputs['num_labels'].numpy()
  assert probabilities.shape == labels.shape == (len(files), len(TAGS))
  thresholds = trained.label_thresholds()
  names = np.asarray(trained.class_names)
  for row, image_labels, count in zip(probabilities, labels, counts):
    above = row >= thresholds
    expected = names[above][np.argsort(-row[above], kind='stable')]
    assert count == above.sum()
    assert [name.decode() for name in image_labels[:count]] == expected.tolist()
    assert all(name == b'' for name in image_labels[count:])  # padded with empty strings
  # predict prints the same labels, with their scores.
  loaded = prediction.load_model(str(version))
  results = list(prediction.predict_files(loaded, files))
  for result, count, image_labels in zip(results, counts, labels):
    assert [entry['class'] for entry in result['labels']] == [
        name.decode() for name in image_labels[:count]]
    assert 'class' not in result and len(result['top_k']) >= 1


def test_litert_agrees_with_the_saved_model_on_which_labels_pass(tag_run, tag_export):
  _, workdir = tag_run[:2]
  _, version = tag_export
  _, files = _validation_images(workdir)
  saved = prediction.predict_files(prediction.load_model(str(version)), files)
  float32 = prediction.predict_files(prediction.load_model(str(version / 'model.tflite')), files)
  for from_saved, from_litert in zip(saved, float32):
    assert ({entry['class'] for entry in from_saved['labels']}
            == {entry['class'] for entry in from_litert['labels']}), (from_saved, from_litert)
  report_json = json.loads((version / 'export_report.json').read_text())
  assert {artifact['metric'] for artifact in report_json['artifacts']} == {
      'mean_average_precision'}
  assert (version / 'thresholds.txt').read_text().count('\n') == len(TAGS)
  # The .tflite carries both files inside, as they are beside it, for phone runtimes.
  embedded = litert_metadata.read(str(version / 'model.tflite'))
  assert embedded['files'] == {name: (version / name).read_text()
                               for name in ('labels.txt', 'thresholds.txt')}
  assert [(f['name'], f['type']) for f in embedded['outputs'][0]['associated_files']] == [
      ('labels.txt', 'TENSOR_AXIS_LABELS'), ('thresholds.txt', 'DESCRIPTIONS')]


def test_evaluate_reports_mean_average_precision_for_the_run_and_its_exports(tag_run,
                                                                            tag_export,
                                                                            tmp_path):
  _, workdir, final = tag_run
  _, version = tag_export
  metrics = evaluate.evaluate_workdir(str(workdir), output_dir=str(tmp_path / 'eval'),
                                      report=False)
  assert metrics['task'] == 'multi_label'
  assert metrics['mean_average_precision'] == pytest.approx(final['val_map'], abs=1e-4)
  assert sorted(metrics['per_label']) == sorted(TAGS)
  assert (tmp_path / 'eval' / 'precision_recall.png').stat().st_size > 1000
  config = restore.restore(str(workdir)).config
  for model in (version, version / 'model.tflite'):
    exported = evaluate.evaluate_export(str(model), config, str(tmp_path / model.name))
    assert exported['mean_average_precision'] == pytest.approx(
        metrics['mean_average_precision'], abs=0.02)


def test_the_report_shows_labels_their_curves_and_worst_errors(tag_run):
  _, workdir, _ = tag_run
  page = report.report_workdir(str(workdir))
  html = open(page).read()
  for section in ('id="per-label"', 'id="precision-recall"', 'Worst label errors'):
    assert section in html
  assert 'id="confusion"' not in html  # a single-label section
  assert html.count('class="card mistake"') >= 1
  assert 'data-kind="false positive"' in html or 'data-kind="false negative"' in html


def test_the_audit_finds_the_copy_with_other_tags_and_says_label_errors_are_not_judged(tag_run):
  root, workdir, _ = tag_run
  findings = audit_run.audit_workdir(str(workdir))
  assert findings['label_errors'] == []
  assert 'single-label only' in findings['not_judged']['label_errors']
  conflicts = [group for group in findings['exact_duplicates'] if group['label_conflict']]
  assert len(conflicts) == 1
  assert {image['path'].rsplit('/', 1)[1] for image in conflicts[0]['images']} == {
      '0.png', 'copy_of_0.png'}
