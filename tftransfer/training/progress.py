"""What a run has done so far: its global step, its finished epochs' rows, its newest
evaluation. Small and mutable: the training loop updates it, the decisions (pacing.py,
selection.py) read it.

The global step counts the steps trained, across sessions (it is checkpointed); with the
plan it gives the phase and epoch. A phase ended early ends at the step it reached: nothing
jumps it.
"""

import dataclasses

import tensorflow as tf

from tftransfer.training.steps import Sums


@dataclasses.dataclass
class Progress:
  """A run's position and results so far."""
  step: tf.Variable  # int64, the global step: steps trained; checkpointed
  rows: list[dict]  # metrics rows of the finished epochs, as every worker computed them
  last_eval: tuple[int, Sums] | None = None  # (step, validation sums) of the newest epoch end

  @property
  def current(self) -> int:
    return int(self.step.numpy())

  def advance(self, num_steps: int) -> None:
    self.step.assign_add(num_steps)

  def evaluated(self, row: dict, sums: Sums) -> None:
    """Records a finished epoch: its metrics `row` and validation `sums`."""
    self.rows.append(row)
    self.last_eval = (row['step'], sums)
