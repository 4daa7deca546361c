"""One table of commands: every spelling dispatches from it, the console scripts come from
it, and every command starts, shows its flags and refuses a misspelt one in one line."""

import configparser
import subprocess

import pytest

from tftransfer.cli import commands, launch
from tests.helpers import REPO, console_script


def test_console_scripts_are_the_table():
  assert commands.entry_points()[0] == 'tftransfer = tftransfer.cli.launch:main'
  assert 'tftransfer-make-tfrecords = tftransfer.cli.launch:main' in commands.entry_points()
  assert len(commands.entry_points()) == len(commands.COMMANDS) + 1
  # setup.cfg declares none of its own: setup.py makes them all from the table.
  setup_cfg = configparser.ConfigParser()
  setup_cfg.read(REPO / 'setup.cfg')
  assert not setup_cfg.has_section('options.entry_points')
  for command in commands.COMMANDS:
    assert (REPO / 'tftransfer' / 'cli' / f'{command}.py').is_file(), command


def test_usage_lists_every_command():
  usage = launch.usage()
  assert all(f'  {command}' in usage for command in commands.COMMANDS)


def test_a_misspelt_or_guessed_field_names_the_likely_ones():
  assert launch._no_such_field('--config.train.batchsize=8') == (
      "--config.train.batchsize: no such config field; did you mean 'batch_size'?")
  assert launch._no_such_field('--config.train.epochs=5') == (
      "--config.train.epochs: no such config field; did you mean 'head_epochs', "
      "'finetune_epochs'?")
  assert launch._no_such_field('--config.train.image_size=96') == (
      "--config.train.image_size: no such config field; did you mean 'model.image_size'?")
  assert launch._no_such_field('--config.train.zzz=1').endswith('--helpfull lists every field.')


@pytest.mark.slow  # Starts each command's process: tens of seconds of imports.
def test_every_command_starts_and_shows_its_flags():
  # In parallel: each start imports TensorFlow (seconds). The other spellings of a command
  # are tests/e2e/test_commands.py's.
  running = {command: subprocess.Popen([console_script('tftransfer'), command, '--helpshort'],
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       text=True) for command in commands.COMMANDS}
  for command, process in running.items():
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, (command, stderr[-2000:])
    assert f'tftransfer {command}: ' in stdout and f'tftransfer.cli.{command}:' in stdout
