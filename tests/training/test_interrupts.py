"""SIGINT and SIGTERM inside training become a stop request; a second one stops at once, and
the handlers are given back afterwards."""

import os
import signal

import pytest

from tftransfer.training import interrupts


def test_a_signal_becomes_a_request_and_a_second_one_stops_at_once():
  before = signal.getsignal(signal.SIGTERM)
  with interrupts.stop_requests() as request:
    assert request.signum is None
    os.kill(os.getpid(), signal.SIGTERM)
    assert request.signum == signal.SIGTERM  # training goes on to the next step boundary
    with pytest.raises(KeyboardInterrupt, match='second SIGTERM'):
      os.kill(os.getpid(), signal.SIGTERM)
  assert signal.getsignal(signal.SIGTERM) is before


def test_interrupted_carries_the_shells_exit_status():
  assert interrupts.Interrupted('stopped', signal.SIGINT).exit_code == 130
  assert interrupts.Interrupted('stopped', signal.SIGTERM).exit_code == 143
  assert isinstance(interrupts.Interrupted('stopped', None), KeyboardInterrupt)


def _unhandled(signum, unused_frame):  # Without terminate_raises: fail, do not kill pytest.
  raise RuntimeError(f'{signal.Signals(signum).name} was not handled')


def test_sigterm_before_training_raises_so_cleanup_runs():
  before = signal.signal(signal.SIGTERM, _unhandled)
  try:
    _sigterm_before_training()
  finally:
    signal.signal(signal.SIGTERM, before)


def _sigterm_before_training():
  before = signal.getsignal(signal.SIGTERM)
  with pytest.raises(interrupts.Interrupted, match='SIGTERM') as stopped:
    with interrupts.terminate_raises():
      with interrupts.stop_requests() as request:  # training takes SIGTERM over ...
        os.kill(os.getpid(), signal.SIGTERM)
        assert request.signum == signal.SIGTERM
      os.kill(os.getpid(), signal.SIGTERM)  # ... and gives it back
  assert stopped.value.exit_code == 143
  assert signal.getsignal(signal.SIGTERM) is before
