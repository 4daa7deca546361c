"""A class folder whose name is not valid UTF-8 (cp1252's 0x93 from a Windows archive) through
the whole chain: train -> export -> predict -> evaluate (issue 11 kind 4). Every step turns it
into the same text, 'caf\\x93' (files.text_name)."""

import json
import os
import subprocess
import sys

from tftransfer.evaluation import evaluate
from tftransfer.serving import export
from tftransfer.training import loop
from tests.helpers import tiny_config, write_image_folder

FOLDER = os.fsdecode(b'caf\x93')  # the folder's name as Python lists it
TEXT = 'caf\\x93'  # the class name everywhere it is text


def test_a_class_folder_name_that_is_not_utf8_survives_the_whole_chain(tmp_path):
  root = write_image_folder(tmp_path / 'images', classes=(FOLDER, 'dog'), per_class=6)
  config = tiny_config(data__source='folder', data__path=str(root), data__val_fraction=0.3,
                       data__max_examples_per_class=0, train__max_steps=2)
  workdir = tmp_path / 'run'
  loop.train_and_evaluate(config, str(workdir))
  assert json.loads((workdir / 'data.json').read_text())['class_names'] == [TEXT, 'dog']
  assert json.loads((workdir / 'data_report.json').read_text())['classes'][0]['name'] == TEXT

  version = export.export(str(workdir), str(tmp_path / 'models'))  # its self-check included
  assert (tmp_path / 'models' / '1' / 'assets' / 'labels.txt').read_bytes() == (
      TEXT.encode() + b'\ndog\n')

  result = subprocess.run([sys.executable, '-m', 'tftransfer.predict', f'--model={version}',
                           str(root)], capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  lines = [json.loads(line) for line in result.stdout.splitlines()]
  assert len(lines) == 12
  assert {entry['class'] for line in lines for entry in line['top_k']} == {TEXT, 'dog'}

  by_run = evaluate.evaluate_workdir(str(workdir))
  by_export = evaluate.evaluate_export(version, config, str(tmp_path / 'eval'))
  for metrics, directory in ((by_run, workdir / 'eval'), (by_export, tmp_path / 'eval')):
    written = json.loads((directory / 'metrics.json').read_text())
    assert list(written['per_class']) == [TEXT, 'dog']
    assert written['confusion_matrix']['class_names'] == [TEXT, 'dog']
    assert written['confusion_matrix']['counts'] == metrics['confusion_matrix']['counts']
    assert (directory / 'confusion_matrix.png').stat().st_size > 1000
