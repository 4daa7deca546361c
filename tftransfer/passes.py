"""Progress lines with an ETA for long passes over every image (the folder scan, the audit's
decode pass, the backbone's feature pass): at a million files each takes many minutes.

    progress = passes.Progress('Folder scan of /data/photos', total=1_000_000)
    for batch in batches:
      ...
      progress.update(done)     # logs at most every EVERY_SECONDS, never for a short pass

A line reads 'Folder scan of /data/photos: 40,960 of 1,000,000 images (4.1 %), 1,650
images/s, about 9 min 41 s left.'
"""

import time
from typing import Callable

from absl import logging

EVERY_SECONDS = 30.0  # between two lines; a pass that ends sooner logs none


def seconds_text(seconds: float) -> str:
  """'45 s', '9 min 41 s', '2 h 05 min' (seconds, >= 0)."""
  seconds = max(0, round(seconds))
  if seconds < 60:
    return f'{seconds} s'
  if seconds < 3600:
    return f'{seconds // 60} min {seconds % 60} s'
  return f'{seconds // 3600} h {seconds % 3600 // 60:02d} min'


def line(what: str, done: int, total: int, seconds: float) -> str:
  """The progress line of `done` of `total` images after `seconds` (rate and time left at
  the mean rate so far)."""
  rate = done / seconds if seconds > 0 else 0.0
  left = f', about {seconds_text((total - done) / rate)} left' if rate > 0 else ''
  return (f'{what}: {done:,} of {total:,} images ({100 * done / max(total, 1):.1f} %), '
          f'{rate:,.0f} images/s{left}.')


class Progress:
  """Logs `line` for a pass over `total` images, at most every `every` seconds (default
  EVERY_SECONDS), when `update` is called: after each batch of the pass, so a line can come
  later when a batch takes longer. The first lines' rate includes the pass's warm-up."""

  def __init__(self, what: str, total: int, *, every: float | None = None,
               now: Callable[[], float] = time.monotonic, log: Callable[[str], None] | None = None):
    self.what, self.total, self.now = what, total, now
    self.every = EVERY_SECONDS if every is None else every
    self.log = log or (lambda text: logging.info('%s', text))
    self.started = self.last = now()

  def update(self, done: int) -> None:
    """`done` images of the pass are finished."""
    moment = self.now()
    if moment - self.last >= self.every and done < self.total:
      self.last = moment
      self.log(line(self.what, done, self.total, moment - self.started))
