"""runtime: the 'auto' decision table for precision and XLA, with the hardware probes replaced,
and the strategy choices."""

import os

import pytest

from tftransfer import runtime

Precision = runtime.Precision


@pytest.fixture
def hardware(monkeypatch):
  """Sets what the probes report: hardware(gpu=(8, 0) | None, cpu_bf16=bool)."""
  def set_hardware(*, gpu=None, cpu_bf16=False):
    monkeypatch.setattr(runtime, '_gpu_compute_capability', lambda: gpu)
    monkeypatch.setattr(runtime, '_cpu_has_bfloat16', lambda: cpu_bf16)
  return set_hardware


@pytest.mark.parametrize('gpu,cpu_bf16,strategy,depthwise,expected', [
    (None, False, 'tpu', True, Precision.BFLOAT16),  # TPUs compute in bfloat16
    ((8, 0), False, 'one_device', True, Precision.BFLOAT16),  # Ampere and later
    ((9, 0), False, 'mirrored', False, Precision.BFLOAT16),
    ((7, 5), False, 'one_device', False, Precision.FLOAT16),  # Volta/Turing tensor cores
    ((6, 1), True, 'one_device', False, Precision.FLOAT32),  # Pascal gains nothing
    (None, False, 'one_device', False, Precision.FLOAT32),  # CPU without bfloat16
    (None, True, 'one_device', True, Precision.FLOAT32),  # depthwise: slower in bfloat16
    (None, True, 'one_device', False, Precision.BFLOAT16),  # AVX512_BF16/AMX, ResNet-like
])
def test_auto_precision_table(hardware, gpu, cpu_bf16, strategy, depthwise, expected):
  hardware(gpu=gpu, cpu_bf16=cpu_bf16)
  precision, why = runtime.auto_precision(strategy_name=strategy, depthwise_backbone=depthwise)
  assert precision is expected and why


def test_explicit_precision_and_xla_win(hardware, monkeypatch):
  monkeypatch.delenv('TF_CONFIG', raising=False)
  hardware(gpu=None, cpu_bf16=True)
  rt = runtime.setup(strategy='one_device', tpu_address='', mixed_precision='float16',
                     jit_compile=True, depthwise_backbone=False)
  assert (rt.precision, rt.jit_compile, rt.auto_decisions) == (Precision.FLOAT16, True, {})


def test_precision_keras_policies():
  assert [p.keras_policy for p in Precision] == ['float32', 'mixed_bfloat16', 'mixed_float16']


@pytest.mark.parametrize('gpu,strategy,expected', [
    (None, 'one_device', False),  # CPU: measured 2-8x slower with XLA
    (None, 'tpu', True),
    ((8, 0), 'one_device', True),
    ((8, 0), 'mirrored', True),
    ((8, 0), 'multi_worker', False),  # XLA + NCCL across workers, tensorflow#48502
    (None, 'multi_worker', False),
])
def test_auto_jit_compile_table(hardware, gpu, strategy, expected):
  hardware(gpu=gpu)
  jit_compile, why = runtime.auto_jit_compile(strategy_name=strategy)
  assert jit_compile is expected and why


def test_strategy_choices(monkeypatch):
  monkeypatch.delenv('TF_CONFIG', raising=False)
  strategy, name = runtime.create_strategy('auto')
  assert name == 'one_device' and strategy.num_replicas_in_sync == 1  # no GPUs here
  with pytest.raises(ValueError, match=r"strategy='gpu'.*one_device, mirrored"):
    runtime.create_strategy('gpu')
  with pytest.raises(ValueError, match='needs the TF_CONFIG environment variable'):
    runtime.create_strategy('multi_worker')
  assert 'TF_CONFIG' not in os.environ


def test_setup_resolves_everything_for_one_process(hardware, monkeypatch):
  hardware(gpu=None, cpu_bf16=True)
  monkeypatch.delenv('TF_CONFIG', raising=False)
  rt = runtime.setup(strategy='auto', tpu_address='', mixed_precision='auto',
                     jit_compile='auto', depthwise_backbone=False)
  assert (rt.strategy_name, rt.precision, rt.jit_compile) == ('one_device',
                                                             Precision.BFLOAT16, False)
  assert (rt.is_chief, rt.worker_index, rt.num_workers) == (True, 0, 1)
  assert rt.auto_decisions == {
      'distribute.strategy': ('one_device', '0 local GPUs'),
      'train.mixed_precision': ('bfloat16', 'this CPU has AVX512_BF16/AMX (ResNet50 measured '
                                            '17 % faster)'),
      'train.jit_compile': (False, 'XLA measured 2-8x slower on this kind of CPU')}
  assert rt.describe() == 'Strategy one_device: 1 replicas in sync, worker 0 of 1 (chief).'
