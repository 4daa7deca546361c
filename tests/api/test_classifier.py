"""tft.ImageClassifier end to end at tiny scale: create, evaluate, predict, export, report,
audit and load return Python values, as the commands do; bad input is refused before any
work; a workdir resumes as the command's does."""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile

import keras
import numpy as np
import pytest

import tftransfer as tft
from tftransfer import errors
from tftransfer.data import synthetic
from tests.helpers import encode_image, load_config, write_calibrated_weights, write_image_folder

NAMES = ('zigzag', 'spiral', 'diamonds', 'waves', 'hatch')


def _textures(per_class=8, split='train'):
  images, labels = synthetic.generate('textures_target', split)
  keep = np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in range(5)])
  return images[keep], labels[keep]


class Recorder(keras.callbacks.Callback):
  def __init__(self):
    super().__init__()
    self.events = []

  def on_train_begin(self, logs=None):
    self.events.append(('begin', None))

  def on_epoch_end(self, epoch, logs=None):
    self.events.append(('epoch', epoch, logs['phase'], logs['val_accuracy']))

  def on_train_end(self, logs=None):
    self.events.append(('end', logs['step']))


FIELDS = dict(backbone='mobilenet', width=0.25, image_size=32, head_epochs=2,
              finetune_epochs=1, batch_size=8, mixed_precision='float32', flip=False)


@pytest.fixture(scope='module')
def api_run(tmp_path_factory):
  """A classifier made from arrays (40 synthetic textures, a quarter held out), with a
  callback recording what it saw."""
  root = tmp_path_factory.mktemp('api')
  write_calibrated_weights(root / 'calibrated.weights.h5')
  images, labels = _textures()
  train, validation = tft.ImageData.from_arrays(images, labels, NAMES).split(0.25, seed=1)
  recorder = Recorder()
  fields = dict(FIELDS, weights=str(root / 'calibrated.weights.h5'))
  clf = tft.ImageClassifier.create(train, validation, workdir=str(root / 'run'),
                                   callbacks=[recorder], **fields)
  return clf, recorder, (train, validation, fields)


def test_create_returns_the_run_as_python_values(api_run):
  clf, recorder, (train, validation, _) = api_run
  assert clf.result['num_train_examples'] == len(train) == 30
  assert clf.result['num_val_examples'] == len(validation) == 10
  assert [(row['phase'], row['epoch']) for row in clf.history] == [
      ('head', 1), ('head', 2), ('finetune', 1)]
  assert clf.class_names == tuple(sorted(NAMES))  # the classes of a folder, by name
  assert clf.config.model.image_size == 32 and clf.config.train.head_on_features is True
  assert [event[:3] for event in recorder.events] == [
      ('begin', None), ('epoch', 0, 'head'), ('epoch', 1, 'head'), ('epoch', 2, 'finetune'),
      ('end', 9)]  # 30 images, batches of 8: 3 steps an epoch
  assert recorder.events[1][3] == clf.history[0]['val_accuracy']
  # The file that recreates the run from the command line names the same experiment.
  recreated = load_config(clf.config_file)
  saved = clf._run.saved_config()
  assert recreated.to_dict() == saved.to_dict()


def test_evaluate_returns_what_metrics_json_holds(api_run, tmp_path):
  clf, _, _ = api_run
  metrics = clf.evaluate()
  assert metrics['accuracy'] == metrics['top1_accuracy'] == pytest.approx(
      clf.result['val_accuracy'], abs=1e-5)
  assert set(metrics) >= {'balanced_accuracy', 'macro_f1', 'per_class', 'confusion_matrix',
                          'num_examples', 'data', 'model'}
  assert set(metrics['per_class']['zigzag']) == {'precision', 'recall', 'f1', 'support'}
  # Images of two of the five classes, judged by name.
  images, labels = _textures(per_class=3, split='validation')
  some = labels < 2
  test = tft.ImageData.from_arrays(images[some], labels[some], NAMES[:2])
  judged = clf.evaluate(test)
  assert judged['num_examples'] == 6
  assert [judged['per_class'][name]['support'] for name in NAMES] == [3, 3, 0, 0, 0]
  # A class the model lacks is named with the argument that gave it, not a command's flag.
  zebras = write_image_folder(tmp_path / 'zebras', classes=('zigzag', 'zebra'), per_class=2)
  with pytest.raises(errors.InvalidValueError, match=r"^data='.*zebras' has classes \['zebra'\]"):
    clf.evaluate(tft.ImageData.from_folder(str(zebras)))


def test_predict_takes_files_bytes_pixels_and_image_data(api_run, tmp_path, monkeypatch):
  clf, _, _ = api_run
  scratch = tmp_path / 'scratch'  # where predicting may put temporaries: it must leave none
  scratch.mkdir()
  monkeypatch.setattr(tempfile, 'tempdir', str(scratch))
  images, _ = _textures(per_class=1, split='validation')
  for index, image in enumerate(images[:2]):
    (tmp_path / f'{index}.png').write_bytes(encode_image(image))
  (tmp_path / 'broken.png').write_bytes(b'not an image')
  from_files = clf.predict(str(tmp_path))
  assert [os.path.basename(p['path']) for p in from_files] == ['0.png', '1.png', 'broken.png']
  assert 'error' in from_files[2] and 'class' not in from_files[2]
  from_bytes = clf.predict([encode_image(image) for image in images[:2]])
  from_pixels = clf.predict(images[:2])
  from_data = clf.predict(tft.ImageData.from_arrays(images[:2], [0, 1], NAMES))
  for results in (from_bytes, from_pixels, from_data):
    assert [r['class'] for r in results] == [r['class'] for r in from_files[:2]]
    assert all(r['class'] in NAMES and len(r['top_k']) == 5 for r in results)
  np.testing.assert_allclose([r['score'] for r in from_pixels],
                             [r['score'] for r in from_files[:2]], atol=1e-5)
  assert len(clf.predict(images[0], top_k=2)[0]['top_k']) == 2
  with pytest.raises(errors.InvalidValueError, match='one kind at a time'):
    clf.predict([images[0], 'a.png'])
  # (AutoGraph keeps its own generated modules there.)
  assert [name for name in os.listdir(scratch) if name.startswith('tftransfer')] == []


def test_export_report_and_audit_write_what_the_commands_write(api_run, tmp_path):
  clf, _, _ = api_run
  with pytest.raises(errors.InvalidValueError, match=r"export\(topk=...\): no such option; "
                                                     "did you mean 'top_k'"):
    clf.export(str(tmp_path / 'models'), topk=3)
  written = clf.export(str(tmp_path / 'models'), formats='saved_model,keras', latency_runs=1)
  assert set(written) == {'saved_model', 'keras', 'labels', 'export_report'}
  assert written['saved_model'] == str(tmp_path / 'models' / '1')
  assert all(os.path.exists(path) for path in written.values())
  model = tft.load_model(written['saved_model'])
  images, _ = _textures(per_class=1, split='validation')
  assert model.predict(images[:1])[0]['class'] == clf.predict(images[:1])[0]['class']
  report = clf.report(output_dir=str(tmp_path / 'report'))
  assert os.fspath(report) == str(tmp_path / 'report' / 'index.html')
  assert report._repr_html_().startswith('<iframe srcdoc="&lt;!DOCTYPE html&gt;')
  findings = clf.audit()
  assert findings['counts']['images'] == 40 and 'label_errors' in findings


def test_a_workdir_resumes_as_the_command_does(api_run, tmp_path, monkeypatch):
  clf, _, (train, validation, fields) = api_run
  from tftransfer.training import loop

  def no_training(*args, **kwargs):
    pytest.fail('a finished run trained again')

  monkeypatch.setattr(loop, '_train_phase', no_training)
  script = open(clf.config_file).read()
  again = tft.ImageClassifier.create(train, validation, workdir=clf.workdir, **fields)
  assert again.result == clf.result
  with pytest.raises(errors.InvalidValueError, match='different experiment'):
    tft.ImageClassifier.create(train, validation, workdir=clf.workdir,
                               **{**fields, 'head_lr': 0.5})
  assert open(clf.config_file).read() == script  # the refused one wrote nothing
  assert tft.ImageClassifier.load(clf.workdir).result == clf.result
  workdir = tmp_path / 'run'
  shutil.copytree(clf.workdir, workdir)
  (workdir / 'final_metrics.json').unlink()
  with pytest.raises(errors.InvalidValueError, match='is unfinished'):
    tft.ImageClassifier.load(str(workdir))
  with pytest.raises(errors.NotFoundError, match='holds no training run'):
    tft.ImageClassifier.load(str(tmp_path / 'nothing'))


def test_mistakes_are_refused_before_anything_is_written(tmp_path):
  images, labels = _textures(per_class=2)
  data = tft.ImageData.from_arrays(images, labels, NAMES)
  workdir = tmp_path / 'run'
  with pytest.raises(errors.InvalidValueError, match="epochs=3: no such config field; did "
                                                     "you mean 'head_epochs', 'finetune_epochs'"):
    tft.ImageClassifier.create(data, workdir=str(workdir), epochs=3)
  with pytest.raises(errors.InvalidValueError,
                     match=r'config.model.dropout=2.0 is not valid; use a number in \[0, 1\)'):
    tft.ImageClassifier.create(data, workdir=str(workdir), dropout=2)
  with pytest.raises(errors.InvalidValueError, match='ModelCheckpoint needs Keras.* best '
                                                     "epoch's checkpoint"):
    tft.ImageClassifier.create(data, workdir=str(workdir),
                               callbacks=[keras.callbacks.ModelCheckpoint('x.keras')])

  class PerBatch(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
      pass

  with pytest.raises(errors.InvalidValueError, match='overrides on_train_batch_end'):
    tft.ImageClassifier.create(data, workdir=str(workdir), callbacks=[PerBatch()])
  with pytest.raises(errors.InvalidValueError, match='pass a tft.ImageData'):
    tft.ImageClassifier.create(images, workdir=str(workdir))
  with pytest.raises(errors.NotFoundError, match="config='configs/nope.py': no config file"):
    tft.ImageClassifier.create(data, workdir=str(workdir), config='configs/nope.py')
  with pytest.raises(errors.InvalidValueError, match=r"config=\{'image_size': 96\}: give a "
                                                     'ConfigDict'):
    tft.ImageClassifier.create(data, workdir=str(workdir), config={'image_size': 96})
  assert not workdir.exists()


def test_a_workdir_another_training_holds_is_refused_before_the_arrays_are_written(tmp_path):
  images, labels = _textures(per_class=2)
  workdir = tmp_path / 'run'
  workdir.mkdir()
  running = subprocess.Popen(['sleep', '60'])  # the other training, still running
  try:
    (workdir / 'lock.json').write_text(json.dumps({
        'host': socket.gethostname(), 'pid': running.pid, 'since': '2026-01-02T03:04:05+00:00',
        'command': 'tftransfer train', 'token': 'theirs'}))
    with pytest.raises(errors.InUseError, match=rf'Workdir {workdir} is in use: a training by '
                                                rf'pid {running.pid}'):
      tft.ImageClassifier.create(tft.ImageData.from_arrays(images, labels, NAMES),
                                 workdir=str(workdir), **FIELDS)
  finally:
    running.kill()
    running.wait()
  assert os.listdir(workdir) == ['lock.json']  # no images/, no run_config.py


def test_predictions_frame_needs_pandas_only_when_asked(monkeypatch):
  results = [{'path': 'a.png', 'class': 'cat', 'score': 0.9, 'top_k': []},
             {'path': 'b.png', 'error': 'Input is empty.'}]
  monkeypatch.setitem(sys.modules, 'pandas', None)
  with pytest.raises(ImportError, match='pip install pandas'):
    tft.predictions_frame(results)


@pytest.mark.slow
def test_arrays_train_exactly_as_the_same_images_in_a_folder(tmp_path):
  from tftransfer.data import folders, image_ops  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  root = write_image_folder(tmp_path / 'images', per_class=8)  # PNGs and JPEGs
  listing = folders.list_folder(str(root))
  pixels = [image_ops.decode_image(tf.io.read_file(path), max_pixels=0).numpy()
            for path in listing.files]  # the pixels the folder's pipeline decodes
  fields = dict(FIELDS, weights='none', batch_size=4, head_epochs=1, finetune_epochs=1)
  from_folder = tft.ImageClassifier.create(tft.ImageData.from_folder(str(root)),
                                           workdir=str(tmp_path / 'folder'), **fields)
  from_arrays = tft.ImageClassifier.create(
      tft.ImageData.from_arrays(pixels, listing.labels, listing.class_names),
      workdir=str(tmp_path / 'arrays'), **fields)
  assert from_arrays.result['weights_sha256'] == from_folder.result['weights_sha256']
  assert [row['val_accuracy'] for row in from_arrays.history] == [
      row['val_accuracy'] for row in from_folder.history]
  assert (tmp_path / 'arrays' / 'audit.json').is_file()  # audited as any folder


@pytest.mark.slow
def test_a_table_of_tags_trains_evaluates_and_predicts_from_python(tmp_path):
  """A CSV of several tags an image, from create to evaluate on a held-out table."""
  pandas = pytest.importorskip('pandas')
  from tests.helpers import write_tag_manifest
  manifest = write_tag_manifest(tmp_path / 'data', count=50)
  held_out = write_tag_manifest(tmp_path / 'test', count=12, seed=5)
  write_calibrated_weights(tmp_path / 'calibrated.weights.h5')
  data = tft.ImageData.from_csv(str(manifest), label_column='tags', label_delimiter='|')
  clf = tft.ImageClassifier.create(*data.split(0.3, seed=0), workdir=str(tmp_path / 'run'),
                                   weights=str(tmp_path / 'calibrated.weights.h5'),
                                   **dict(FIELDS, finetune_epochs=0))
  assert clf.result['task'] == 'multi_label' and 'val_map' in clf.result
  # The held-out table as a DataFrame whose tags are lists, read with its own columns.
  rows = [line.split(',') for line in held_out.read_text().splitlines()[1:]]
  frame = pandas.DataFrame({'image': [path for path, _ in rows],
                            'labels': [tags.split('|') for _, tags in rows]})
  test = tft.ImageData.from_dataframe(frame, image_column='image', label_column='labels',
                                      root=str(held_out.parent))
  metrics = clf.evaluate(test)
  assert metrics['task'] == 'multi_label' and metrics['num_examples'] == 12
  assert 0 <= metrics['mean_average_precision'] <= 1
  predicted = clf.predict(test)
  assert len(predicted) == 12 and all('labels' in result for result in predicted)
  assert os.path.isfile(clf.report(test).path)
