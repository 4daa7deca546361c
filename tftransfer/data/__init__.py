"""Where examples come from and how they reach the model: sources, splits, image folders,
TFRecords, synthetic tasks, image ops, the tf.data pipeline and the head phase's features."""
