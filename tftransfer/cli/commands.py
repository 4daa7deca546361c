"""Every command, in one table: `tftransfer <command>` and `python -m tftransfer <command>`
dispatch from it, and setup.py makes each console script `tftransfer-<command>` from it.

A new command is one entry here and its module, tftransfer/cli/<command>.py, which defines
its absl flags and `main(argv)` (cli/launch.py runs it). Plain Python with no imports, so
setup.py can read it without importing TensorFlow.
"""

# command -> what it does (the usage line of `tftransfer` without a command).
COMMANDS = {
    'train': 'fine-tune a pretrained backbone; the workdir holds the run and resumes it',
    'export': 'write a run as a SavedModel version for TF Serving, and LiteRT / .keras files',
    'predict': 'classify image files through an exported model (SavedModel or .tflite)',
    'evaluate': 'score a run or an export on held-out images: metrics.json and a report',
    'report': "write a run's HTML report: curves, per-class results, Grad-CAM, calibration",
    'explain': 'top-k classes and a Grad-CAM overlay for any image files',
    'audit': "audit a run's data: duplicates and leaks, likely label errors, outliers",
    'make_tfrecords': 'convert an image folder into sharded TFRecords',
    'inspect': "print a .tflite's embedded TFLite metadata and associated files, as JSON",
}


def console_script(command: str) -> str:
  """'tftransfer-make-tfrecords' for 'make_tfrecords'."""
  return f'tftransfer-{command.replace("_", "-")}'


def entry_points() -> list[str]:
  """setup.py's console_scripts: `tftransfer` and one `tftransfer-<command>` per command, all
  entering cli/launch.py's main, which reads the command from the program's name."""
  return ['tftransfer = tftransfer.cli.launch:main'] + [
      f'{console_script(command)} = tftransfer.cli.launch:main' for command in COMMANDS]
