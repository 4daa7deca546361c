"""export_report.json: every exported format measured on the run's validation split before the
export is published, and the accuracy guard that stops a quantized model losing accuracy
unnoticed (google-coral/edgetpu#636).

Each artifact (the SavedModel, the .keras file, each .tflite) classifies the same images: the
run's validation split in its evaluation view, rounded to uint8 pixels, which is what an app
sends a model that takes pixels. Recorded per artifact: top-1 accuracy, its drop in points
from the SavedModel's, how often its top-1 class is the SavedModel's, the largest difference
of any probability from the SavedModel's, the size in bytes, and the median latency of one
image on this CPU.
"""

import dataclasses
import os
import platform
import statistics
import time
from typing import Callable, Iterable

import numpy as np

from tftransfer import errors, multilabel

REPORT_FILE = 'export_report.json'
REFERENCE = 'saved_model'  # the artifact the others are compared with


class AccuracyDropError(errors.InvalidValueError):
  """A converted model lost more top-1 accuracy than --max_accuracy_drop allows."""


@dataclasses.dataclass(frozen=True)
class Artifact:
  """One exported file or directory and how to run it."""
  name: str  # 'saved_model', 'keras', 'tflite', 'tflite_int8', ...
  files: tuple[str, ...]  # the files and directories it consists of (their size is counted)
  # uint8 pixels [B, S, S, 3] -> float32 probabilities [B, num_classes]
  classify: Callable[[np.ndarray], np.ndarray]
  max_accuracy_drop: float | None = None  # in points; None = not guarded
  details: dict = dataclasses.field(default_factory=dict)  # recorded as they are


def size_in_bytes(paths: Iterable[str]) -> int:
  """The total size of files, and of the files below directories."""
  total = 0
  for path in paths:
    if os.path.isfile(path):
      total += os.path.getsize(path)
    for root, _, names in os.walk(path):
      total += sum(os.path.getsize(os.path.join(root, name)) for name in names)
  return total


def _median_latency_ms(classify: Callable[[np.ndarray], np.ndarray], image: np.ndarray,
                       runs: int, warmup: int = 3) -> float:
  for _ in range(warmup):
    classify(image)
  times = []
  for _ in range(runs):
    start = time.perf_counter()
    classify(image)
    times.append(time.perf_counter() - start)
  return 1000 * statistics.median(times)


def _measure_multilabel(artifacts: list[Artifact], batches, thresholds: np.ndarray
                        ) -> tuple[list[dict], int, np.ndarray]:
  """Per artifact {mean_average_precision, label_agreement (the share of image-label
  decisions at the thresholds equal to the reference's), max_probability_difference}."""
  outputs = [[] for _ in artifacts]
  targets, first_image = [], None
  for images, labels in batches:
    first_image = images[:1] if first_image is None else first_image
    targets.append(labels)
    for index, artifact in enumerate(artifacts):
      outputs[index].append(artifact.classify(images))
  if not targets:
    raise errors.InvalidValueError('The validation split is empty: nothing to verify the '
                                   'export on.')
  targets = np.concatenate(targets)
  probabilities = [np.concatenate(output) for output in outputs]
  reference = probabilities[0] >= thresholds
  measured = []
  for index, values in enumerate(probabilities):
    measured.append({
        'accuracy': multilabel.average_precision(values, targets)[0],
        'label_agreement': round(float(np.mean((values >= thresholds) == reference)), 5),
        'max_probability_difference': round(float(np.abs(values - probabilities[0]).max()),
                                            6)})
  return measured, len(targets), first_image


def _measure_top1(artifacts: list[Artifact], batches) -> tuple[list[dict], int, np.ndarray]:
  """Per artifact {top-1 accuracy, top1_agreement, max_probability_difference}."""
  correct = np.zeros(len(artifacts), np.int64)
  agree = np.zeros(len(artifacts), np.int64)
  difference = np.zeros(len(artifacts))
  count, first_image = 0, None
  for images, labels in batches:
    first_image = images[:1] if first_image is None else first_image
    reference = None
    for index, artifact in enumerate(artifacts):
      probabilities = artifact.classify(images)
      predicted = probabilities.argmax(-1)
      correct[index] += int((predicted == labels).sum())
      if reference is None:
        reference = probabilities
      agree[index] += int((predicted == reference.argmax(-1)).sum())
      difference[index] = max(difference[index], float(np.abs(probabilities - reference).max()))
    count += len(labels)
  if not count:
    raise errors.InvalidValueError('The validation split is empty: nothing to verify the '
                                   'export on.')
  return [{'accuracy': float(correct[index] / count),
           'top1_agreement': round(float(agree[index] / count), 5),
           'max_probability_difference': round(float(difference[index]), 6)}
          for index in range(len(artifacts))], count, first_image


def measure(artifacts: list[Artifact], batches: Iterable[tuple[np.ndarray, np.ndarray]], *,
            latency_runs: int, thresholds: np.ndarray | None = None) -> list[dict]:
  """Runs every artifact over `batches` and times each on one image.

  Args:
    artifacts: the REFERENCE artifact first, then the ones compared with it.
    batches: (uint8 pixels [B, S, S, 3], int labels [B]) numpy pairs; multi-label: 0/1
      targets [B, num_labels].
    latency_runs: timed calls of one image per artifact (after 3 untimed ones).
    thresholds: a multi-label model's label thresholds [num_labels]: the artifacts are then
      compared by mean average precision (and their decisions at the thresholds).

  Returns:
    One dict per artifact, in order: name, bytes, num_images, top1_accuracy (multi-label:
    mean_average_precision), and for all but the reference accuracy_drop_points (in that
    metric), top1_agreement (label_agreement), max_probability_difference; then latency_ms
    and the artifact's details.
  """
  if artifacts[0].name != REFERENCE:
    raise ValueError(f'The first artifact must be the {REFERENCE}, not {artifacts[0].name}.')
  if thresholds is not None:
    measured, count, first_image = _measure_multilabel(artifacts, batches, thresholds)
    metric = 'mean_average_precision'
  else:
    measured, count, first_image = _measure_top1(artifacts, batches)
    metric = 'top1_accuracy'
  results = []
  for index, artifact in enumerate(artifacts):
    value = measured[index].pop('accuracy')
    result = {'name': artifact.name, 'bytes': size_in_bytes(artifact.files),
              'num_images': count, metric: round(value, 5), 'metric': metric}
    if index:
      result.update(
          accuracy_drop_points=round(100 * (measured[0]['reference'] - value), 3),
          max_accuracy_drop_points=artifact.max_accuracy_drop, **measured[index])
    else:
      measured[0]['reference'] = value
    result['latency_ms'] = round(_median_latency_ms(artifact.classify, first_image,
                                                    latency_runs), 3)
    results.append({**result, **artifact.details})
  return results


def check_accuracy(results: list[dict]) -> None:
  """Raises AccuracyDropError naming every artifact whose drop exceeds its maximum."""
  failed = [result for result in results[1:] if result['max_accuracy_drop_points'] is not None
            and result['accuracy_drop_points'] > result['max_accuracy_drop_points']]
  if failed:
    metric = results[0]['metric']
    shown = 'top-1' if metric == 'top1_accuracy' else 'mAP'
    reference = results[0][metric]
    raise AccuracyDropError(
        '; '.join(f'{result["name"]} {shown} {result[metric]:.4f} is '
                  f'{result["accuracy_drop_points"]:.2f} points below the SavedModel\'s '
                  f'{reference:.4f}, more than --max_accuracy_drop='
                  f'{result["max_accuracy_drop_points"]:g}' for result in failed)
        + f' (on {results[0]["num_images"]} validation images). Nothing was exported. Use '
        'a milder --quantize, more --calibration_images for int8, or accept the loss with '
        'a larger --max_accuracy_drop.')


def machine() -> dict:
  """Where latencies were measured: the CPU's model name and core count."""
  processor = platform.processor() or platform.machine()
  if os.path.isfile('/proc/cpuinfo'):
    with open('/proc/cpuinfo') as f:
      processor = next((line.split(':', 1)[1].strip() for line in f
                        if line.startswith('model name')), processor)
  return {'processor': processor, 'cpu_count': os.cpu_count()}
