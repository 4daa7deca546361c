"""Training audits its data by default and honours an exclusion list, saying so."""

import json

import pytest

from tests.helpers import tiny_config, write_calibrated_weights, write_image_folder
from tftransfer.auditing import run as audit_run
from tftransfer.training import loop

# What the train command wires: the data audit on the head phase's features.
AUDIT = loop.Hooks(features_ready=audit_run.in_training)


def test_a_run_leaves_out_excluded_files_audits_and_says_so(tmp_path, caplog):
  root = write_image_folder(tmp_path / 'images', per_class=8)
  (root / 'cat' / 'copy.png').write_bytes((root / 'cat' / '0.png').read_bytes())
  excluded = ['cat/copy.png', 'dog/1.jpg', 'frog/2.png']
  exclude_file = tmp_path / 'exclude.txt'
  exclude_file.write_text('# flagged\n' + '\n'.join(excluded + ['frog/gone.png']) + '\n')
  weights = tmp_path / 'calibrated.weights.h5'
  write_calibrated_weights(weights)
  config = tiny_config(data__source='folder', data__path=str(root),
                       data__max_examples_per_class=0, data__exclude_file=str(exclude_file),
                       model__weights=str(weights), train__batch_size=4,
                       train__finetune_epochs=0)
  loop.train_and_evaluate(config, str(tmp_path / 'run'), hooks=AUDIT)
  report = json.loads((tmp_path / 'run' / 'data_report.json').read_text())
  assert sorted(report['exclusions']['excluded']) == excluded
  assert report['exclusions']['not_found'] == ['frog/gone.png']
  assert report['split_sizes']['train'] + report['split_sizes']['val'] == 3 * 8 + 1 - 3
  assert 'excluded' in report['description']
  assert 'Leaving out 3 images listed in' in caplog.text
  # The audit ran once, on the images the run kept: no copy of cat/0.png is left.
  audit = json.loads((tmp_path / 'run' / 'audit.json').read_text())
  assert report['audit']['counts'] == audit['counts']
  assert audit['counts']['images'] == 22 and audit['counts']['exact_groups'] == 0
  paths = [image['path'] for group in audit['near_duplicates'] for image in group['images']]
  assert not any(path.endswith('copy.png') for path in paths)
  # Small data: the logistic regression costs milliseconds, within any share.
  assert audit['label_model']['name'] == 'logistic_regression'


def test_the_audit_takes_the_cheaper_label_model_when_the_other_would_not_fit(
    tmp_path, caplog, monkeypatch):
  # As at 1,000 classes, where the logistic regression took 60 s of a 161 s run.
  from tftransfer.auditing import label_errors
  monkeypatch.setattr(label_errors, 'LOGISTIC_SECONDS_PER_IMAGE_CLASS_FOLD', 1.0)
  root = write_image_folder(tmp_path / 'images', per_class=24)  # classes big enough to judge
  weights = tmp_path / 'calibrated.weights.h5'
  write_calibrated_weights(weights)
  config = tiny_config(data__source='folder', data__path=str(root),
                       data__max_examples_per_class=0, model__weights=str(weights),
                       train__batch_size=4, train__finetune_epochs=1)
  loop.train_and_evaluate(config, str(tmp_path / 'run'), hooks=AUDIT)
  audit = json.loads((tmp_path / 'run' / 'audit.json').read_text())
  assert audit['label_model']['name'] == 'ridge_regression'
  assert "exceed the" in audit['label_model']['why']
  # A tenth of the estimate: the head's feature pass plus one epoch on images, each image
  # costing TRAIN_COST inferences of the pass's measured speed; every image fits in it.
  from tftransfer import plan as plan_lib
  counts = audit['counts']['images_per_split']
  scope = audit['in_training']
  speed = scope['feature_pass_images_per_second']
  expected = (counts['train'] + counts['val'] + counts['train'] * plan_lib.TRAIN_COST
              + counts['val']) / speed
  assert scope['training_seconds'] == pytest.approx(expected, rel=0.01, abs=0.1)
  assert scope['seconds'] == pytest.approx(0.1 * scope['training_seconds'], abs=0.1)
  assert scope['audited'] == scope['images'] == 72
  assert 'every image: its share of the run, 10 % of an estimated' in caplog.text
  assert 'label model (ridge regression, leave one out) accuracy' in caplog.text


def test_beyond_its_share_the_audit_covers_a_random_sample_and_says_so(
    tmp_path, caplog, monkeypatch):
  from tftransfer.auditing import share
  monkeypatch.setattr(share, 'SECONDS_PER_IMAGE', 1e3)  # no image fits: the minimum sample
  monkeypatch.setattr(share, 'MIN_SAMPLE', 10)
  root = write_image_folder(tmp_path / 'images', per_class=8)
  config = tiny_config(data__source='folder', data__path=str(root),
                       data__max_examples_per_class=0, train__batch_size=4,
                       train__finetune_epochs=0)
  loop.train_and_evaluate(config, str(tmp_path / 'run'), hooks=AUDIT)
  audit = json.loads((tmp_path / 'run' / 'audit.json').read_text())
  assert audit['counts']['images'] == 10 == audit['in_training']['audited']
  assert audit['in_training']['images'] == 24
  assert sum(audit['counts']['images_per_split'].values()) == 10
  assert 'a random 10 of the 24 images' in caplog.text
  assert "a random sample of the run's 24: its findings are the sample's" in caplog.text


@pytest.mark.slow
def test_the_audit_finds_a_copy_and_survives_a_resume(tmp_path):
  root = write_image_folder(tmp_path / 'images', per_class=8)
  (root / 'dog' / 'copy.png').write_bytes((root / 'cat' / '0.png').read_bytes())
  config = tiny_config(data__source='folder', data__path=str(root),
                       data__max_examples_per_class=0, train__batch_size=4)
  workdir = tmp_path / 'run'
  loop.train_and_evaluate(config, str(workdir), hooks=AUDIT)
  report = json.loads((workdir / 'data_report.json').read_text())
  groups = report['audit']['exact_duplicates']
  assert [sorted(i['label'] for i in g['images']) for g in groups] == [['cat', 'dog']]
  assert groups[0]['label_conflict']
  # A re-run (finished, not retrained) rewrites data_report.json; the audit stays in it.
  loop.train_and_evaluate(config, str(workdir), hooks=AUDIT)
  assert json.loads((workdir / 'data_report.json').read_text())['audit']['counts'] == (
      report['audit']['counts'])


def test_an_untrained_backbone_judges_only_what_pixels_show(tmp_path, caplog):
  # Issue 28, kind 7: random features flagged most images as label errors and outliers.
  root = write_image_folder(tmp_path / 'images', per_class=8)
  (root / 'dog' / 'copy.png').write_bytes((root / 'cat' / '0.png').read_bytes())
  config = tiny_config(data__source='folder', data__path=str(root),
                       data__max_examples_per_class=0, train__batch_size=4,
                       train__finetune_epochs=0)
  assert config.model.weights == 'none'
  loop.train_and_evaluate(config, str(tmp_path / 'run'), hooks=AUDIT)
  audit = json.loads((tmp_path / 'run' / 'audit.json').read_text())
  standalone = audit_run.audit_workdir(str(tmp_path / 'before'), config=config)
  # After training, its head epoch's backbone.weights.h5 is the same random backbone.
  after = audit_run.audit_workdir(str(tmp_path / 'run'))
  for findings in audit, standalone, after:
    groups = findings['exact_duplicates']  # pixels still judge copies
    assert [sorted(i['label'] for i in g['images']) for g in groups] == [['cat', 'dog']]
    assert findings['label_errors'] == [] and findings['outliers'] == []
    assert set(findings['not_judged']) == {'label_errors', 'outliers'}
    assert "random weights (model.weights='none')" in findings['not_judged']['outliers']
    assert 'label_errors_flagged' not in findings['counts']
  assert 'Label errors: not judged: the backbone has random weights' in caplog.text


def test_a_backbone_counts_as_trained_when_pretrained_or_fine_tuned():
  assert audit_run.backbone_is_trained('/weights/mobilenet.h5')
  assert audit_run.backbone_is_trained('imagenet', selected_phase='head')
  assert not audit_run.backbone_is_trained('none')
  assert not audit_run.backbone_is_trained('none', selected_phase='head')
  assert audit_run.backbone_is_trained('none', selected_phase='finetune')
