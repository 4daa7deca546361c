"""A time budget's estimates: how fast the backbone runs here, and what fits in the time left.

train.time_budget_minutes = B makes a run finish within B minutes of wall time, start-up,
data loading, feature computation and every evaluation included, across resumed sessions
(the time spent so far is kept in the checkpoint). What it does:

  1. before training, if model.image_size is 'auto': measures the backbone's inference speed
     on one batch at the rule's resolution, estimates each candidate resolution's fine-tuning
     epoch (a train step costs plan.TRAIN_COST inferences, cost grows with the pixels) and picks
     the largest resolution that leaves at least `min_finetune_epochs`;
  2. plans the 'auto' fine-tuning epochs that fit the time left by that estimate, and, once
     the fine-tuning phase has run MEASURE_STEPS steps, again from their measured speed (the
     cosine schedule is stretched or shortened to the new length);
  3. at every step boundary: when the time left would not cover the rest of the epoch and
     its evaluation, the phase ends there (its schedule cut short), so the run still ends in
     time if it ran slower than planned.

Step 1 and 2's estimates are here (planning.py applies them when it makes the plan); the
re-plan and the cut are pacing.py's decisions, on the run's one clock (clock.py).
"""

import dataclasses
import time

import tensorflow as tf

from tftransfer import plan as plan_lib
from tftransfer.model import backbones, transfer

# Kept free at the end for the last evaluation's variance, the final write and exit.
MARGIN_SECONDS, MARGIN_FRACTION = 10.0, 0.03
# Tracing a phase's step functions (measured 10-50 s on this CPU).
TRACE_SECONDS = 30.0
# Fine-tuning steps timed before re-planning the phase's length.
MEASURE_STEPS = 40
CANDIDATE_SIZES = (96, 128, 160, 192, 224, 256, 299, 320, 384)


def inference_speed(backbone: str, *, width: float, image_size: int, batch_size: int,
                    preset: str = '') -> float:
  """Images/sec of the backbone and pooling in inference mode at `image_size` (random
  weights and pixels: speed does not depend on them), after one untimed call."""
  model = transfer.build_model(backbone=backbone, num_classes=2, image_size=image_size,
                               width=width, weights='none', preset=preset).features
  features = tf.function(lambda images: model(images, training=False))
  images = tf.random.uniform([batch_size, image_size, image_size, 3], 0, 255)
  features(images).numpy()
  started, calls = time.perf_counter(), 0
  while calls < 2 or time.perf_counter() - started < 1.0:
    features(images).numpy()
    calls += 1
  return calls * batch_size / (time.perf_counter() - started)


@dataclasses.dataclass(frozen=True)
class Estimate:
  """Predicted seconds of a run's parts at one resolution."""
  image_size: int
  features: float  # the head phase's one feature pass over train and validation
  finetune_epoch: float  # one fine-tuning epoch and its evaluation

  def finetune_epochs(self, seconds: float, head_seconds: float) -> int:
    """Fine-tuning epochs that fit in `seconds` after the feature pass and `head_seconds`:
    0 when nothing is left for them, else at least 1 (measured steps re-plan it, and the
    run stops in time whatever the estimate)."""
    spare = seconds - self.features - head_seconds - TRACE_SECONDS
    return max(int(spare // self.finetune_epoch), 1) if spare > 0 else 0


def estimate(speed: float, *, measured_size: int, image_size: int, num_train: int,
             num_val: int) -> Estimate:
  """Scales an inference `speed` (images/sec at `measured_size`) to `image_size` by pixel
  count and predicts the costs of training there."""
  speed_there = speed * (measured_size / image_size) ** 2
  return Estimate(image_size=image_size, features=(num_train + num_val) / speed_there,
                  finetune_epoch=(num_train * plan_lib.TRAIN_COST + num_val) / speed_there)


def candidate_sizes(backbone: str, largest: int, preset: str = '') -> list[int]:
  """The resolutions a budget chooses from, smallest first, up to `largest`."""
  spec = backbones.get_spec(backbone, preset)
  return sorted({size for size in CANDIDATE_SIZES if spec.min_size <= size <= largest}
                | {max(spec.min_size, min(largest, CANDIDATE_SIZES[0]))})


def choose_image_size(speed: float, *, sizes: list[int], num_train: int, num_val: int,
                      seconds: float, head_seconds: float,
                      min_finetune_epochs: int) -> tuple[Estimate, str]:
  """The estimate at the largest of `sizes` (ascending) at which at least
  `min_finetune_epochs` fine-tuning epochs fit in `seconds` (else the smallest), and why;
  `speed` is the inference images/sec measured at sizes[0]."""
  estimates = [estimate(speed, measured_size=sizes[0], image_size=size, num_train=num_train,
                        num_val=num_val) for size in sizes]
  fitting = [e for e in estimates
             if e.finetune_epochs(seconds, head_seconds) >= min_finetune_epochs]
  chosen = fitting[-1] if fitting else estimates[0]
  epochs = chosen.finetune_epochs(seconds, head_seconds)
  return chosen, (
      f'{speed:.0f} img/s inference measured at {sizes[0]} px: at {chosen.image_size} px about '
      f'{epochs} fine-tuning epochs of {chosen.finetune_epoch:.0f} s fit the '
      f'{seconds:.0f} s left (wanted at least {min_finetune_epochs})')


def epochs_after_measurement(*, seconds_left: float, steps_done: int, seconds_per_step: float,
                             steps_per_epoch: int, epoch_end_seconds: float) -> int:
  """A phase's length in epochs once its speed is measured: what fits in the time left plus
  the time its `steps_done` steps took, each epoch costing its steps and an epoch end of
  `epoch_end_seconds` (evaluation, checkpoint); never less than the epoch under way."""
  epoch_seconds = steps_per_epoch * seconds_per_step + epoch_end_seconds
  fitting = int((seconds_left + steps_done * seconds_per_step) // epoch_seconds)
  return max(steps_done // steps_per_epoch + 1, fitting)


def seconds_left(budget_seconds: float, elapsed: float) -> float:
  """Seconds a budget of `budget_seconds` leaves after `elapsed`, before the margin kept for
  the end (negative once it is spent)."""
  return budget_seconds * (1 - MARGIN_FRACTION) - MARGIN_SECONDS - elapsed
