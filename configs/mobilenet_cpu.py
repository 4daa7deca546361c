r"""An image folder on ImageNet MobileNet (width 0.25): the recommended config for a CPU.

  python -m tftransfer.train --config=configs/mobilenet_cpu.py --workdir=/tmp/mine \
      --config.data.path=/data/my_images \
      --config.model.weights=/path/to/mobilenet_2_5_224_tf_no_top.h5 \
      [--config.train.time_budget_minutes=30]

Resolution, epochs, mixup and class weights are 'auto' (tftransfer/training/rules.py and,
with a time budget, budget.py): nothing here is tuned to one data set. It is the tftransfer
system of scripts/benchmark_transfer.py and of scripts/benchmark_frontier.py, whose results
(on CIFAR-10, judged on held-out images) docs/results.md reports with their commands.
"""

from tftransfer import config as config_lib


def get_config():
  config = config_lib.default_config()
  config.data.source = 'folder'
  config.data.path = ''  # Required: --config.data.path=DIR (one sub-folder per class).
  config.model.backbone = 'mobilenet'
  config.model.width = 0.25
  config.model.weights = ''  # Required: a weights file, or 'imagenet' with network.
  config.train.batch_size = 64
  # The rate of this project's earlier measured CPU recipe (the default is 1e-4).
  config.train.finetune_lr = 3e-4
  return config.lock()
