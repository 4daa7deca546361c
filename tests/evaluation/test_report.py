"""The HTML report of a tiny run: it parses, embeds every image, and its worst mistakes are
exactly the model's own misclassified images, ordered by loss."""

import csv
import html.parser
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tftransfer.data import pipeline
from tftransfer.evaluation import report
from tftransfer import restore
from tests.helpers import write_image_folder

SECTIONS = ['summary', 'curves', 'per-class', 'confusion', 'mistakes', 'pairs', 'calibration',
            'data']


class _Page(html.parser.HTMLParser):
  """What the tests check: section order, images, and the mistake cards in page order."""

  def __init__(self):
    super().__init__()
    self.ids, self.images, self.mistakes, self.open_tags = [], [], [], []
    self.paths, self.true_classes, self._in_path = [], [], False

  def handle_starttag(self, tag, attrs):
    attrs = dict(attrs)
    if tag not in ('img', 'meta', 'br'):
      self.open_tags.append(tag)
    if tag in ('section', 'header') and 'id' in attrs:
      self.ids.append(attrs['id'])
      self.section = attrs['id']
    if tag == 'img':
      self.images.append(attrs.get('src', ''))
    if 'mistake' in attrs.get('class', '').split():
      self.mistakes.append((int(attrs['data-index']), float(attrs['data-loss'])))
      self.true_classes.append(attrs['data-true'])
    self._in_path = ('path' in attrs.get('class', '').split()
                     and getattr(self, 'section', None) == 'mistakes')

  def handle_endtag(self, tag):
    assert self.open_tags and self.open_tags[-1] == tag, (tag, self.open_tags[-5:])
    self.open_tags.pop()

  def handle_data(self, data):
    if self._in_path and data.strip():
      self.paths.append(data.strip())
      self._in_path = False


def _parse(path):
  page = _Page()
  page.feed(path.read_text(encoding='utf-8'))
  page.close()
  assert page.open_tags == []  # Every element closed, in order.
  return page


def _own_predictions(trained, split):
  """The model's probabilities on the split, computed here from the pipeline and the model."""
  batches = pipeline.eval_batches(split, image_size=trained.image_size, batch_size=16,
                                  cache=False)
  probabilities, labels = [], []
  for images, batch_labels in batches:
    probabilities.append(tf.nn.softmax(trained.model(images, training=False)).numpy())
    labels.append(batch_labels.numpy())
  return np.concatenate(probabilities).astype(np.float64), np.concatenate(labels)


@pytest.fixture(scope='module')
def tiny_report(tiny_run, tmp_path_factory):
  workdir = tmp_path_factory.mktemp('report') / 'run'
  shutil.copytree(tiny_run, workdir)
  path = report.report_workdir(str(workdir), num_mistakes=1000, command='tftransfer-report x')
  assert path == str(workdir / 'report' / 'index.html')
  return workdir, _parse(pathlib.Path(path))


def test_the_report_parses_in_section_order_with_every_image_embedded(tiny_report):
  workdir, page = tiny_report
  assert page.ids == SECTIONS
  assert len(page.images) > 4
  for source in page.images:
    assert source.startswith(('data:image/png;base64,', 'data:image/jpeg;base64,')), source[:60]
    payload = tf.io.decode_base64(source.split(',', 1)[1].replace('+', '-').replace('/', '_'))
    assert tf.io.decode_image(payload).shape[0] > 16  # A real image, not an empty URI.
  text = (workdir / 'report' / 'index.html').read_text()
  assert 'http://' not in text and 'https://' not in text and '<script' not in text
  assert 'tftransfer-report x' in text


def test_worst_mistakes_are_exactly_the_misclassified_images_by_loss(tiny_report, trained):
  workdir, page = tiny_report
  split = restore.run_data(str(workdir), trained.config).val
  probabilities, labels = _own_predictions(trained, split)
  wrong = np.flatnonzero(probabilities.argmax(-1) != labels)
  assert 0 < len(wrong) < len(labels)  # The tiny model gets some right and some wrong.
  listed = [index for index, _ in page.mistakes]
  assert sorted(listed) == sorted(wrong.tolist())
  losses = -np.log(probabilities[listed, labels[listed]])
  np.testing.assert_allclose([loss for _, loss in page.mistakes], losses, rtol=1e-4)
  assert all(np.diff(losses) <= 1e-6)  # Highest loss first.
  assert page.paths == ['(no file path)'] * len(listed)  # A synthetic source has no files.


def test_the_default_report_shows_the_top_of_the_same_ranking(tiny_run, tiny_report, tmp_path):
  _, full = tiny_report
  workdir = tmp_path / 'run'
  shutil.copytree(tiny_run, workdir)
  path = report.report_workdir(str(workdir), num_mistakes=5, num_pairs=3,
                               output_dir=str(tmp_path / 'out'))
  page = _parse(tmp_path / 'out' / 'index.html')
  assert path == str(tmp_path / 'out' / 'index.html')
  assert [index for index, _ in page.mistakes] == [index for index, _ in full.mistakes[:5]]
  assert not (workdir / 'report').exists()


def test_a_folder_of_the_run_classes_is_judged_with_its_file_paths(tiny_run, tmp_path):
  classes = ('zigzag', 'spiral', 'diamonds', 'waves', 'hatch')
  folder = write_image_folder(tmp_path / 'test', classes=classes[:4], per_class=4)
  (folder / 'zigzag' / 'broken.jpg').write_bytes(b'not an image')
  # A copy: the report lands inside the run, and the session's run must stay as it was
  # (moving the report out left an empty report/ there, which failed
  # test_the_default_report_shows_the_top_of_the_same_ranking when it ran after this test).
  workdir = tmp_path / 'run'
  shutil.copytree(tiny_run, workdir)
  written = pathlib.Path(report.report_workdir(str(workdir), data=str(folder),
                                               num_mistakes=1000))
  # Under the folder's name, as evaluate --data puts it: the validation report stays.
  assert written == workdir / 'report' / 'test' / 'index.html'
  shutil.move(str(written.parent), str(tmp_path / 'out'))
  page = _parse(tmp_path / 'out' / 'index.html')
  text = (tmp_path / 'out' / 'index.html').read_text()
  # The data section lists the skipped file with its reason; the folder may lack a class.
  assert 'zigzag/broken.jpg' in text and 'Unknown image file format' in text
  assert 'hatch' not in {pathlib.Path(path).parent.name for path in page.paths}
  assert page.mistakes and len(page.paths) == len(page.mistakes)
  for path, true_class in zip(page.paths, page.true_classes):
    # The image's class folder is the true class shown: labels follow the model's class order.
    assert path.startswith(str(folder)) and (tmp_path / path).exists()
    assert pathlib.Path(path).parent.name == true_class
  with pytest.raises(ValueError, match=r"has classes \['cat', 'dog', 'frog'\] that are not"):
    report.report_workdir(str(tiny_run), data=str(write_image_folder(tmp_path / 'other')),
                          output_dir=str(tmp_path / 'other_out'))


@pytest.mark.slow
def test_the_report_command(tiny_run, tmp_path):
  workdir = tmp_path / 'run'
  shutil.copytree(tiny_run, workdir)
  command = [sys.executable, '-m', 'tftransfer.report', f'--workdir={workdir}',
             '--num_mistakes=3']
  for script in ('tftransfer-report', 'tftransfer-explain'):  # Console scripts (setup.cfg).
    assert (pathlib.Path(sys.executable).parent / script).is_file()
  result = subprocess.run(command, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.strip() == str(workdir / 'report' / 'index.html')
  page = _parse(workdir / 'report' / 'index.html')
  assert len(page.mistakes) == 3
  assert (f'tftransfer-report --workdir={workdir} --num_mistakes=3'
          in (workdir / 'report' / 'index.html').read_text())
  cats = write_image_folder(tmp_path / 'cats')
  wrong = subprocess.run(command[:3] + [f'--workdir={workdir}', f'--data={cats}'],
                         capture_output=True, text=True, timeout=300)
  assert wrong.returncode == 2, wrong.stderr[-3000:]
  assert wrong.stderr.splitlines()[-1].startswith('tftransfer-report: error: --data=')


def test_tables_of_many_classes_show_the_worst_and_keep_every_row_in_a_file(
    tiny_run, trained, tmp_path, monkeypatch):
  # Issue 27: a 1,000-class run's page listed 1,000 rows per table; beyond MAX_TABLE_ROWS it
  # shows the worst ones and writes every row beside the page (here 2 of the run's classes).
  workdir = tmp_path / 'run'
  shutil.copytree(tiny_run, workdir)
  out = tmp_path / 'out'
  out.mkdir()
  monkeypatch.setattr(report, 'MAX_TABLE_ROWS', 2)
  report.report_workdir(str(workdir), output_dir=str(out))
  page = (out / 'index.html').read_text()
  per_class = section_rows(page, 'per-class')
  with open(out / 'per_class.csv', newline='') as file:
    every = list(csv.DictReader(file))
  names = set(trained.class_names)
  assert {row['name'] for row in every} == names and len(every) == len(names) > 2
  assert [cells[0] for cells in per_class] == [row['name'] for row in every[:2]]
  assert [float(row['f1']) for row in every] == sorted(float(row['f1']) for row in every)
  assert f'The 2 of {len(names)} classes with the lowest F1' in page
  with open(out / 'classes.csv', newline='') as file:
    counts = list(csv.DictReader(file))
  assert {row['name'] for row in counts} == names
  assert len(section_rows(page, 'data')) == 2 and 'classes.csv' in page
  # A later report of few enough rows shows them all and leaves no stale file, not even one
  # of a table this page does not have (a multi-label report's, before, in the same folder).
  (out / 'per_label.csv').write_text('name\n')
  monkeypatch.setattr(report, 'MAX_TABLE_ROWS', 50)
  report.report_workdir(str(workdir), output_dir=str(out))
  assert not (out / 'per_class.csv').exists() and not (out / 'classes.csv').exists()
  assert not (out / 'per_label.csv').exists()
  assert len(section_rows((out / 'index.html').read_text(), 'per-class')) == len(names)


def section_rows(page: str, section: str) -> list[list[str]]:
  """The cells of each body row of the first data table in the page's `section`."""
  body = page.split(f'<section id="{section}">', 1)[1].split('</section>', 1)[0]
  body = body.split('<tbody>', 1)[1].split('</tbody>', 1)[0]
  return [[cell.split('</td>', 1)[0] for cell in row.split('<td>')[1:]]
          for row in body.split('<tr>')[1:]]
