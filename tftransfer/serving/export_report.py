"""export_report.json: every exported format measured on the run's validation split before the
export is published, and the accuracy guard that stops a quantized model losing accuracy
unnoticed (google-coral/edgetpu#636).

Each artifact (the SavedModel, the .keras file, each .tflite) classifies the same images: the
run's validation split in its evaluation view, rounded to uint8 pixels, which is what an app
sends a model that takes pixels. Recorded per artifact: top-1 accuracy, its drop in points
from the SavedModel's, how often its top-1 class is the SavedModel's, the largest difference
of any probability from the SavedModel's, the size in bytes, and the median latency of one
image on this CPU.

The guard (accuracy_guard) judges a drop with its sample in mind: a converted model fails
when its drop is larger than its maximum *and* the paired 95% interval of the drop excludes
zero, so one flipped prediction among 45 images (2.2 points, within chance) does not fail a
1-point guard, while a real 4.5-point int8 loss on 1,000 images does. Formats that pass are
published, those that fail are named and left out (export.py).
"""

import dataclasses
import math
import os
import platform
import statistics
import time
from typing import Callable, Iterable

import numpy as np

from tftransfer import errors, multilabel

REPORT_FILE = 'export_report.json'
REFERENCE = 'saved_model'  # the artifact the others are compared with


# Two-sided 95% normal quantile of the paired interval of a drop.
Z_95 = 1.959964


class AccuracyDropError(errors.InvalidValueError):
  """A converted model lost more top-1 accuracy than --max_accuracy_drop allows.

  Attributes:
    failed: the names of the formats that failed ('tflite_int8', ...).
    exported_to: the version directory the passing formats were published to; None when
      nothing was.
  """

  def __init__(self, message: str, *, failed: tuple[str, ...] = (),
               exported_to: str | None = None):
    super().__init__(message)
    self.failed = failed
    self.exported_to = exported_to


def paired_drop_interval(num_images: int, lost: int, gained: int) -> tuple[float, float]:
  """The 95% interval of a top-1 accuracy drop measured on the same images, in points.

  Args:
    num_images: images both models classified.
    lost: images the reference got right and the converted model wrong.
    gained: images the reference got wrong and the converted model right.

  Returns:
    (low, high) of 100 * (lost - gained) / num_images: Agresti and Min's interval for a
    difference of matched proportions (Statistics in Medicine 24, 2005: the Wald interval
    after adding 1/2 to each cell of the 2x2 table), which keeps its coverage with few
    disagreements, where the plain Wald interval collapses to a point.

  Raises:
    ValueError: counts that do not fit num_images.
  """
  if num_images <= 0 or lost < 0 or gained < 0 or lost + gained > num_images:
    raise ValueError(f'lost={lost}, gained={gained} do not fit num_images={num_images}.')
  total = num_images + 2.0
  low_lost, low_gained = (lost + 0.5) / total, (gained + 0.5) / total
  difference = low_lost - low_gained
  spread = Z_95 * math.sqrt(max(low_lost + low_gained - difference ** 2, 0.0) / total)
  return 100 * (difference - spread), 100 * (difference + spread)


def accuracy_guard(drop_points: float, max_drop_points: float | None,
                   interval: tuple[float, float] | None) -> str:
  """'failed', 'passed' or 'not_guarded': the verdict on one converted model.

  A drop fails when it is larger than `max_drop_points` and, given an `interval` (the paired
  95% interval, paired_drop_interval), that interval lies above zero: the loss is real, not
  chance. Without an interval (multi-label mAP) the drop alone decides.
  """
  if max_drop_points is None:
    return 'not_guarded'
  larger = drop_points > max_drop_points
  real = interval is None or interval[0] > 0
  return 'failed' if larger and real else 'passed'


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
  """Per artifact {top-1 accuracy, top1_agreement, max_probability_difference, lost, gained
  (images right for the reference only, for it only)}."""
  correct = np.zeros(len(artifacts), np.int64)
  agree = np.zeros(len(artifacts), np.int64)
  lost = np.zeros(len(artifacts), np.int64)
  gained = np.zeros(len(artifacts), np.int64)
  difference = np.zeros(len(artifacts))
  count, first_image = 0, None
  for images, labels in batches:
    first_image = images[:1] if first_image is None else first_image
    reference = None
    for index, artifact in enumerate(artifacts):
      probabilities = artifact.classify(images)
      predicted = probabilities.argmax(-1)
      right = predicted == labels
      correct[index] += int(right.sum())
      if reference is None:
        reference, reference_right = probabilities, right
      lost[index] += int((reference_right & ~right).sum())
      gained[index] += int((~reference_right & right).sum())
      agree[index] += int((predicted == reference.argmax(-1)).sum())
      difference[index] = max(difference[index], float(np.abs(probabilities - reference).max()))
    count += len(labels)
  if not count:
    raise errors.InvalidValueError('The validation split is empty: nothing to verify the '
                                   'export on.')
  return [{'accuracy': float(correct[index] / count),
           'top1_agreement': round(float(agree[index] / count), 5),
           'max_probability_difference': round(float(difference[index]), 6),
           'lost': int(lost[index]), 'gained': int(gained[index])}
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
    metric), top1_agreement (label_agreement), max_probability_difference; single-label also
    lost, gained (paired counts) and accuracy_drop_interval_points (95%,
    paired_drop_interval); then guard (accuracy_guard's verdict), latency_ms and the
    artifact's details.
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
      drop = 100 * (measured[0]['reference'] - value)
      interval = None
      if 'lost' in measured[index]:
        interval = paired_drop_interval(count, measured[index]['lost'],
                                        measured[index]['gained'])
        measured[index]['accuracy_drop_interval_points'] = [round(interval[0], 3),
                                                            round(interval[1], 3)]
      result.update(
          accuracy_drop_points=round(drop, 3),
          max_accuracy_drop_points=artifact.max_accuracy_drop, **measured[index],
          guard=accuracy_guard(drop, artifact.max_accuracy_drop, interval))
    else:
      measured[0]['reference'] = value
      for paired in ('lost', 'gained'):  # zero for the reference itself
        measured[0].pop(paired, None)

    result['latency_ms'] = round(_median_latency_ms(artifact.classify, first_image,
                                                    latency_runs), 3)
    results.append({**result, **artifact.details})
  return results


def kept(results: list[dict]) -> list[str]:
  """The names of the formats an export publishes: all measured but the failed ones (and the
  reference SavedModel when it was only measured)."""
  return [result['name'] for result in results if result.get('guard') != 'failed'
          and result.get('exported', True)]


def imprecise(results: list[dict]) -> str | None:
  """One warning naming the guarded formats whose drop the sample cannot resolve to their
  maximum (the half-width of the drop's 95% interval is larger than --max_accuracy_drop),
  or None when the sample resolves every one."""
  vague = []
  for result in results[1:]:
    interval = result.get('accuracy_drop_interval_points')
    limit = result.get('max_accuracy_drop_points')
    if interval is not None and limit is not None and (interval[1] - interval[0]) / 2 > limit:
      vague.append(f'{result["name"]} {result["accuracy_drop_points"]:.2f} ({interval[0]:.2f} '
                   f'to {interval[1]:.2f}, more than --max_accuracy_drop={limit:g} wide)')
  if not vague:
    return None
  return (f'On {results[0]["num_images"]} validation images the top-1 drops are known only '
          f'roughly (95% intervals, points): {"; ".join(vague)}. The guard fails only drops '
          'it can tell from chance; a larger validation split (data.val_fraction, or '
          'data.val_path) judges finer.')


def check_accuracy(results: list[dict], *, exported_to: str | None = None) -> None:
  """Raises AccuracyDropError naming every format the guard failed (accuracy_guard), what
  was published instead, and how to proceed; returns when none failed.

  Args:
    results: measure()'s list.
    exported_to: the version directory the passing formats were published to; None = none
      were ('Nothing was exported').
  """
  failed = [result for result in results[1:] if result.get('guard') == 'failed']
  if not failed:
    return
  metric = results[0]['metric']
  shown = 'top-1' if metric == 'top1_accuracy' else 'mAP'
  reference = results[0][metric]

  def described(result):
    interval = result.get('accuracy_drop_interval_points')
    within = (f', 95% interval {interval[0]:.2f} to {interval[1]:.2f}' if interval else '')
    return (f'{result["name"]} {shown} {result[metric]:.4f} is '
            f'{result["accuracy_drop_points"]:.2f} points below the SavedModel\'s '
            f'{reference:.4f}{within}, more than --max_accuracy_drop='
            f'{result["max_accuracy_drop_points"]:g}')

  outcome = (f'Exported the others ({", ".join(kept(results))}) to {exported_to}, without '
             f'{", ".join(result["name"] for result in failed)}'
             if exported_to else 'Nothing was exported')
  raise AccuracyDropError(
      '; '.join(described(result) for result in failed)
      + f' (on {results[0]["num_images"]} validation images). {outcome}. Use a milder '
      '--quantize, more --calibration_images for int8, or accept the loss with a larger '
      '--max_accuracy_drop.', failed=tuple(result['name'] for result in failed),
      exported_to=exported_to)


def machine() -> dict:
  """Where latencies were measured: the CPU's model name and core count."""
  processor = platform.processor() or platform.machine()
  if os.path.isfile('/proc/cpuinfo'):
    with open('/proc/cpuinfo') as f:
      processor = next((line.split(':', 1)[1].strip() for line in f
                        if line.startswith('model name')), processor)
  return {'processor': processor, 'cpu_count': os.cpu_count()}
