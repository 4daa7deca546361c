r"""CIFAR-10 JPEG folder on ImageNet MobileNet (width 0.25) at 96 px: fast transfer on a CPU.

  python -m tftransfer.train --config=configs/cifar10_mobilenet_cpu.py --workdir=/tmp/c10_cpu \
      --config.data.path=../shared/data/cifar10/train \
      --config.model.weights=../shared/weights/mobilenet_2_5_224_tf_no_top.h5

The recommended config for this backbone on a small CPU machine, and the one
scripts/benchmark_transfer.py races against the keras.io recipe (same data, weights,
resolution and batch size).

Measured by that benchmark (2-core AMD EPYC, no GPU, TF 2.21): validation accuracy 0.7836
after 206 s from the command's start; the keras.io recipe ends at 0.654 after 253 s.
"""

from tftransfer import config as config_lib


def get_config():
  config = config_lib.default_config()
  config.data.source = 'folder'
  config.data.path = ''  # Required: --config.data.path=DIR (one sub-folder per class).
  config.model.backbone = 'mobilenet'
  config.model.width = 0.25
  config.model.weights = ''  # Required: a weights file, or 'imagenet' with network.
  config.model.image_size = 96
  config.train.batch_size = 64
  # Head epochs on features computed once cost well under a second each.
  config.train.head_epochs = 10
  config.train.head_lr = 1e-3
  config.train.finetune_epochs = 4
  config.train.finetune_lr = 3e-4
  return config.lock()
