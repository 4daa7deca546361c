r"""Offline quickstart: pretrain on one synthetic task, transfer to another with few labels.

No network needed. `scripts/quickstart.sh WORKDIR` runs the three steps and compares them:

  python -m tftransfer.train --config=configs/quickstart.py:source --workdir=W/source
  python -m tftransfer.train --config=configs/quickstart.py:transfer --workdir=W/transfer \
      --config.model.weights=W/source/backbone.weights.h5
  python -m tftransfer.train --config=configs/quickstart.py:scratch --workdir=W/scratch

'source' trains a MobileNet (width 0.25, 32 px) from scratch on 10 procedurally drawn texture
families with 600 labels each; 'transfer' fine-tunes that backbone on 5 *other* families with
only 10 labels each; 'scratch' trains the same network on the same 50 labels from random
weights. Both target runs are judged on the same 500 validation images.

Measured (scripts/quickstart.sh at commit 5e000be, 4 min 26 s in all on a 2-core CPU, no
GPU, TF 2.21): source 0.920 validation accuracy, transfer 0.536, scratch 0.272 (0.200 is
chance for 5 classes).
"""

from tftransfer import config as config_lib


def get_config(arg: str = 'transfer'):
  """arg: 'source' | 'transfer' | 'scratch'."""
  if arg not in ('source', 'transfer', 'scratch'):
    raise ValueError(f"configs/quickstart.py:{arg} is unknown; use :source, :transfer or "
                     ':scratch.')
  config = config_lib.default_config()
  config.data.source = 'synthetic'
  config.data.name = 'textures_source' if arg == 'source' else 'textures_target'
  config.data.crop_min_area = 1.0  # Crops would rescale the patterns' periods.
  config.data.flip = False  # Stripes at 45 and 135 degrees are different classes.
  config.model.backbone = 'mobilenet'
  config.model.width = 0.25
  config.model.image_size = 32
  config.model.dropout = 0.1
  config.train.mixed_precision = 'float32'  # The same numbers on every machine.
  config.train.log_every_steps = 50
  if arg == 'source':
    # Train the whole network from random weights: no head phase, BatchNorm learns.
    config.model.weights = 'none'
    config.train.head_epochs = 0
    config.train.finetune_epochs = 25
    config.train.finetune_lr = 1e-2
    config.train.label_smoothing = 0.0
    config.train.batch_size = 128
  else:
    config.data.max_examples_per_class = 10
    config.train.batch_size = 10
    if arg == 'transfer':
      # Must be overridden with the source run's weights (the quickstart script does).
      config.model.weights = 'SOURCE_WORKDIR/backbone.weights.h5'
      config.train.head_epochs = 30
      config.train.head_lr = 1e-2
      config.train.finetune_epochs = 15
      config.train.finetune_lr = 1e-4
    else:  # As many steps as 'transfer' takes, all of them training the whole network.
      config.model.weights = 'none'
      config.train.head_epochs = 0
      config.train.finetune_epochs = 45
      config.train.finetune_lr = 3e-3
  return config.lock()
