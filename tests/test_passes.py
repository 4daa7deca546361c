"""Progress lines of long passes: rate and time left at the mean rate, at most one line per
interval, none for a pass that ends sooner."""

from tftransfer import passes


def test_the_line_gives_the_share_done_the_rate_and_the_time_left():
  assert passes.line('Scan of /d', 40_960, 1_000_000, 25.0) == (
      'Scan of /d: 40,960 of 1,000,000 images (4.1 %), 1,638 images/s, '
      'about 9 min 45 s left.')
  assert passes.line('Scan', 0, 10, 0.0) == 'Scan: 0 of 10 images (0.0 %), 0 images/s.'
  assert passes.seconds_text(44.6) == '45 s'
  assert passes.seconds_text(7322) == '2 h 02 min'


def test_lines_come_at_most_every_interval_and_not_at_the_end():
  moments, logged = iter([0.0, 10.0, 31.0, 40.0, 62.0, 100.0]), []
  progress = passes.Progress('Pass', 100, every=30.0, now=lambda: next(moments),
                             log=logged.append)
  for done in (10, 31, 40, 62, 100):  # at 10 s, 31 s, 40 s, 62 s and 100 s
    progress.update(done)
  assert [text.split(':')[1].split(' of')[0].strip() for text in logged] == ['31', '62']
  assert 'about 1 min 9 s left' in logged[0]  # 69 images at 1 image/s
