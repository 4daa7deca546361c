r"""CIFAR-10 from TFDS on ImageNet InceptionV3 at its native 299 px: the GPU recipe.

  python -m tftransfer.train --config=configs/cifar10_inception_v3.py \
      --workdir=/tmp/cifar10_inception_v3

Needs network once (TFDS download with --config.data.download=true, ImageNet weights) or
prepared data and a weights file (--config.data.data_dir, --config.model.weights=PATH).
InceptionV3 needs at least 75 px; 299 is what its ImageNet weights were trained at.
Not yet measured on a GPU here: this machine has none.
"""

from tftransfer import config as config_lib


def get_config():
  config = config_lib.default_config()
  config.data.source = 'tfds'
  config.data.name = 'cifar10'
  config.model.backbone = 'inception_v3'
  config.model.image_size = 299
  config.train.batch_size = 64
  config.train.head_epochs = 2
  config.train.finetune_epochs = 5
  config.train.head_lr = 1e-3
  config.train.finetune_lr = 1e-4
  return config.lock()
