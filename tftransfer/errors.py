"""Errors that are the user's to fix, as opposed to bugs.

Every command prints a `UserError` as one line, `<command>: error: <message>`, and exits with
status 2, without a traceback (cli/launch.py); any other exception keeps its traceback and
exits 1. Each class also derives from the built-in error it refines, so Python callers can
catch `ValueError` or `FileNotFoundError` as before.

A message names the bad value and says how to fix it, on one line.
"""


class UserError(Exception):
  """A problem with the user's input: a value, a path, the data or the state of a run."""


class InvalidValueError(UserError, ValueError):
  """A config field, flag or argument with a value that cannot work, or data or a workdir
  whose contents do not fit the request (another experiment, an unfinished run)."""


class NotFoundError(UserError, FileNotFoundError):
  """A path the user named does not exist, or does not hold what it should."""


class AlreadyExistsError(UserError, FileExistsError):
  """An output the user named exists and is never overwritten without being asked to."""


class InUseError(UserError, RuntimeError):
  """A workdir another process is training in (its lock.json names the holder)."""


class DivergedError(UserError, FloatingPointError):
  """Training produced a non-finite loss (a learning rate too high for the data)."""


class UnavailableError(UserError, RuntimeError):
  """Something needs the network (weights, a dataset download) and it is not there."""
