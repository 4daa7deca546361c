r"""The classic transfer recipe of tutorials and textbooks: fine-tune everything with SGD.

  python -m tftransfer.train --config=configs/classic.py --workdir=/tmp/cifar10_classic

Load a pretrained ResNet50, replace its top with a new fully connected layer for the task's
classes initialised from N(0, 0.02) with zero bias, and train the whole network with
minibatch SGD (momentum 0.9, plain, not Nesterov) at a constant learning rate of 0.001, batch
100, for 10 epochs, BatchNorm training as the recipe leaves it; CIFAR-10 from TFDS. None of
tftransfer's own defaults: no head phase, no warm-up, no learning-rate decay, no label
smoothing, no weight decay, no mixup, no class weights. (tftransfer still re-estimates the
statistics of BatchNorm layers that train before each evaluation, and keeps the best epoch
as the run's result.) Needs network once (TFDS and ImageNet weights) or prepared data and a
weights file, like configs/cifar10.py.

Measured as written: none yet (no GPU, no ResNet50 weights offline). With the shared
MobileNet-0.25 weights on the CIFAR-10 folder at 96 px it is a system of
scripts/benchmark_transfer.py, whose table docs/results.md reports.
"""

from tftransfer import config as config_lib


def get_config():
  config = config_lib.default_config()
  config.data.source = 'tfds'
  config.data.name = 'cifar10'
  config.data.mixup_alpha = 0.0
  config.model.backbone = 'resnet50'
  config.model.image_size = 224
  config.model.dropout = 0.0  # The recipe's new layer is a plain fully connected one.
  config.model.head_init = 'normal'
  config.model.head_init_stddev = 0.02
  config.train.batch_size = 100
  config.train.head_epochs = 0  # One phase: everything trains from step 0.
  config.train.finetune_epochs = 10
  config.train.unfreeze = 'all'
  config.train.freeze_batchnorm = False
  config.train.optimizer = 'sgd'
  config.train.momentum = 0.9
  config.train.nesterov = False
  config.train.finetune_lr = 0.001
  config.train.lr_schedule = 'constant'
  config.train.warmup_fraction = 0.0
  config.train.label_smoothing = 0.0
  config.train.weight_decay = 0.0
  config.train.class_weighting = 'none'
  return config.lock()
