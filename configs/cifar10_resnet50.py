r"""CIFAR-10 from TFDS on ImageNet ResNet50 at its native 224 px: the GPU recipe.

  python -m tftransfer.train --config=configs/cifar10_resnet50.py --workdir=/tmp/cifar10_resnet50

Needs network once (TFDS download with --config.data.download=true, ImageNet weights) or
prepared data and a weights file (--config.data.data_dir, --config.model.weights=PATH).
Validation is a stratified 10 % of the train split; the test split stays untouched.
Not yet measured on a GPU here: this machine has none.
"""

from tftransfer import config as config_lib


def get_config():
  config = config_lib.default_config()
  config.data.source = 'tfds'
  config.data.name = 'cifar10'
  config.model.backbone = 'resnet50'
  config.model.image_size = 224
  config.train.batch_size = 128
  config.train.head_epochs = 2
  config.train.finetune_epochs = 6
  config.train.head_lr = 1e-3
  config.train.finetune_lr = 1e-4
  return config.lock()
