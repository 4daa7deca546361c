"""What the in-training audit covers within its share of the run: pure decisions.

A training run audits its data by default (auditing/run.py's in_training), and the audit
should cost at most `audit.in_training_share` (0.1) of the run's training time. Its parts
cost differently:
  decode pass and neighbour searches  near-linear in the images (the searches exact up to
                                      audit.exact_search_max_images, approximate beyond):
                                      SECONDS_PER_IMAGE each;
  label model                         grows with images x classes (label_errors.choose_model
                                      picks one that fits the seconds left, or none).
So beyond the images that fit, the in-training audit covers a random sample of them (never
fewer than MIN_SAMPLE), and the label model gets what the sample leaves of the share.
`tftransfer-audit --workdir=W` audits every image after training, with no limit.
"""

import dataclasses

# Seconds per image of the decode pass and both neighbour searches on this project's 2-core
# CPU: 1.4 ms at 50,000 CIFAR-10 images (46.8 s decode, 22.1 s exact searches) and at
# 200,000 (158.2 s, 127.4 s approximate); docs/scale.md. Photos larger than CIFAR-10's
# 32 px decode slower, so a run on them may exceed its share by that much.
SECONDS_PER_IMAGE = 1.4e-3
# Fewer images than this are not sampled: a sample under a thousand says little, and they
# cost under 1.5 s.
MIN_SAMPLE = 1000


@dataclasses.dataclass(frozen=True)
class Scope:
  """What the in-training audit covers, and why."""
  images: int  # in the run's splits
  audited: int  # of them, a random sample when fewer
  training_seconds: float  # the run's estimated training time
  share: float  # audit.in_training_share
  label_model_seconds: float  # what the sample leaves of the share for the label model

  @property
  def seconds(self) -> float:
    """The audit's share of the run, in seconds."""
    return self.share * self.training_seconds

  @property
  def why(self) -> str:
    share = (f'{100 * self.share:g} % of an estimated {self.training_seconds:.0f} s of '
             f'training is {self.seconds:.1f} s')
    fitting = int(self.seconds // SECONDS_PER_IMAGE)
    if self.audited == self.images:
      if self.images <= fitting:
        return f'every image: its share of the run, {share}'
      return (f'every image: its share of the run, {share}, holds about {fitting:,}, but '
              f'fewer than {MIN_SAMPLE:,} images are never sampled')
    return (f'a random {self.audited:,} of the {self.images:,} images: its share of the run, '
            f'{share}, holds the decode pass and neighbour searches of about {fitting:,} '
            f'images' + (f' (a sample is never under {MIN_SAMPLE:,})' if fitting < MIN_SAMPLE
                         else '') + '; tftransfer-audit audits every image')

  def to_json(self) -> dict:
    return {'images': self.images, 'audited': self.audited, 'share': self.share,
            'training_seconds': round(self.training_seconds, 1),
            'seconds': round(self.seconds, 1),
            'label_model_seconds': round(self.label_model_seconds, 1), 'why': self.why}


def in_training_scope(*, images: int, training_seconds: float, share: float) -> Scope:
  """The images the in-training audit covers and the seconds left for its label model.

  Args:
    images: in the run's training and validation splits.
    training_seconds: the run's estimated training time (plan.Plan.training_seconds).
    share: audit.in_training_share, in (0, 1].
  """
  budget = share * training_seconds
  fitting = int(budget // SECONDS_PER_IMAGE)
  audited = images if images <= max(fitting, MIN_SAMPLE) else max(fitting, MIN_SAMPLE)
  return Scope(images=images, audited=audited, training_seconds=training_seconds, share=share,
               label_model_seconds=max(budget - audited * SECONDS_PER_IMAGE, 0.0))
