"""The commands as users run them: a mistake is one line on stderr and exit status 2, a bug
keeps its traceback, and TensorFlow's start-up noise stays out of the way."""

import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.helpers import REPO, console_script, encode_image, random_image, write_image_folder

FOLDER_CONFIG = str(REPO / 'configs' / 'folder.py')


def _command(*args, env=None, cwd=None):
  """Runs `python -m tftransfer.<args>` as a user would (TF_CPP_MIN_LOG_LEVEL unset)."""
  environment = {key: value for key, value in os.environ.items()
                 if key != 'TF_CPP_MIN_LOG_LEVEL'}
  environment.update(env or {})
  return subprocess.run([sys.executable, '-m', *args], capture_output=True, text=True,
                        timeout=300, env=environment, cwd=cwd)


def _one_line_error(result, expected):
  assert result.returncode == 2, result.stderr[-3000:]
  assert result.stderr.splitlines() == [expected], result.stderr[-3000:]


@pytest.fixture(scope='module')
def finished_run(tmp_path_factory):
  """A one-step run through the command line (quickstart's scratch task, 8 labels a class)."""
  workdir = tmp_path_factory.mktemp('commands') / 'run'
  result = _command('tftransfer.train', f'--config={REPO / "configs" / "quickstart.py"}:scratch',
                    f'--workdir={workdir}', '--config.data.max_examples_per_class=8',
                    '--config.train.batch_size=8', '--config.train.max_steps=1')
  assert result.returncode == 0, result.stderr[-3000:]
  return workdir, result


def test_a_missing_folder_is_one_line(tmp_path):
  result = _command('tftransfer.train', f'--config={FOLDER_CONFIG}', f'--workdir={tmp_path / "w"}',
                    '--config.data.path=/nonexistent')
  _one_line_error(result, "tftransfer-train: error: config.data.path='/nonexistent' is not a "
                  'directory. Point it at a folder holding one sub-folder of images per class, '
                  'e.g. --config.data.path=/data/flowers.')
  assert not (tmp_path / 'w').exists()


def test_a_missing_required_value_is_one_line(tmp_path):
  result = _command('tftransfer.train', f'--config={FOLDER_CONFIG}', f'--workdir={tmp_path}')
  _one_line_error(result, "tftransfer-train: error: config.data.source='folder' needs "
                  'config.data.path, e.g. --config.data.path=/data/my_images.')


def test_a_misspelt_field_is_one_line(tmp_path):
  result = _command('tftransfer.train', f'--config={FOLDER_CONFIG}', f'--workdir={tmp_path}',
                    '--config.train.batchsize=8')
  _one_line_error(result, "tftransfer-train: error: --config.train.batchsize: no such config "
                  "field; did you mean 'batch_size'?")


def test_a_missing_flag_and_a_stray_argument_are_one_line(tmp_path):
  _one_line_error(_command('tftransfer.train', f'--config={FOLDER_CONFIG}'),
                  'tftransfer-train: error: flag --workdir=None: Flag --workdir must have a '
                  'value other than None.')
  _one_line_error(_command('tftransfer.export', f'--workdir={tmp_path}', '--export_dir=x', 'y'),
                  "tftransfer-export: error: unexpected arguments ['y']; this command takes "
                  'only --flags (see --helpshort).')


def test_a_quantization_without_tflite_is_one_line(tmp_path):
  _one_line_error(_command('tftransfer.export', f'--workdir={tmp_path}', '--export_dir=x',
                           '--quantize=int8'),
                  'tftransfer-export: error: --quantize=int8 applies to LiteRT models: add '
                  '--format=tflite.')


def test_evaluate_of_an_export_names_exactly_the_flags_it_still_needs(tmp_path):
  model = f'--model={tmp_path}/1'
  _one_line_error(_command('tftransfer.evaluate', model, f'--data={tmp_path}'),
                  f'tftransfer-evaluate: error: {model} needs where metrics.json goes, '
                  '--output_dir=DIR.')
  _one_line_error(_command('tftransfer.evaluate', model),
                  f'tftransfer-evaluate: error: {model} needs the images to judge, '
                  '--data=FOLDER (or --config=configs/X.py for its validation split) and where '
                  'metrics.json goes, --output_dir=DIR.')


def test_a_command_pointed_at_the_wrong_thing_says_the_next_step(tmp_path):
  run = tmp_path / 'run'
  run.mkdir()
  (run / 'config.json').write_text('{}')
  image = tmp_path / 'image.png'
  image.write_bytes(encode_image(random_image(40, 40)))
  _one_line_error(
      _command('tftransfer.predict', f'--model={run}', str(image)),
      f"tftransfer-predict: error: --model='{run}' is not an exported model version (no "
      f'saved_model.pb). It is a training run: export it first, `tftransfer-export '
      f'--workdir={run} --export_dir=MODELS`, and pass --model=MODELS/1 (or '
      f'`tftransfer-explain --workdir={run}` classifies with the run itself).')
  _one_line_error(
      _command('tftransfer.predict', f'--workdir={run}', str(image)),
      'tftransfer-predict: error: --workdir is not a flag of tftransfer-predict; its flags are '
      '--batch_size, --model (--helpshort). It reads an exported model: '
      '--model=EXPORT_DIR/VERSION (or a .tflite), which `tftransfer-export --workdir=RUN '
      '--export_dir=EXPORT_DIR` writes.')
  _one_line_error(_command('tftransfer.export', f'--worddir={run}', '--export_dir=x'),
                  'tftransfer-export: error: --worddir is not a flag of tftransfer-export; did '
                  'you mean --workdir?')
  _one_line_error(
      _command('tftransfer.explain', f'--workdir={run}', str(tmp_path / 'missing.jpg')),
      f"tftransfer-explain: error: '{tmp_path / 'missing.jpg'}': no such image file (explain "
      "takes image files; a folder's images are `tftransfer-predict`'s or "
      "`tftransfer-report`'s).")


def test_a_workdir_of_another_experiment_is_one_line(finished_run):
  workdir, _ = finished_run
  result = _command('tftransfer.train', f'--config={REPO / "configs" / "quickstart.py"}:scratch',
                    f'--workdir={workdir}', '--config.data.max_examples_per_class=8',
                    '--config.train.batch_size=8', '--config.train.finetune_lr=0.5')
  _one_line_error(result, f'tftransfer-train: error: Workdir {workdir} holds a run of a '
                  'different experiment (train.finetune_lr: 0.003 -> 0.5). Resuming it would '
                  'mix two experiments; use a new --workdir, or the previous configuration and '
                  'data to resume.')


def test_an_unfinished_run_is_one_line(finished_run, tmp_path):
  workdir = tmp_path / 'run'
  shutil.copytree(finished_run[0], workdir)
  (workdir / 'final_metrics.json').unlink()
  result = _command('tftransfer.export', f'--workdir={workdir}',
                    f'--export_dir={tmp_path / "models"}')
  _one_line_error(result, f'tftransfer-export: error: The run in {workdir} is unfinished (no '
                  'final_metrics.json; newest checkpoint ckpt-1). Finish it by re-running its '
                  'train command, or pass --allow_unfinished to use the newest checkpoint as it '
                  'is.')


def test_bad_images_under_the_fail_policy_are_one_line(tmp_path):
  root = write_image_folder(tmp_path / 'images', per_class=3)
  (root / 'cat' / 'zero.jpg').write_bytes(b'')
  result = _command('tftransfer.train', f'--config={FOLDER_CONFIG}', f'--workdir={tmp_path / "w"}',
                    f'--config.data.path={root}', '--config.data.on_bad_image=fail',
                    '--config.model.weights=none')
  _one_line_error(result, f'tftransfer-train: error: 1 files under {root} cannot be decoded and '
                  "on_bad_image='fail': cat/zero.jpg (Input is empty.). Remove or repair them, "
                  'or leave them out with --config.data.on_bad_image=skip.')


def test_offline_imagenet_weights_end_in_one_line(tmp_path):
  root = write_image_folder(tmp_path / 'images', per_class=6)
  # No network whatever machine runs this: an empty Keras cache and a proxy that refuses.
  result = _command(
      'tftransfer.train', f'--config={FOLDER_CONFIG}', f'--workdir={tmp_path / "w"}',
      f'--config.data.path={root}', '--config.model.backbone=mobilenet',
      '--config.model.width=0.25', '--config.model.image_size=32', '--config.train.batch_size=4',
      env={'KERAS_HOME': str(tmp_path / 'keras'), 'HTTPS_PROXY': 'http://127.0.0.1:9',
           'https_proxy': 'http://127.0.0.1:9'})
  assert result.returncode == 2, result.stderr[-3000:]
  assert 'Traceback' not in result.stderr
  assert result.stderr.splitlines()[-1].startswith(
      "tftransfer-train: error: Could not download the ImageNet weights of backbone "
      "'mobilenet': mobilenet_2_5_224_tf_no_top.h5")


def test_an_unexpected_error_keeps_its_traceback(finished_run, tmp_path):
  workdir = tmp_path / 'run'
  shutil.copytree(finished_run[0], workdir)
  (workdir / 'data.json').write_text('{not json')
  result = _command('tftransfer.evaluate', f'--workdir={workdir}')
  assert result.returncode == 1
  assert 'Traceback (most recent call last)' in result.stderr
  assert 'json.decoder.JSONDecodeError' in result.stderr


def test_a_run_starts_quietly_and_says_what_auto_chose(finished_run):
  _, result = finished_run
  lines = result.stderr.splitlines()
  for noise in ('oneDNN', 'cuda', 'cuInit', 'absl::InitializeLog', 'AVX512', 'rebuild TensorFlow'):
    assert not any(noise in line for line in lines), noise
  config_lines = [line for line in lines if 'Plan: ' in line]
  assert len(config_lines) == 1 and "'auto' resolved: distribute.strategy -> one_device" in (
      config_lines[0])
  assert not any('seed: 0' in line for line in lines)  # the config itself: --verbosity=1 only
  # No silent pause at the end: what follows the last epoch is said before it is done.
  last_epoch = max(i for i, line in enumerate(lines) if ' done in ' in line)
  digest = next(i for i, line in enumerate(lines) if 'Final weights sha256' in line)
  assert any('Restoring the selected epoch (step ' in line and 'saving its backbone' in line
             for line in lines[last_epoch + 1:digest]), lines[last_epoch:digest + 1]


@pytest.mark.parametrize('command', [('tftransfer',), ('tftransfer.train',),
                                     ('tftransfer.predict',)])
def test_version(command):
  result = _command(*command, '--version')
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.startswith('tftransfer 0.1.0, TensorFlow 2.')
  assert 'Keras 3.' in result.stdout
  assert result.stderr == ''


def test_console_scripts_are_installed(tmp_path):
  script = os.path.join(os.path.dirname(sys.executable), 'tftransfer-evaluate')
  environment = {key: value for key, value in os.environ.items()
                 if key != 'TF_CPP_MIN_LOG_LEVEL'}
  result = subprocess.run([script, f'--workdir={tmp_path / "nothing"}'], capture_output=True,
                          text=True, timeout=300, env=environment)
  assert result.returncode == 2
  assert result.stderr.splitlines() == [
      f"tftransfer-evaluate: error: --workdir='{tmp_path / 'nothing'}' holds no training run "
      '(no config.json). Pass the workdir given to `tftransfer-train --workdir`.']


def test_audit_of_a_workdir_without_a_run_or_a_config_is_one_line(tmp_path):
  _one_line_error(_command('tftransfer.audit', f'--workdir={tmp_path}'),
                  f'tftransfer-audit: error: --workdir={tmp_path} holds no training run (no '
                  'config.json); pass --config=configs/X.py (and --config.data.path=...) to '
                  'audit data before training.')


def test_a_folder_of_one_class_is_one_line(tmp_path):
  root = write_image_folder(tmp_path / 'images', classes=('cat',), per_class=3)
  result = _command('tftransfer.train', f'--config={FOLDER_CONFIG}', f'--workdir={tmp_path / "w"}',
                    f'--config.data.path={root}', '--config.model.weights=none')
  _one_line_error(result, f"tftransfer-train: error: config.data.path='{root}' has 1 class "
                  "folder(s) ('cat'); a classifier needs at least two. Lay the images out as "
                  'root/<class>/<image>, one folder per class.')
  assert not (tmp_path / 'w' / 'checkpoints').exists()


def test_every_spelling_of_a_command_runs_it():
  spellings = {'train': [sys.executable, '-m', 'tftransfer.train'],
               'export': [console_script('tftransfer-export')],
               'predict': [sys.executable, '-m', 'tftransfer', 'predict'],
               'evaluate': [console_script('tftransfer'), 'evaluate']}
  running = {command: subprocess.Popen([*argv, '--helpfull'], stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True)
             for command, argv in spellings.items()}
  for command, process in running.items():
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, (command, stderr[-2000:])  # asking for help is no failure
    assert f'tftransfer.cli.{command}:' in stdout and 'absl.logging:' in stdout, command
  usage = subprocess.run([console_script('tftransfer')], capture_output=True, text=True,
                         timeout=60)
  assert usage.returncode == 2 and 'make_tfrecords' in usage.stderr
  wrong = subprocess.run([console_script('tftransfer'), 'trian'], capture_output=True,
                         text=True, timeout=60)
  assert wrong.returncode == 2 and "'trian' is not a command" in wrong.stderr


_NOISE = re.compile(r'^[EW]\d{4} |INFO:tensorflow:|XNNPACK|unsupported characters|'
                    r'fully_quantize|Writing fingerprint')


@pytest.mark.slow
def test_successful_commands_print_nothing_that_looks_like_an_error(finished_run, tmp_path):
  workdir, trained = finished_run
  models = tmp_path / 'models'
  export = ('tftransfer.export', f'--workdir={workdir}', f'--export_dir={models}',
            '--format=saved_model,keras,tflite', '--quantize=none,int8',
            '--max_accuracy_drop=100', '--latency_runs=2')
  image = tmp_path / 'image.png'
  image.write_bytes(encode_image(random_image(40, 40)))
  results = {'train': trained, 'export': _command(*export)}
  results['predict .tflite'] = _command('tftransfer.predict', f'--model={models}/1/model.tflite',
                                        str(image))
  results['predict'] = _command('tftransfer.predict', f'--model={models}/1', str(image))
  for name, result in results.items():
    assert result.returncode == 0, (name, result.stderr[-3000:])
    noise = [line for line in result.stderr.splitlines() if _NOISE.search(line)]
    assert not noise, (name, noise)
  # --verbosity=1 shows what the default hides: the filter, not luck, kept them away.
  loud = _command(*export, '--verbosity=1', '--version=7')
  assert loud.returncode == 0, loud.stderr[-3000:]
  assert re.search(r'^W0000 .*Ignored output_format', loud.stderr, re.MULTILINE), loud.stderr[-3000:]
