r"""CIFAR-10 from TFDS on ImageNet VGG16 at its native 224 px: the GPU recipe.

  python -m tftransfer.train --config=configs/cifar10_vgg16.py --workdir=/tmp/cifar10_vgg16

Needs network once (TFDS download with --config.data.download=true, ImageNet weights) or
prepared data and a weights file (--config.data.data_dir, --config.model.weights=PATH).
VGG has no BatchNormalization, so fine-tuning uses a lower rate than ResNet's.
Not yet measured on a GPU here: this machine has none.
"""

from tftransfer import config as config_lib


def get_config():
  config = config_lib.default_config()
  config.data.source = 'tfds'
  config.data.name = 'cifar10'
  config.model.backbone = 'vgg16'
  config.model.image_size = 224
  config.model.dropout = 0.5
  config.train.batch_size = 64
  config.train.head_epochs = 2
  config.train.finetune_epochs = 5
  config.train.head_lr = 1e-3
  config.train.finetune_lr = 3e-5
  return config.lock()
