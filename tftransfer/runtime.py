"""Where and how training runs: tf.distribute strategy, compute precision and XLA.

'auto' values become measured choices, and each choice is logged with its reason.
Measurements behind the CPU rules (2-core AMD EPYC with AVX512_BF16, TF 2.21, Keras 3.15):
  - XLA (jit_compile=True) made training 2-8x slower;
  - mixed_float16 made it 5-11x slower;
  - mixed_bfloat16 made ResNet50 about 17 % faster but MobileNet 25 % and EfficientNetV2-B0
    27 % slower (depthwise convolutions have no fast bfloat16 kernels on CPU).
On GPUs and TPUs XLA and mixed precision are the usual wins.
"""

import contextlib
import dataclasses
import enum
import json
import os
import random

from absl import logging
import keras
from keras.src.backend.common import global_state
import numpy as np
import tensorflow as tf
from tensorflow.python.eager import context as tf_context

from tftransfer import config as config_lib, errors

# What keras.utils.set_random_seed changes besides Python, NumPy and TensorFlow: Keras' global
# seed and its global SeedGenerator (keras/src/utils/rng_utils.py).
_KERAS_SEED_STATE = ('global_random_seed', 'global_seed_generator')

@contextlib.contextmanager
def seeded(seed: int):
  """Python's, NumPy's, TensorFlow's and Keras' random generators seeded with `seed` inside
  the block (keras.utils.set_random_seed), and the caller's states given back after it: a
  run is reproducible, and a notebook's own random streams are not moved by training."""
  python_state, numpy_state = random.getstate(), np.random.get_state()
  tf_seed = tf_context.global_seed()
  keras_state = {name: global_state.get_global_attribute(name) for name in _KERAS_SEED_STATE}
  keras.utils.set_random_seed(seed)
  try:
    yield
  finally:
    random.setstate(python_state)
    np.random.set_state(numpy_state)
    tf.random.set_seed(tf_seed)
    for name, value in keras_state.items():
      global_state.set_global_attribute(name, value)


@contextlib.contextmanager
def keras_policy(name: str):
  """Keras' global dtype policy set to `name` ('float32', 'mixed_bfloat16', ...) inside the
  block, and back to what it was after it: the one place a run or a restored model switches
  precision."""
  previous = keras.mixed_precision.dtype_policy()
  keras.mixed_precision.set_global_policy(name)
  try:
    yield
  finally:
    keras.mixed_precision.set_global_policy(previous)


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
  # 'auto' fields resolved here: {field: (value as config.json records it, why)}.
  auto_decisions: dict[str, tuple[str, str]] = dataclasses.field(default_factory=dict)

  @property
  def keras_policy(self) -> str:
    return self.precision.keras_policy

  def describe(self) -> str:
    """'Strategy S: N replicas in sync, worker I of W (chief)', plus TF_CONFIG if set."""
    line = (f'Strategy {self.strategy_name}: {self.strategy.num_replicas_in_sync} replicas in '
            f'sync, worker {self.worker_index} of {self.num_workers}'
            f'{" (chief)" if self.is_chief else ""}.')
    if 'TF_CONFIG' in os.environ:
      line += f' TF_CONFIG: {json.loads(os.environ["TF_CONFIG"])}'
    return line


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
    errors.InvalidValueError: an unknown name, or 'multi_worker' without TF_CONFIG.
  """
  if name not in (config_lib.AUTO,) + config_lib.STRATEGIES:
    raise errors.InvalidValueError(f'Unknown config.distribute.strategy={name!r}; valid: auto, '
                                   f'{", ".join(config_lib.STRATEGIES)}.')
  if name == 'multi_worker':
    if 'TF_CONFIG' not in os.environ:
      raise errors.InvalidValueError(
          "distribute.strategy='multi_worker' needs the TF_CONFIG environment "
          'variable describing the cluster and this task (see docs/distributed.md).')
    return tf.distribute.MultiWorkerMirroredStrategy(), name
  if name == 'tpu':
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu_address or None)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver), name
  gpus = [device.name for device in tf.config.list_logical_devices('GPU')]
  if name == 'auto':
    name = 'mirrored' if len(gpus) > 1 else 'one_device'
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


def auto_precision(*, strategy_name: str, depthwise_backbone: bool) -> tuple[Precision, str]:
  """train.mixed_precision='auto': the precision for this hardware, and why (module
  docstring)."""
  capability = _gpu_compute_capability()
  if strategy_name == 'tpu':
    return Precision.BFLOAT16, 'TPUs compute natively in bfloat16'
  if capability is not None:
    if capability >= (8, 0):
      return Precision.BFLOAT16, f'GPU compute capability {capability} has bfloat16 tensor cores'
    if capability >= (7, 0):
      return Precision.FLOAT16, f'GPU compute capability {capability} has float16 tensor cores'
    return Precision.FLOAT32, f'GPU compute capability {capability} gains nothing from 16 bits'
  if not _cpu_has_bfloat16():
    return Precision.FLOAT32, 'this CPU has no bfloat16 instructions'
  if depthwise_backbone:
    return Precision.FLOAT32, ('depthwise convolutions measured 25-27 % slower in bfloat16 '
                               'on CPU')
  return Precision.BFLOAT16, 'this CPU has AVX512_BF16/AMX (ResNet50 measured 17 % faster)'


def auto_jit_compile(*, strategy_name: str) -> tuple[bool, str]:
  """train.jit_compile='auto': XLA on GPU/TPU, not on CPU (measured 2-8x slower), and why.

  Multi-worker GPU training stays without XLA: XLA-compiled steps with NCCL all-reduce
  across workers are a known failure (tensorflow/tensorflow#48502).
  """
  gpus = _gpu_compute_capability() is not None
  if strategy_name == 'multi_worker' and gpus:
    return False, ('XLA with NCCL all-reduce across workers is a known failure '
                   '(tensorflow/tensorflow#48502)')
  if strategy_name == 'tpu' or gpus:
    return True, 'XLA fuses kernels on accelerators'
  return False, 'XLA measured 2-8x slower on this kind of CPU'


def setup(*, strategy: str, tpu_address: str, mixed_precision: str, jit_compile: bool | str,
          depthwise_backbone: bool) -> Runtime:
  """Creates the strategy and resolves precision and XLA for it; logs nothing (the run's
  plan records the 'auto' decisions, and the run logs them with `Runtime.describe()`).

  Args:
    strategy: config.distribute.strategy ('auto' or one of config.STRATEGIES).
    tpu_address: config.distribute.tpu_address.
    mixed_precision: config.train.mixed_precision ('auto' or one of config.PRECISIONS).
    jit_compile: config.train.jit_compile (True, False or 'auto').
    depthwise_backbone: whether the backbone is built from depthwise convolutions.

  Raises:
    errors.InvalidValueError: 'multi_worker' without TF_CONFIG.
  """
  distribution, strategy_name = create_strategy(strategy, tpu_address)
  decisions = {}
  if strategy == config_lib.AUTO:
    gpus = len(tf.config.list_logical_devices('GPU'))
    decisions['distribute.strategy'] = (strategy_name, f'{gpus} local GPUs')
  if mixed_precision == config_lib.AUTO:
    precision, why = auto_precision(strategy_name=strategy_name,
                                    depthwise_backbone=depthwise_backbone)
    decisions['train.mixed_precision'] = (precision.value, why)
  else:
    precision = Precision(mixed_precision)
  if jit_compile == config_lib.AUTO:
    jit_compile, why = auto_jit_compile(strategy_name=strategy_name)
    decisions['train.jit_compile'] = (jit_compile, why)
  is_chief, worker_index, num_workers = _worker(distribution)
  return Runtime(strategy=distribution, strategy_name=strategy_name, precision=precision,
                 jit_compile=jit_compile, is_chief=is_chief, worker_index=worker_index,
                 num_workers=num_workers, auto_decisions=decisions)
