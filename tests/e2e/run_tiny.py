"""Runs `loop.train_and_evaluate(tiny_config(**overrides), workdir)` in its own process.

Usage: python tests/run_tiny.py WORKDIR '{"train__max_steps": 3}' [LOGICAL_CPUS]

Distributed tests need fresh processes: TF_CONFIG and logical CPU devices must be set before
TensorFlow starts. Prints the final metrics as the last line of stdout, as JSON; a run
stopped by a signal exits with the status tftransfer-train would.
"""

import json
import os
import sys

from absl import logging
import tensorflow as tf


def main(workdir, overrides, logical_cpus=1):
  logging.set_verbosity(logging.INFO)  # The tests read the run's log lines.
  if logical_cpus > 1:
    cpu = tf.config.list_physical_devices('CPU')[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * logical_cpus)
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
  from tests.helpers import tiny_config  # pylint: disable=g-import-not-at-top
  from tftransfer.training import interrupts, loop  # pylint: disable=g-import-not-at-top
  try:
    final = loop.train_and_evaluate(tiny_config(**overrides), workdir)
  except interrupts.Interrupted as stopped:
    sys.exit(stopped.exit_code)
  print(json.dumps(final), flush=True)


if __name__ == '__main__':
  main(sys.argv[1], json.loads(sys.argv[2]), *(int(a) for a in sys.argv[3:]))
