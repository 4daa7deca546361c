r"""Audits a run's data: duplicates and leaks across splits, likely label errors, outliers.

Usage:
  # A training run's data (finished: its trained backbone's features); writes W/audit.json:
  python -m tftransfer.audit --workdir=/tmp/run [--test_dir=/data/my_test_images]
  # Data before any training (the pretrained backbone's features):
  python -m tftransfer.audit --workdir=/tmp/audit --config=configs/folder.py \
      --config.data.path=/data/my_images
  # Also list the flagged files for a run to leave out (config.data.exclude_file):
  python -m tftransfer.audit --workdir=/tmp/run --write_exclusions=/tmp/exclude.txt
"""

from absl import flags
from absl import logging
from ml_collections import config_flags

from tftransfer import workdir as workdir_lib
from tftransfer.auditing import findings as findings_lib, run

_WORKDIR = flags.DEFINE_string('workdir', None, 'A training run, whose data is audited; or, '
                               'with --config, a directory for the audit before training. '
                               'audit.json and audit_thumbnails.png are written into it.')
_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'For a --workdir that holds no run: a config in configs/ naming the data '
    '(data section, seed) and the backbone whose pretrained features are used.')
_TEST_DIR = flags.DEFINE_string('test_dir', None, 'A held-out image folder with the same '
                                'class sub-folders: its copies in train or validation are '
                                'reported as leaks.')
_FIX = flags.DEFINE_enum('fix', 'report', ['report', 'exclusions'], "'report' only reports; "
                         "'exclusions' also writes the list of files to leave out "
                         '(to --write_exclusions, by default WORKDIR/exclusions.txt).')
_WRITE_EXCLUSIONS = flags.DEFINE_string(
    'write_exclusions', None, 'Write the flagged training files (all but one copy of each '
    'duplicate group, the label errors more likely wrong than right, outliers) here, one a '
    'line, for --config.data.exclude_file; implies --fix=exclusions.')
_EXCLUDE_LABEL_ERRORS = flags.DEFINE_float(
    'exclude_label_errors_above', None, 'With exclusions: list the flagged label errors at '
    'least this likely wrong (0-1; default config.audit.label_error_exclusion_confidence, '
    '0.5: more likely wrong than right; 0 lists every flagged one).',
    lower_bound=0.0, upper_bound=1.0)
flags.mark_flags_as_required(['workdir'])


def main(argv):
  del argv  # No positional arguments (cli/launch.py refuses them).
  exclusions_file = _WRITE_EXCLUSIONS.value
  if _FIX.value == 'exclusions' and not exclusions_file:
    exclusions_file = run.Workdir(_WORKDIR.value).file(workdir_lib.EXCLUSIONS)
  if _CONFIG.value is not None and logging.get_verbosity() >= 1:
    logging.info('Config as given:\n%s', _CONFIG.value)
  findings = run.audit_workdir(_WORKDIR.value, config=_CONFIG.value, test_dir=_TEST_DIR.value,
                               exclusions_file=exclusions_file,
                               label_error_confidence=_EXCLUDE_LABEL_ERRORS.value)
  print(findings_lib.summary(findings))
  print(f'Findings: {run.Workdir(_WORKDIR.value).file(run.AUDIT_FILE)}'
        + (f'; exclusions: {exclusions_file}' if exclusions_file else ''))
