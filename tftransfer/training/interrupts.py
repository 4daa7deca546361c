"""SIGINT and SIGTERM as a request to stop training at the next step boundary.

A user's Ctrl-C, a scheduler's SIGTERM and a spot VM's preemption notice all mean "stop
soon", not "throw away the work since the last checkpoint". Inside `stop_requests()` such a
signal only sets `StopRequest.signum`; the training loop checks it between steps, saves a
checkpoint and raises `Interrupted`, so re-running the command resumes exactly there. A
second signal stops at once, as the default handler would have.

Before training starts (the data scan, planning, building the model), `terminate_raises()`
turns SIGTERM into `Interrupted` at once, as Python turns Ctrl-C into KeyboardInterrupt, so
`finally` blocks run (the workdir's lock is released) where the default handler would end
the process without them.
"""

import contextlib
import dataclasses
import signal
import threading

from absl import logging

SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclasses.dataclass
class StopRequest:
  """The signal asking training to stop (None = none yet)."""
  signum: int | None = None


class Interrupted(KeyboardInterrupt):
  """Training stopped on request after saving a checkpoint.

  A KeyboardInterrupt, so notebooks and callers treat it as Ctrl-C; `exit_code` is the
  shell's convention for death by that signal (130 for SIGINT, 143 for SIGTERM).
  """

  def __init__(self, message: str, signum: int | None):
    super().__init__(message)
    self.signum = signum
    self.exit_code = 128 + signum if signum else 1


@contextlib.contextmanager
def stop_requests():
  """Within the block, SIGINT and SIGTERM set the yielded StopRequest instead of killing.

  Only the main thread can install signal handlers; elsewhere the request is never set and
  signals keep their usual effect.
  """
  request = StopRequest()
  if threading.current_thread() is not threading.main_thread():
    yield request
    return

  def handle(signum, unused_frame):
    if request.signum is not None:
      raise KeyboardInterrupt(f'second {signal.Signals(signum).name}: stopping at once')
    request.signum = signum
    logging.warning('%s received: stopping after the current steps, with a checkpoint. '
                    'Send it again to stop at once, losing them.',
                    signal.Signals(signum).name)

  previous = {signum: signal.signal(signum, handle) for signum in SIGNALS}
  try:
    yield request
  finally:
    for signum, handler in previous.items():
      signal.signal(signum, handler)


@contextlib.contextmanager
def terminate_raises():
  """Within the block, SIGTERM raises Interrupted (exit code 143) where the process is, so
  cleanup runs; stop_requests() inside it takes SIGTERM over while training. Only the main
  thread can install signal handlers; elsewhere SIGTERM keeps its usual effect."""
  if threading.current_thread() is not threading.main_thread():
    yield
    return

  def handle(signum, unused_frame):
    raise Interrupted(f'{signal.Signals(signum).name} received before training started; '
                      'stopped.', signum)

  previous = signal.signal(signal.SIGTERM, handle)
  try:
    yield
  finally:
    signal.signal(signal.SIGTERM, previous)
