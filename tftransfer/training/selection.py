"""Which epoch's weights are the run's result, and when a phase should stop early.

Every epoch ends with an evaluation; the epoch whose train.select_metric is best so far (the
highest val_accuracy or val_balanced_accuracy, the lowest val_loss; ties keep the earlier
epoch) becomes the run's selected checkpoint (checkpoints.py keeps it apart from the newest,
which is only for resuming), as Model Garden and timm keep their best checkpoint. With
train.early_stopping_patience = P, a phase ends after P epochs of it without a new best.
Both count epochs: a partial epoch's row (a run stopped by train.max_steps inside it) is
neither selected nor counted; a continued run replaces it with the epoch's own row.
"""

import math

# The metric rows carry, and whether higher is better.
HIGHER_IS_BETTER = {'val_accuracy': True, 'val_balanced_accuracy': True, 'val_loss': False,
                    'val_map': True}


def is_better(metric: str, value: float, best: float | None) -> bool:
  """Whether `value` of `metric` beats `best` (None or NaN: anything finite does)."""
  if value is None or not math.isfinite(value):
    return False
  if best is None or not math.isfinite(best):
    return True
  return value > best if HIGHER_IS_BETTER[metric] else value < best


def complete(rows: list[dict]) -> list[dict]:
  """The rows of whole epochs: without a partial epoch's (marked 'partial')."""
  return [row for row in rows if not row.get('partial')]


def best_row(rows: list[dict], metric: str) -> dict | None:
  """The metrics.jsonl row of a whole epoch with the best `metric` (the earliest of equals),
  or None (no whole epoch yet)."""
  best = None
  for row in complete(rows):
    if is_better(metric, row.get(metric), None if best is None else best[metric]):
      best = row
  return best


def epochs_without_improvement(rows: list[dict], metric: str, phase: str) -> int:
  """How many of `phase`'s latest whole epochs came after the run's best row (all of the
  phase's whole epochs when the best is from an earlier phase)."""
  best = best_row(rows, metric)
  later = [row for row in complete(rows) if row['phase'] == phase
           and (best is None or row['step'] > best['step'])]
  return len(later)
