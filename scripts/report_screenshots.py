r"""Screenshots of a report (tftransfer-report) in headless Chromium, for the README.

Usage:
  python scripts/report_screenshots.py --report=/tmp/c10/report/index.html \
      --output_dir=docs/images

Writes report_top.png (the page's top: header, training curves) and report_mistakes.png (the
start of the worst-mistakes section), each a 256-colour PNG under 300 KB. Needs `chromium`
on PATH (Debian: apt-get install chromium) and Pillow (matplotlib installs it).
"""

import io
import os
import pathlib
import sys

from absl import app, flags
from PIL import Image

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / 'tests'))
import browser  # noqa: E402  (tests/browser.py: Chromium over the DevTools pipe)

_REPORT = flags.DEFINE_string('report', None, 'The report\'s index.html.')
_OUTPUT_DIR = flags.DEFINE_string('output_dir', 'docs/images', 'Where the PNGs go.')
_WIDTH = flags.DEFINE_integer('width', 1280, 'Browser window width in CSS pixels.')
_HEIGHT = flags.DEFINE_integer('height', 1000, 'Height of each screenshot in CSS pixels.')
flags.mark_flags_as_required(['report'])


def _save(png: bytes, path: str) -> None:
  """Stores `png` reduced to 256 colours, which keeps text sharp at a fraction of the size."""
  image = Image.open(io.BytesIO(png)).convert('RGB')
  image.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
  print(f'{path}: {image.width}x{image.height}, {os.path.getsize(path) // 1024} KB')


def main(argv):
  del argv
  executable = browser.find_chromium()
  if executable is None:
    sys.exit('No chromium on PATH; install it (Debian: apt-get install chromium).')
  os.makedirs(_OUTPUT_DIR.value, exist_ok=True)
  with browser.Chromium(executable, width=_WIDTH.value, height=_HEIGHT.value) as page:
    page.open(pathlib.Path(_REPORT.value).resolve().as_uri())
    top = page.evaluate("document.getElementById('mistakes').getBoundingClientRect().top")
    for name, y in (('report_top.png', 0), ('report_mistakes.png', top)):
      _save(page.screenshot(clip={'x': 0, 'y': y, 'width': _WIDTH.value,
                                  'height': _HEIGHT.value}),
            os.path.join(_OUTPUT_DIR.value, name))
    problems = page.problems()
  if problems:
    sys.exit(f'The page reported problems: {problems}')


if __name__ == '__main__':
  app.run(main)
