r"""Your own images: one sub-folder per class, EfficientNetV2-B0 from ImageNet at 224 px.

  python -m tftransfer.train --config=configs/folder.py --workdir=/tmp/my_run \
      --config.data.path=/data/my_images

Layout: /data/my_images/<class name>/**/<image>. A stratified 10 % of every class is held
out for validation. Swap the backbone with --config.model.backbone (tftransfer/model/backbones.py
lists them); for small CPU-only runs, --config.model.backbone=mobilenet
--config.model.width=0.25 --config.model.image_size=96 is fast.

Measured as written (EfficientNetV2-B0): none yet; its ImageNet weights cannot be downloaded
on this project's offline machines. With the backbone swapped for the one set of real weights
there (--config.model.backbone=mobilenet --config.model.width=0.25
--config.model.weights=FILE, so at 224 px), docs/results.md reports its run on the 50,000 CIFAR-10
JPEGs of ../shared.
"""

from tftransfer import config as config_lib


def get_config():
  config = config_lib.default_config()
  config.data.source = 'folder'
  config.data.path = ''  # Required: set with --config.data.path=DIR.
  config.model.backbone = 'efficientnetv2_b0'
  config.train.batch_size = 64
  # Resolution, epochs, mixup and class weights are left 'auto': chosen from the data (and
  # train.time_budget_minutes, if set) by the rules of tftransfer/training/rules.py.
  return config.lock()
