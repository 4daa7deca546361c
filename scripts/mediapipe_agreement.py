r"""How often MediaPipe Tasks' ImageClassifier and `tftransfer predict` give the same top-1
class for the same image files, for each .tflite of an export version.

  python scripts/mediapipe_agreement.py --model=/models/mine/1 --images=/data/test --num=500

MediaPipe reads the class names from each model's embedded metadata (a None name counts as a
disagreement) and resizes a file to the model input itself; tftransfer predict resizes with
its evaluation view. Prints one JSON line per .tflite: the images, the agreement, and the
share MediaPipe named.
"""

import argparse
import json
import os
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from tftransfer.serving import prediction  # pylint: disable=g-import-not-at-top,wrong-import-position


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--model', required=True, help='an export version directory')
  parser.add_argument('--images', required=True, help='a folder (its files, recursively)')
  parser.add_argument('--num', type=int, default=500)
  parser.add_argument('--seed', type=int, default=0)
  args = parser.parse_args()
  import mediapipe as mp  # pylint: disable=g-import-not-at-top
  from mediapipe.tasks import python as mp_tasks  # pylint: disable=g-import-not-at-top
  from mediapipe.tasks.python import vision  # pylint: disable=g-import-not-at-top
  files = sorted(prediction.image_files([args.images]))
  chosen = np.random.default_rng(args.seed).permutation(len(files))[:args.num]
  files = [files[i] for i in sorted(chosen)]
  for name in sorted(os.listdir(args.model)):
    if not name.endswith('.tflite'):
      continue
    path = os.path.join(args.model, name)
    ours = [r.get('class') for r in prediction.predict_files(prediction.load_model(path), files)]
    options = vision.ImageClassifierOptions(
        base_options=mp_tasks.BaseOptions(model_asset_path=path), max_results=1)
    with vision.ImageClassifier.create_from_options(options) as classifier:
      theirs = [classifier.classify(mp.Image.create_from_file(f)).classifications[0]
                .categories[0].category_name for f in files]
    print(json.dumps({'model': name, 'images': len(files),
                      'top1_agreement': round(float(np.mean(
                          [a == b for a, b in zip(ours, theirs)])), 4),
                      'named_by_mediapipe': round(float(np.mean(
                          [t is not None for t in theirs])), 4)}), flush=True)


if __name__ == '__main__':
  main()
