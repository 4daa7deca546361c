"""The run's one clock: elapsed time across sessions, and each phase's measured speed with
its tracing call left out."""

from tftransfer.clock import Clock


class FakeTime:
  def __init__(self, now=1000.0):
    self.now = now

  def __call__(self):
    return self.now


def test_elapsed_counts_earlier_sessions_and_this_one():
  time = FakeTime()
  clock = Clock(started=990.0, now=time)
  assert clock.elapsed() == 10.0
  clock.resume(100.0)
  time.now += 5
  assert clock.elapsed() == 115.0


def test_speed_leaves_the_first_call_out():
  clock = Clock(now=FakeTime())
  assert clock.reading('head').seconds_per_step is None
  clock.record_steps('head', 5, 30.0)  # tracing
  assert clock.reading('head').seconds_per_step is None
  clock.record_steps('head', 5, 1.0)
  clock.record_steps('head', 15, 2.0)
  reading = clock.reading('head')
  assert (reading.seconds_per_step, reading.measured_steps) == (3.0 / 20, 20)
  assert clock.reading('finetune').measured_steps == 0
  clock.record_epoch_end(4.0)
  clock.record_epoch_end(2.0)
  assert clock.reading('head').epoch_end_seconds == 4.0
