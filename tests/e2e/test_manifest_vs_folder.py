"""A CSV listing the images of a CIFAR-10 folder trains as the folder does: the same splits,
pipeline and seed give the same validation accuracy (within half a point, the issue's
bound; on this CPU it is measured equal). Skipped without ../shared."""

import os

import pytest

from tftransfer.training import loop
from tests.helpers import SHARED_TRAIN, SHARED_WEIGHTS, tiny_config

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]

PER_CLASS = 60


def _folder_of_links(root):
  """root/<class>/<file>: links to the first PER_CLASS images of each shared class."""
  for name in sorted(os.listdir(SHARED_TRAIN)):
    (root / name).mkdir(parents=True)
    for file in sorted(os.listdir(SHARED_TRAIN / name))[:PER_CLASS]:
      (root / name / file).symlink_to(SHARED_TRAIN / name / file)
  return root


def test_a_csv_of_a_cifar10_folder_trains_to_the_folders_accuracy(tmp_path):
  folder = _folder_of_links(tmp_path / 'cifar10')
  manifest = tmp_path / 'cifar10.csv'
  rows = sorted(f'{name}/{file},{name}' for name in os.listdir(folder)
                for file in os.listdir(folder / name))
  manifest.write_text('\ufeffpath,label\r\n' + '\r\n'.join(
      f'cifar10/{row}' for row in rows) + '\r\n')  # a spreadsheet's export: BOM, CRLF
  common = dict(data__val_fraction=0.2, data__max_examples_per_class=0, data__flip=True,
                model__weights=str(SHARED_WEIGHTS), model__image_size=64,
                train__batch_size=32, train__head_epochs=4, train__finetune_epochs=0,
                train__head_lr=3e-3, audit__in_training=False)
  from_folder = loop.train_and_evaluate(
      tiny_config(data__source='folder', data__path=str(folder), **common),
      str(tmp_path / 'folder_run'))
  from_csv = loop.train_and_evaluate(
      tiny_config(data__source='csv', data__path=str(manifest), **common),
      str(tmp_path / 'csv_run'))
  assert from_csv['num_val_examples'] == from_folder['num_val_examples'] == 2 * PER_CLASS
  assert from_folder['val_accuracy'] > 0.3  # real features learn (chance is 0.1)
  assert abs(from_csv['val_accuracy'] - from_folder['val_accuracy']) <= 0.005, (
      from_csv['val_accuracy'], from_folder['val_accuracy'])
