"""What every command does around its `main`: a quiet start, --version, one-line user errors.

Every spelling of a command enters here: `tftransfer <command>`, `python -m tftransfer
<command>`, the console scripts `tftransfer-<command>` (all `main`, which reads the command
from the program's name or its first argument) and `python -m tftransfer.<command>` (the
modules at the package's top call `run`). The commands are commands.py's table. `run`:
  1. sets TensorFlow's C++ log level to warnings and above (TF_CPP_MIN_LOG_LEVEL=1) unless the
     user set it, before TensorFlow is first imported, and keeps the start-up notices that
     no log level reaches off the screen while TensorFlow loads and finds its devices
     (tf_noise.py);
  2. answers --version with the tftransfer, TensorFlow and Keras versions;
  3. parses flags, turning a flag or config-override mistake into one line, exit status 2;
  4. runs the command's `main(argv)`, at the default --verbosity with the success path's
     notices of TensorFlow and LiteRT kept off the screen (tf_noise.command_dropper, and
     libraries' INFO log records): a successful command prints what the user needs and
     nothing that looks like an error; --verbosity=1 shows everything. An errors.UserError
     (a bad value, a missing path, an unfinished run, ...) becomes `<program>: error:
     <message>` on stderr and exit status 2, without a traceback; a stop request
     (interrupts.Interrupted) exits 130 or 143; anything else keeps its traceback and exits 1.
"""

import difflib
import importlib
import logging as python_logging
import os
import re
import shlex
import sys
import time

from tftransfer import __version__, errors, tf_noise
from tftransfer.cli import commands

# The command's start, before TensorFlow loads: a time budget counts from here.
STARTED = time.time()
COMMANDS = tuple(commands.COMMANDS)


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


_program_name: list[str] = []  # how the user named the running command, once known


def _program(command: str) -> str:
  """The name a user typed for `command`: 'tftransfer train', its console script, or
  tftransfer-<command> when started as `python -m tftransfer.<command>`."""
  if _program_name:
    return _program_name[0]
  program = os.path.basename(sys.argv[0]) if sys.argv else command
  if program in ('__main__.py', f'{command}.py', '-c', ''):
    program = commands.console_script(command)
  return program


def command_line(command: str) -> str:
  """The running command as a user could type it again, e.g. for a report to show."""
  return shlex.join([*_program(command).split(' '), *sys.argv[1:]])


def _fail(program: str, message: str) -> None:
  """Prints `message` as one line and exits with status 2."""
  line = ' '.join(str(message).split())
  print(f'{program}: error: {line}', file=sys.stderr, flush=True)
  sys.exit(2)


def _no_such_field(flag: str) -> str:
  """'--config.x.y: no such config field; did you mean ...?' for a misspelt override."""
  from tftransfer import config as config_lib  # pylint: disable=g-import-not-at-top
  section = flag.split('=')[0].removeprefix('--config.').rpartition('.')[0]
  likely = [path.rpartition('.')[2] if path.rpartition('.')[0] == section else path
            for path in config_lib.suggest(flag.split('=')[0])]
  hint = (f"; did you mean {', '.join(map(repr, likely))}?" if likely else
          '; --helpfull lists every field.')
  return f'{flag.split("=")[0]}: no such config field{hint}'


def _flag_error_message(error: Exception, argv: list[str], module=None,
                        program: str = '') -> str:
  """One line saying which flag is wrong, from absl's or ml_collections' error."""
  message = str(error)
  if 'Traceback (most recent call last)' in message:  # A config file's get_config raised.
    last = [line for line in message.splitlines() if line.strip()][-1]
    return f'{message.splitlines()[0].rstrip(":")} {last.strip()}'
  typo = re.search(r'Did you mean "(\w+)" instead of "(\w+)"', message.replace('\\"', '"'))
  missing = typo.group(2) if typo else message.strip('\'"') if isinstance(
      error, (AttributeError, KeyError)) else None
  if missing:
    flag = next((arg for arg in argv if arg.startswith('--config.')
                 and arg.split('=')[0].rsplit('.', 1)[-1] == missing), f'--config.{missing}')
    return _no_such_field(flag)
  unknown = re.match(r"Unknown command line flag '(\w+)'", message)
  if unknown and module is not None:
    return _unknown_flag(unknown.group(1), module, program)
  return message.splitlines()[0] if message else type(error).__name__


def _unknown_flag(name: str, module, program: str) -> str:
  """'--x is not a flag of <program>; did you mean --y? ...', from the command's own flags
  (absl suggests from all of them, TensorFlow's and absl's too: --workdir -> --log_dir)."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  own = sorted(flag.name for flag in flags.FLAGS.get_key_flags_for_module(module.__name__))
  close = difflib.get_close_matches(name, own, n=3, cutoff=0.6)
  message = f'--{name} is not a flag of {program}'
  message += (f'; did you mean {" or ".join("--" + flag for flag in close)}?' if close else
              f'; its flags are {", ".join("--" + flag for flag in own)} (--helpshort).')
  if name == 'workdir' and 'model' in own:
    message += (' It reads an exported model: --model=EXPORT_DIR/VERSION (or a .tflite), '
                'which `tftransfer-export --workdir=RUN --export_dir=EXPORT_DIR` writes.')
  return message


# absl's help flags, and whether each asks for the command's own flags only.
_HELP = {'--help': True, '-h': True, '-?': True, '--helpshort': True, '--helpfull': False}


def _help(module, program: str, *, short: bool) -> str:
  """The command's usage (its module docstring) and its flags (with --helpfull, every
  flag, absl's and TensorFlow's too)."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  listed = (flags.FLAGS.module_help(module.__name__) if short else flags.FLAGS.get_help())
  return (f'{program}: {(module.__doc__ or "").strip()}\n\nflags:\n{listed}\n'
          + ('\n(--helpfull lists every flag, absl\'s and TensorFlow\'s too.)\n'
             if short else ''))


def _parse_flags(program: str, module):
  from absl import flags  # pylint: disable=g-import-not-at-top

  def parse(argv):
    if '--version' in argv[1:]:
      print(versions())
      sys.exit(0)
    asked = [arg for arg in argv[1:] if arg in _HELP]
    if asked:  # absl would exit 1; asking for help is not a failure.
      print(_help(module, program, short=_HELP[asked[0]]))
      sys.exit(0)
    try:
      return flags.FLAGS(argv)
    except (flags.Error, errors.UserError, AttributeError, KeyError) as error:
      # AttributeError and KeyError: ml_collections' answer to --config.<missing field>.
      _fail(program, _flag_error_message(error, argv, module, program))
  return parse


_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _quiet_python_logging() -> None:
  """Keeps libraries' INFO lines off the screen: absl INFO records from outside tftransfer
  (TensorFlow's SavedModel writer: 'Function ... contains input name(s) ... with unsupported
  characters', 'Assets written to', 'Writing fingerprint', the checkpoint writer's
  'Sharding callback duration', which drowned the progress lines) and the 'tensorflow'
  Python logger's ('INFO:tensorflow:Assets written to'). Their warnings and errors show."""
  from absl import logging  # pylint: disable=g-import-not-at-top
  logging.get_absl_handler().addFilter(
      lambda record: (record.levelno > python_logging.INFO
                      or os.path.abspath(record.pathname).startswith(_PACKAGE)))
  python_logging.getLogger('tensorflow').setLevel(python_logging.WARNING)


def run(command: str) -> None:
  """Runs `command` (one of COMMANDS) as its console script does, and never returns."""
  from absl import app, logging  # pylint: disable=g-import-not-at-top
  program = _program(command)
  module = _load(f'tftransfer.cli.{command}')
  from tftransfer.training import interrupts  # pylint: disable=g-import-not-at-top

  def main(argv):
    quiet = logging.get_verbosity() <= logging.INFO  # --verbosity=1 or more shows it all
    if quiet:
      _quiet_python_logging()
    try:
      if len(argv) > 1 and not getattr(module, 'TAKES_ARGUMENTS', False):
        raise errors.InvalidValueError(f'unexpected arguments {argv[1:]}; this command takes '
                                       'only --flags (see --helpshort).')
      if quiet:
        with tf_noise.filtered(tf_noise.command_dropper()):
          module.main(argv)
      else:
        module.main(argv)
    except errors.UserError as error:
      _fail(program, str(error))
    except interrupts.Interrupted as stopped:  # Logged, with the step, where it was raised.
      sys.exit(stopped.exit_code)

  app.run(main, flags_parser=_parse_flags(program, module))


def usage() -> str:
  width = max(map(len, COMMANDS))
  return '\n'.join(['usage: tftransfer <command> [--flags] [arguments]  (or python -m '
                    'tftransfer <command>, or tftransfer-<command>)', '', 'commands:'] +
                   [f'  {name:<{width}}  {text}' for name, text in commands.COMMANDS.items()] +
                   ['', "'tftransfer <command> --helpshort' lists a command's flags; "
                    "'tftransfer --version' the versions."])


def main() -> None:
  """Every console script: `tftransfer-<command> ...` and `tftransfer <command> ...`."""
  program = os.path.basename(sys.argv[0]) if sys.argv else 'tftransfer'
  by_script = {commands.console_script(name): name for name in COMMANDS}
  if program in by_script:
    run(by_script[program])
  arguments = sys.argv[1:]
  if arguments in (['--version'], ['version']):
    print(versions())
    sys.exit(0)
  if not arguments or arguments[0] in ('-h', '--help', 'help'):
    print(usage(), file=sys.stdout if arguments else sys.stderr)
    sys.exit(0 if arguments else 2)
  command = arguments[0].replace('-', '_')
  if command not in COMMANDS:
    print(f'tftransfer: error: {arguments[0]!r} is not a command.\n\n{usage()}',
          file=sys.stderr)
    sys.exit(2)
  _program_name[:] = [f'tftransfer {arguments[0]}']
  sys.argv = [f'tftransfer {arguments[0]}', *arguments[1:]]
  run(command)
