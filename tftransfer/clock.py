"""The run's one clock: its wall time across resumed sessions, and how fast its steps run.

A time budget, the pacing decisions, the progress line's ETA and the seconds a checkpoint
records all read this one object (big_vision's `Chrono` is the model). It starts when the
command started (before TensorFlow loaded, when the command says so), adds the seconds of
the run's earlier sessions once they are restored from its checkpoint, and learns each
phase's seconds per step from the timed calls of its train loop (the first call of a phase,
which traces the step, left out).

Decisions never read the clock itself: they take a `Reading`, a frozen snapshot, so they
are pure functions that tests feed readings by hand.
"""

import dataclasses
import time
from typing import Callable


@dataclasses.dataclass(frozen=True)
class Reading:
  """The clock at one moment, as a decision sees it."""
  elapsed: float  # seconds the run has spent, across its sessions
  seconds_per_step: float | None  # measured for the phase asked about; None = not yet
  measured_steps: int  # steps behind that measurement
  epoch_end_seconds: float  # the longest epoch end (evaluation, checkpoint) measured so far


class Clock:
  """Wall time of one run and the measured speed of each phase's steps."""

  def __init__(self, *, started: float | None = None, now: Callable[[], float] = time.time):
    """
    Args:
      started: when the command started (time.time() units); None = now.
      now: the time source, seconds (tests pass a fake one).
    """
    self._now = now
    self.started = now() if started is None else started
    self.spent_before = 0.0  # seconds of the run's earlier sessions
    self._calls: dict[str, list[tuple[int, float]]] = {}  # phase -> [(steps, seconds)]
    self.epoch_end_seconds = 0.0

  def now(self) -> float:
    return self._now()

  def elapsed(self) -> float:
    """Seconds the run has spent: earlier sessions, and this one since it started."""
    return self.spent_before + self._now() - self.started

  def resume(self, spent_before: float) -> None:
    """Counts `spent_before` seconds of earlier sessions (restored from the checkpoint)."""
    self.spent_before = float(spent_before)

  def record_steps(self, phase: str, num_steps: int, seconds: float) -> None:
    """One timed call of `phase`'s train loop: `num_steps` steps in `seconds`."""
    self._calls.setdefault(phase, []).append((num_steps, seconds))

  def record_epoch_end(self, seconds: float) -> None:
    self.epoch_end_seconds = max(self.epoch_end_seconds, seconds)

  def reading(self, phase: str) -> Reading:
    """The clock now, with `phase`'s measured speed (its first call, the trace, left out)."""
    calls = self._calls.get(phase, [])[1:]
    steps = sum(count for count, _ in calls)
    per_step = sum(seconds for _, seconds in calls) / steps if steps else None
    return Reading(elapsed=self.elapsed(), seconds_per_step=per_step, measured_steps=steps,
                   epoch_end_seconds=self.epoch_end_seconds)
