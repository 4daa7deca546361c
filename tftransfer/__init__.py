"""tftransfer: fine-tune pretrained Keras applications, export them for TF Serving."""

__version__ = '0.1.0'
