"""What every command does around its `main`: a quiet start, --version, one-line user errors.

Console scripts and `python -m tftransfer.<command>` enter through `run(command)`, which
  1. sets TensorFlow's C++ log level to warnings and above (TF_CPP_MIN_LOG_LEVEL=1) unless the
     user set it, before TensorFlow is first imported, and keeps the start-up notices that
     no log level reaches off the screen while TensorFlow loads and finds its devices
     (tf_noise.py);
  2. answers --version with the tftransfer, TensorFlow and Keras versions;
  3. parses flags, turning a flag or config-override mistake into one line, exit status 2;
  4. runs the command's `main(argv)`: an errors.UserError (a bad value, a missing path, an
     unfinished run, ...) becomes `<program>: error: <message>` on stderr and exit status 2,
     without a traceback; a stop request (interrupts.Interrupted) exits 130 or 143; anything
     else keeps its traceback and exits 1.
"""

import importlib
import logging as python_logging
import os
import re
import shlex
import sys
import time

from tftransfer import __version__, errors, tf_noise

_STARTED = time.time()  # The command's start, for a time budget (before TensorFlow loads).

COMMANDS = ('train', 'export', 'predict', 'evaluate', 'make_tfrecords', 'audit', 'report',
            'explain')

def _load(module_name: str):
  """Imports `module_name`, and TensorFlow with it, quietly unless the user set
  TF_CPP_MIN_LOG_LEVEL."""
  if 'TF_CPP_MIN_LOG_LEVEL' in os.environ:
    return importlib.import_module(module_name)
  os.environ['TF_CPP_MIN_LOG_LEVEL'] = '1'
  with tf_noise.filtered(tf_noise.startup_dropper()):
    module = importlib.import_module(module_name)
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    tf.config.list_physical_devices()  # Loads the device plugins, which print notices too.
  return module


def versions() -> str:
  """'tftransfer X, TensorFlow Y, Keras Z, Python W'."""
  tf = _load('tensorflow')
  import keras  # pylint: disable=g-import-not-at-top
  return (f'tftransfer {__version__}, TensorFlow {tf.__version__}, Keras {keras.__version__}, '
          f'Python {sys.version.split()[0]}')


def _program(command: str) -> str:
  """The name a user typed for `command`: its console script, or tftransfer-<command> when
  started as `python -m tftransfer.<command>`."""
  program = os.path.basename(sys.argv[0]) if sys.argv else command
  if program in ('__main__.py', f'{command}.py', '-c', ''):
    program = f'tftransfer-{command.replace("_", "-")}'
  return program


def command_line(command: str) -> str:
  """The running command as a user could type it again, e.g. for a report to show."""
  return shlex.join([_program(command), *sys.argv[1:]])


def _fail(program: str, message: str) -> None:
  """Prints `message` as one line and exits with status 2."""
  line = ' '.join(str(message).split())
  print(f'{program}: error: {line}', file=sys.stderr, flush=True)
  sys.exit(2)


def _flag_error_message(error: Exception, argv: list[str]) -> str:
  """One line saying which flag is wrong, from absl's or ml_collections' error."""
  message = str(error)
  if 'Traceback (most recent call last)' in message:  # A config file's get_config raised.
    last = [line for line in message.splitlines() if line.strip()][-1]
    return f'{message.splitlines()[0].rstrip(":")} {last.strip()}'
  typo = re.search(r'Did you mean "(\w+)" instead of "(\w+)"', message.replace('\\"', '"'))
  if typo:
    suggestion, wrong = typo.groups()
    flag = next((arg.split('=')[0] for arg in argv if f'.{wrong}' in arg.split('=')[0]),
                wrong)
    return f'{flag}: no such config field; did you mean {suggestion!r}?'
  if isinstance(error, (AttributeError, KeyError)):
    field = message.strip('\'"')
    return f'--config override names a field that does not exist: {field}'
  return message.splitlines()[0] if message else type(error).__name__


def _parse_flags(program: str):
  from absl import flags  # pylint: disable=g-import-not-at-top

  def parse(argv):
    if '--version' in argv[1:]:
      print(versions())
      sys.exit(0)
    try:
      return flags.FLAGS(argv)
    except (flags.Error, errors.UserError, AttributeError, KeyError) as error:
      # AttributeError and KeyError: ml_collections' answer to --config.<missing field>.
      _fail(program, _flag_error_message(error, argv))
  return parse


def run(command: str) -> None:
  """Runs `command` (one of COMMANDS) as its console script does, and never returns."""
  from absl import app, logging  # pylint: disable=g-import-not-at-top
  program = _program(command)
  module = _load(f'tftransfer.cli.{command}')
  from tftransfer import runtime  # pylint: disable=g-import-not-at-top
  from tftransfer.training import interrupts  # pylint: disable=g-import-not-at-top
  runtime.set_command_started(_STARTED)

  def main(argv):
    # TensorFlow's checkpoint writer logs one INFO line per save through absl ('Sharding
    # callback duration'), which drowns the progress lines; its warnings and errors still show.
    logging.get_absl_handler().addFilter(
        lambda record: (record.module != 'functional_saver'
                        or record.levelno > python_logging.INFO))
    try:
      if len(argv) > 1 and not getattr(module, 'TAKES_ARGUMENTS', False):
        raise errors.InvalidValueError(f'unexpected arguments {argv[1:]}; this command takes '
                                       'only --flags (see --helpshort).')
      module.main(argv)
    except errors.UserError as error:
      _fail(program, str(error))
    except interrupts.Interrupted as stopped:  # Logged, with the step, where it was raised.
      sys.exit(stopped.exit_code)

  app.run(main, flags_parser=_parse_flags(program))


def train():
  """Console script tftransfer-train."""
  run('train')


def export():
  """Console script tftransfer-export."""
  run('export')


def predict():
  """Console script tftransfer-predict."""
  run('predict')


def evaluate():
  """Console script tftransfer-evaluate."""
  run('evaluate')


def make_tfrecords():
  """Console script tftransfer-make-tfrecords."""
  run('make_tfrecords')


def audit():
  """Console script tftransfer-audit."""
  run('audit')


def report():
  """Console script tftransfer-report."""
  run('report')


def explain():
  """Console script tftransfer-explain."""
  run('explain')
