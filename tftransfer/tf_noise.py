"""TensorFlow C++ log lines that say nothing to a tftransfer user, kept off the screen.

Three kinds, each dropped only inside a `filtered` block, never for a whole process:
  STARTUP            the notices TF 2.21 writes while it loads and finds its devices, before
                     its logging is initialised, which TF_CPP_MIN_LOG_LEVEL does not reach
                     (tensorflow/tensorflow#102212): oneDNN, 'Could not find cuda drivers',
                     CPU instructions, and the cuInit failure that repeats the missing driver;
  EXPECTED_FAILURE   'Local rendezvous is aborting with status: ...', which TF logs for every
                     op that fails inside a function, also when tftransfer makes it fail on
                     purpose to learn why an image is bad (and then reports it itself);
  COMMAND            what TF and LiteRT print on a command's success path at warning or error
                     level though nothing is wrong: oneDNN's uint8 fallback, the converter's
                     'Ignored output_format.' and 'Skipping runtime version metadata', its
                     'fully_quantize: ...' settings, 'Created TensorFlow Lite XNNPACK delegate',
                     tf.data's 'will not be optimized' and Grappler's 'Skipping loop
                     optimization' notes. A command runs inside this filter unless the user
                     asks for --verbosity=1 or more (cli/launch.py).

The filter reads file descriptor 2 (so C++ writes are seen) through a pipe, line by line,
and writes every other line on at once; the block's end restores stderr.
"""

import contextlib
import os
import re
import sys
import threading
from typing import Callable

_STARTUP = re.compile(rb'^(I0000 00:00:\S+ +\d+ \S+\] |WARNING: All log messages before absl::'
                      rb'InitializeLog\(\) is called are written to STDERR|To enable the '
                      rb'following instructions: )')
_NO_CUDA_DRIVER = b'Could not find cuda drivers'
_CUINIT_FAILED = re.compile(rb'^E0000 00:00:\S+ +\d+ cuda_platform\.cc:\d+\] failed call to '
                            rb'cuInit')
# Printed once when a uint8 op first runs (the scan's decode does), even on CPUs with
# AVX-512; TensorFlow falls back to its own kernels and nothing is wrong.
_ONEDNN_UINT8 = re.compile(rb'^E0000 00:00:\S+ +\d+ util\.cc:\d+\] oneDNN supports DT_UINT8 only')
# The message continues on following lines ('\t [[{{node ...}}]]').
_RENDEZVOUS = re.compile(rb'^W\d{4} [\d:.]+ +\d+ local_rendezvous\.cc:\d+\] Local rendezvous is '
                         rb'aborting')
_CONTINUATION = re.compile(rb'^\t')
_COMMAND = re.compile(
    rb'^(W0000 00:00:\S+ +\d+ (tf_tfl_flatbuffer_helpers\.cc:\d+\] Ignored '
    rb'|flatbuffer_export\.cc:\d+\] Skipping runtime version metadata'
    rb'|dataset\.cc:\d+\] Input of GeneratorDatasetOp::Dataset will not be optimized'
    rb'|loop_optimizer\.cc:\d+\] Skipping loop optimization)'
    rb'|fully_quantize: \d, inference_type: '
    rb'|INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.'
    rb'|E0000 00:00:\S+ +\d+ cuda_platform\.cc:\d+\] failed call to cuInit: INTERNAL: CUDA '
    rb'error: Failed call to cuInit: UNKNOWN ERROR \(303\))')

_lock = threading.Lock()


def startup_dropper() -> Callable[[bytes], bool]:
  """A line predicate dropping TensorFlow's start-up notices (see the module docstring)."""
  seen_no_driver = []

  def drop(line: bytes) -> bool:
    if _NO_CUDA_DRIVER in line:
      seen_no_driver.append(True)
    return bool(_STARTUP.match(line) or _ONEDNN_UINT8.match(line)
                or (seen_no_driver and _CUINIT_FAILED.match(line)))
  return drop


def expected_failure_dropper() -> Callable[[bytes], bool]:
  """A line predicate dropping TF's echo of ops failing on purpose (and its continuation)."""
  in_message = []

  def drop(line: bytes) -> bool:
    if _ONEDNN_UINT8.match(line):  # the scan's decode is the first uint8 op of a run
      return True
    if _RENDEZVOUS.match(line):
      in_message[:] = [True]
      return True
    if in_message and _CONTINUATION.match(line):
      return True
    in_message.clear()
    return False
  return drop


def command_dropper() -> Callable[[bytes], bool]:
  """A line predicate for a whole command: the COMMAND notices, and the start-up and
  expected-failure ones (a nested `filtered` block does not filter again, so this one does
  their work)."""
  startup, expected = startup_dropper(), expected_failure_dropper()

  def drop(line: bytes) -> bool:
    return bool(_COMMAND.match(line)) or startup(line) or expected(line)
  return drop


@contextlib.contextmanager
def filtered(drop: Callable[[bytes], bool]):
  """Inside the block, lines written to file descriptor 2 for which `drop(line)` is true are
  not shown; all others are, in order. Nested or concurrent blocks do not filter again."""
  if not _lock.acquire(blocking=False):
    yield
    return
  try:
    read_end, write_end = os.pipe()
    real, saved = os.dup(2), os.dup(2)
  except OSError:
    _lock.release()
    yield
    return

  def forward():
    with os.fdopen(read_end, 'rb') as lines, os.fdopen(real, 'wb', buffering=0) as out:
      for line in lines:
        if not drop(line):
          out.write(line)

  thread = threading.Thread(target=forward, name='tf-noise-filter', daemon=True)
  try:
    sys.stderr.flush()
    os.dup2(write_end, 2)
    os.close(write_end)
    thread.start()
    yield
  finally:
    sys.stderr.flush()
    os.dup2(saved, 2)  # Closes the pipe's last writer: the thread drains it and ends.
    os.close(saved)
    thread.join(timeout=10)
    _lock.release()
