"""The notebook API, `import tftransfer as tft` (docs/api.md): ImageData, ImageClassifier,
load_model, predictions_frame, on top of the functions the commands call."""
