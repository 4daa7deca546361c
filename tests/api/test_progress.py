"""What a run from Python shows: bars in a notebook, the log lines in a script."""

from absl import logging

from tftransfer.api import progress


def test_a_script_shows_the_runs_log_lines_and_a_notebook_its_bars():
  # A plain script never parses absl's flags, so absl shows warnings only: a trial trained
  # for minutes with no line at all.
  assert progress.run_verbosity(bars=False, verbosity=logging.WARNING,
                                configured=False) == logging.INFO
  # --verbosity given (an absl app) or a level set otherwise is the caller's choice.
  assert progress.run_verbosity(bars=False, verbosity=logging.WARNING,
                                configured=True) == logging.WARNING
  assert progress.run_verbosity(bars=False, verbosity=logging.DEBUG,
                                configured=False) == logging.DEBUG
  # Bars hold the INFO lines back; warnings still show.
  assert progress.run_verbosity(bars=True, verbosity=logging.INFO,
                                configured=True) == logging.WARNING
