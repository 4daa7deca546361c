"""The classifier: the keras.applications backbone registry (and keras-hub presets, hub.py)
and the transfer model built on one (backbone preprocessing, backbone, pooling, new dense
head)."""
