"""Where and how training runs: tf.distribute strategy, compute precision and XLA.

'auto' values become measured choices, and each choice is logged with its reason.
Measurements behind the CPU rules (2-core AMD EPYC with AVX512_BF16, TF 2.21, Keras 3.15):
  - XLA (jit_compile=True) made training 2-8x slower;
  - mixed_float16 made it 5-11x slower;
  - mixed_bfloat16 made ResNet50 about 17 % faster but MobileNet 25 % and EfficientNetV2-B0
    27 % slower (depthwise convolutions have no fast bfloat16 kernels on CPU).
On GPUs and TPUs XLA and mixed precision are the usual wins.
"""

import dataclasses
import enum
import json
import os

from absl import logging
import tensorflow as tf

from tftransfer import config as config_lib


class Precision(str, enum.Enum):
  """Compute precision of a run (weights stay float32 in the mixed ones)."""
  FLOAT32 = 'float32'
  BFLOAT16 = 'bfloat16'
  FLOAT16 = 'float16'

  @property
  def keras_policy(self) -> str:
    """The Keras dtype policy name: 'float32' | 'mixed_bfloat16' | 'mixed_float16'."""
    return self.value if self is Precision.FLOAT32 else f'mixed_{self.value}'


assert tuple(p.value for p in Precision) == config_lib.PRECISIONS


@dataclasses.dataclass(frozen=True)
class Runtime:
  """The resolved execution setup of one run."""
  strategy: tf.distribute.Strategy
  strategy_name: str  # one of config.STRATEGIES
  precision: Precision
  jit_compile: bool
  is_chief: bool  # writes checkpoints, logs and exports
  worker_index: int
  num_workers: int

  @property
  def keras_policy(self) -> str:
    return self.precision.keras_policy


def _cpu_has_bfloat16() -> bool:
  try:
    with open('/proc/cpuinfo') as cpuinfo:
      flags = cpuinfo.read()
  except OSError:
    return False
  return 'avx512_bf16' in flags or 'amx_bf16' in flags


def _gpu_compute_capability() -> tuple[int, int] | None:
  gpus = tf.config.list_physical_devices('GPU')
  if not gpus:
    return None
  details = tf.config.experimental.get_device_details(gpus[0])
  return details.get('compute_capability', (0, 0))


def create_strategy(name: str, tpu_address: str = '') -> tuple[tf.distribute.Strategy, str]:
  """Creates the tf.distribute strategy `name`; returns it with its resolved name.

  Call it before any other TensorFlow work: MultiWorkerMirroredStrategy must configure the
  runtime's collective ops before the runtime starts.

  Args:
    name: 'auto' or one of config.STRATEGIES.
    tpu_address: TPU name or grpc:// address for 'tpu'; '' = the local TPU VM.

  Raises:
    ValueError: an unknown name, or 'multi_worker' without TF_CONFIG.
  """
  if name not in (config_lib.AUTO,) + config_lib.STRATEGIES:
    raise ValueError(f'Unknown config.distribute.strategy={name!r}; valid: auto, '
                     f'{", ".join(config_lib.STRATEGIES)}.')
  if name == 'multi_worker':
    if 'TF_CONFIG' not in os.environ:
      raise ValueError("distribute.strategy='multi_worker' needs the TF_CONFIG environment "
                       'variable describing the cluster and this task (see README, '
                       "'Multiple GPUs and hosts').")
    return tf.distribute.MultiWorkerMirroredStrategy(), name
  if name == 'tpu':
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu_address or None)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver), name
  gpus = [device.name for device in tf.config.list_logical_devices('GPU')]
  if name == 'auto':
    name = 'mirrored' if len(gpus) > 1 else 'one_device'
    logging.info('distribute.strategy=auto -> %s (%d local GPUs).', name, len(gpus))
    if 'TF_CONFIG' in os.environ:
      logging.warning('TF_CONFIG is set but strategy=auto stays on this machine; use '
                      '--config.distribute.strategy=multi_worker to join the cluster.')
  if name == 'one_device':
    return tf.distribute.OneDeviceStrategy(gpus[0] if gpus else '/cpu:0'), name
  # Mirrored over every local GPU; without GPUs over every logical CPU device (one, unless
  # the process split its CPU with tf.config.set_logical_device_configuration).
  devices = gpus or [device.name for device in tf.config.list_logical_devices('CPU')]
  return tf.distribute.MirroredStrategy(devices), name


def _worker(strategy: tf.distribute.Strategy) -> tuple[bool, int, int]:
  """(is_chief, worker_index, num_workers) of this process."""
  resolver = getattr(strategy, 'cluster_resolver', None)
  if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or resolver is None:
    return True, 0, 1
  cluster = resolver.cluster_spec().as_dict()
  task_type, task_id = resolver.task_type, resolver.task_id
  workers = len(cluster.get('chief', [])) + len(cluster.get('worker', []))
  index = task_id if task_type == 'chief' or 'chief' not in cluster else task_id + 1
  is_chief = task_type == 'chief' or (task_type == 'worker' and task_id == 0
                                      and 'chief' not in cluster)
  return is_chief, index, workers


def resolve_precision(requested: str, *, strategy_name: str,
                      depthwise_backbone: bool) -> Precision:
  """Resolves train.mixed_precision; 'auto' picks by hardware (see module docstring).

  Raises:
    ValueError: an unknown precision name.
  """
  if requested != config_lib.AUTO:
    if requested not in config_lib.PRECISIONS:
      raise ValueError(f'Unknown config.train.mixed_precision={requested!r}; valid: auto, '
                       f'{", ".join(config_lib.PRECISIONS)}.')
    return Precision(requested)
  capability = _gpu_compute_capability()
  if strategy_name == 'tpu':
    choice, why = 'bfloat16', 'TPUs compute natively in bfloat16'
  elif capability is not None:
    if capability >= (8, 0):
      choice, why = 'bfloat16', f'GPU compute capability {capability} has bfloat16 tensor cores'
    elif capability >= (7, 0):
      choice, why = 'float16', f'GPU compute capability {capability} has float16 tensor cores'
    else:
      choice, why = 'float32', f'GPU compute capability {capability} gains nothing from 16 bits'
  elif not _cpu_has_bfloat16():
    choice, why = 'float32', 'this CPU has no bfloat16 instructions'
  elif depthwise_backbone:
    choice, why = 'float32', ('depthwise convolutions measured 25-27 % slower in bfloat16 '
                              'on CPU')
  else:
    choice, why = 'bfloat16', 'this CPU has AVX512_BF16/AMX (ResNet50 measured 17 % faster)'
  logging.info('train.mixed_precision=auto -> %s: %s.', choice, why)
  return Precision(choice)


def resolve_jit_compile(requested: bool | None, *, strategy_name: str) -> bool:
  """Resolves train.jit_compile (None = 'auto': XLA on GPU/TPU, not on CPU, where it measured
  2-8x slower).

  Multi-worker GPU training stays without XLA: XLA-compiled steps with NCCL all-reduce
  across workers are a known failure (tensorflow/tensorflow#48502).
  """
  if requested is not None:
    return requested
  gpus = _gpu_compute_capability() is not None
  if strategy_name == 'multi_worker' and gpus:
    choice, why = False, ('XLA with NCCL all-reduce across workers is a known failure '
                          '(tensorflow/tensorflow#48502)')
  elif strategy_name == 'tpu' or gpus:
    choice, why = True, 'XLA fuses kernels on accelerators'
  else:
    choice, why = False, 'XLA measured 2-8x slower on this kind of CPU'
  logging.info('train.jit_compile=auto -> %s: %s.', choice, why)
  return choice


def setup(*, strategy: str, tpu_address: str, mixed_precision: str, jit_compile: bool | None,
          depthwise_backbone: bool) -> Runtime:
  """Creates the strategy and resolves precision and XLA for it.

  Args:
    strategy: config.distribute.strategy ('auto' or one of config.STRATEGIES).
    tpu_address: config.distribute.tpu_address.
    mixed_precision: config.train.mixed_precision ('auto' or one of config.PRECISIONS).
    jit_compile: config.train.jit_compile parsed, None = 'auto'.
    depthwise_backbone: whether the backbone is built from depthwise convolutions.

  Raises:
    ValueError: an unknown strategy or precision, or 'multi_worker' without TF_CONFIG.
  """
  distribution, strategy_name = create_strategy(strategy, tpu_address)
  is_chief, worker_index, num_workers = _worker(distribution)
  logging.info('Strategy %s: %d replicas in sync, worker %d of %d%s.', strategy_name,
               distribution.num_replicas_in_sync, worker_index, num_workers,
               ' (chief)' if is_chief else '')
  if 'TF_CONFIG' in os.environ:
    logging.info('TF_CONFIG: %s', json.loads(os.environ['TF_CONFIG']))
  return Runtime(
      strategy=distribution, strategy_name=strategy_name,
      precision=resolve_precision(mixed_precision, strategy_name=strategy_name,
                                  depthwise_backbone=depthwise_backbone),
      jit_compile=resolve_jit_compile(jit_compile, strategy_name=strategy_name),
      is_chief=is_chief, worker_index=worker_index, num_workers=num_workers)
