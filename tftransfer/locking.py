"""The workdir's lock: one training at a time in a workdir (workdir.Workdir.lock takes it).

    acquire(W, path)    creates lock.json (host, pid, since, command, a token) or refuses
                        naming its holder (errors.InUseError); a lock whose process on this
                        host is gone is taken over with a warning
    release(path, t)    removes it if it is still this process's
    lock_is_stale(...)  the takeover decision, a pure function

Atomic on a local disk (O_CREAT | O_EXCL); on GCS, which has no exclusive creation, best
effort (create_exclusive).
"""

import datetime
import json
import os
import shlex
import socket
import sys
import time
from typing import Callable
import uuid

from absl import logging
import tensorflow as tf

from tftransfer import errors

_HELD: set[str] = set()  # lock files this process holds now (see lock_is_stale)
_LOCK_ATTEMPTS = 5  # creations tried before giving up to processes racing for one lock


def holds(path: str) -> bool:
  """Whether this process holds the lock file `path` now."""
  return path in _HELD


def process_alive(pid: int) -> bool:
  """Whether process `pid` exists on this host (os.kill(pid, 0) sends no signal)."""
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # Another user's process: it exists.
    return True
  except (OverflowError, ValueError):
    return False
  return True


def lock_is_stale(holder: dict, *, host: str, pid: int, held: bool,
                  alive: Callable[[int], bool]) -> bool:
  """Whether the lock `holder` (a lock.json's content) was left by a process that is gone, so
  that this process (`host`, `pid`; `held`: it holds that lock itself) may take it over.

  Only a lock of this host can be checked: stale when its pid no longer exists (`alive`), or
  when it names this very process, which does not hold it (a container restarted with the
  same host name and pid). A lock of another host is never stale from here.
  """
  if holder.get('host') != host or not isinstance(holder.get('pid'), int):
    return False
  if holder['pid'] == pid:
    return not held
  return not alive(holder['pid'])


def _removal(path: str) -> str:
  """The shell command that removes the file `path`."""
  if path.startswith('gs://'):
    return f'gcloud storage rm {path}'
  return f'rm {shlex.quote(path)}' if '://' not in path else f'delete {path}'


def in_use_message(workdir: str, lock_path: str, holder: dict | None, *, host: str) -> str:
  """The one line refusing a second training in `workdir`: who holds `lock_path` (host, pid,
  since when, its command) and how to remove the lock if that process is gone."""
  if holder is None:
    who = f'its lock {lock_path} is unreadable (a process killed while writing it?)'
    check = 'If no training runs there'
  else:
    who = (f'a training by pid {holder.get("pid")} on host {holder.get("host")} holds it '
           f'since {holder.get("since")} ({holder.get("command")})')
    check = (f'If that process is gone (host {holder.get("host")} cannot be checked from '
             f'{host})' if holder.get('host') != host else
             f'If pid {holder.get("pid")} is not that training')
  return (f'Workdir {workdir} is in use: {who}. Wait for it to finish or train in another '
          'workdir (export, evaluate and report read this one meanwhile with '
          '--allow_unfinished). '
          f'{check}, remove the lock: {_removal(lock_path)}')


def _read_text(path: str) -> str | None:
  """The file's text, or None when it does not exist."""
  try:
    with tf.io.gfile.GFile(path) as f:
      return f.read()
  except tf.errors.NotFoundError:
    return None


def _parse_lock(text: str) -> dict | None:
  try:
    holder = json.loads(text)
  except ValueError:
    return None
  return holder if isinstance(holder, dict) else None


def create_exclusive(path: str, text: str) -> bool:
  """Creates `path` holding `text` unless it exists; whether this call created it.

  Atomic on a local disk (O_CREAT | O_EXCL). tf.io.gfile filesystems (GCS) have no exclusive
  creation: the file is written when absent and re-read a second later, and this call owns
  it if it still holds `text`. That is best effort: two processes starting within that
  second can both win.
  """
  if '://' not in path:
    try:
      descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
      return False
    with os.fdopen(descriptor, 'w') as f:
      f.write(text)
    return True
  if tf.io.gfile.exists(path):
    return False
  with tf.io.gfile.GFile(path, 'w') as f:
    f.write(text)
  time.sleep(1)  # Lets a writer racing for the lock finish, so the re-read sees the winner.
  return _read_text(path) == text


def acquire(workdir: str, path: str, *, command: str) -> str:
  """Takes the lock file `path` of `workdir` for this process; returns the text written
  (JSON: host, pid, since (ISO 8601, UTC), command and a unique token), which
  release needs. A lock left by a process that is gone (lock_is_stale) is taken over,
  with a warning naming it.

  Raises:
    errors.InUseError: another process holds the lock (or it cannot be read); the message
      names the holder and the command that removes the lock if the holder is gone.
  """
  host, pid = socket.gethostname(), os.getpid()
  text = json.dumps({'host': host, 'pid': pid, 'command': command, 'token': uuid.uuid4().hex,
                     'since': datetime.datetime.now(datetime.timezone.utc).isoformat(
                         timespec='seconds')}, indent=2, sort_keys=True) + '\n'
  holder = None
  for _ in range(_LOCK_ATTEMPTS):
    if create_exclusive(path, text):
      _HELD.add(path)
      return text
    found = _read_text(path)
    for _ in range(10):  # A lock being written right now reads empty for a moment.
      if found is None or _parse_lock(found) is not None:
        break
      time.sleep(0.1)
      found = _read_text(path)
    if found is None:
      continue  # Released meanwhile: try again.
    holder = _parse_lock(found)
    if holder is None or not lock_is_stale(holder, host=host, pid=pid, held=holds(path),
                                           alive=process_alive):
      break
    if _read_text(path) == found:  # Nobody took it over meanwhile.
      logging.warning('Taking over the lock %s: its training (pid %s on %s, since %s) no '
                      'longer runs.', path, holder.get('pid'), host, holder.get('since'))
      tf.io.gfile.remove(path)
  raise errors.InUseError(in_use_message(workdir, path, holder, host=host))


def release(path: str, text: str) -> None:
  """Removes the lock file `path` if it still holds `text` (acquire's), so a lock
  taken over by another process stays its own."""
  _HELD.discard(path)
  try:
    if _read_text(path) == text:
      tf.io.gfile.remove(path)
  except tf.errors.NotFoundError:
    pass


def live_holder(path: str) -> dict | None:
  """The lock file `path`'s holder (host, pid, since, command) while it is not stale (a lock
  of another host counts as live: it cannot be checked); None without a lock."""
  text = _read_text(path)
  holder = None if text is None else _parse_lock(text)
  if holder is None or lock_is_stale(holder, host=socket.gethostname(), pid=os.getpid(),
                                     held=holds(path), alive=process_alive):
    return None
  return holder


def command_line() -> str:
  """This process's command line, as a lock names it."""
  return ' '.join([sys.argv[0] if sys.argv else 'python', *map(shlex.quote, sys.argv[1:])])
