"""What a run has done so far: its global step, its finished epochs' rows, its newest
evaluation. Small and mutable: the training loop updates it, the decisions (pacing.py,
selection.py) read it.

The global step counts the steps trained, across sessions (it is checkpointed); with the
plan it gives the phase and epoch. A phase ended early ends at the step it reached: nothing
jumps it.

A run stopped by train.max_steps inside an epoch evaluates it there: that row is marked
'partial', counts for neither selection nor patience (selection.py), and is replaced by the
epoch's row when a continued run completes the epoch (workdir.with_metrics_row), so a capped
and continued run has the rows of an uninterrupted one and selects and stops by the same rule
(and, as a resumed session reads on in the same data stream, the same values: loop.py).
"""

import dataclasses

import tensorflow as tf

from tftransfer import workdir as workdir_lib
from tftransfer.training.steps import Sums


@dataclasses.dataclass
class Progress:
  """A run's position and results so far."""
  step: tf.Variable  # int64, the global step: steps trained; checkpointed
  rows: list[dict]  # metrics rows of the evaluated epochs (the last may be partial), as
  # every worker computed them
  last_eval: tuple[int, Sums] | None = None  # (step, validation sums) of the newest epoch end

  @property
  def current(self) -> int:
    return int(self.step.numpy())

  def advance(self, num_steps: int) -> None:
    self.step.assign_add(num_steps)

  def evaluated(self, row: dict, sums: Sums) -> None:
    """Records an evaluated epoch: its metrics `row` (in place of a partial row of that
    epoch) and validation `sums`."""
    self.rows = workdir_lib.with_metrics_row(self.rows, row)
    self.last_eval = (row['step'], sums)
