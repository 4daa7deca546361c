"""The report in a real browser: headless Chromium opens index.html from a file:// URL,
renders every section and image, fetches nothing and logs no error. Skipped when Chromium
is absent (CI installs it: .ci/run)."""

import io
import json
import shutil

import numpy as np
import pytest

from tests import browser
from tftransfer.evaluation import report

CHROMIUM = browser.find_chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason='needs chromium on PATH '
                                '(Debian: apt-get install chromium)')
SECTIONS = ('summary', 'curves', 'per-class', 'confusion', 'mistakes', 'pairs',
            'calibration', 'data')
# Each section's height and whether its images were decoded, measured in the page.
_LAYOUT = """JSON.stringify({
  height: document.documentElement.scrollHeight,
  sections: %s.map(id => { const r = document.getElementById(id).getBoundingClientRect();
                           return {id: id, top: r.top + scrollY, height: r.height}; }),
  images: Array.from(document.images).map(i => ({ok: i.complete && i.naturalWidth > 0,
                                                 width: i.getBoundingClientRect().width}))})"""


def _render(index_html, tmp_path):
  with browser.Chromium(CHROMIUM, width=1280, height=900) as page:
    page.open(index_html.as_uri())
    layout = json.loads(page.evaluate(_LAYOUT % list(SECTIONS)))
    png = page.screenshot()
    return layout, png, page.problems(), page.requested_urls()


def test_the_report_renders_in_headless_chromium(tiny_run, tmp_path):
  from PIL import Image
  workdir = tmp_path / 'run'
  shutil.copytree(tiny_run, workdir)
  index_html = tmp_path / 'report' / 'index.html'
  report.report_workdir(str(workdir), output_dir=str(index_html.parent))
  layout, png, problems, urls = _render(index_html, tmp_path)
  (tmp_path / 'screenshot.png').write_bytes(png)  # Kept for a look: pytest's tmp_path.

  assert problems == []  # No console error, exception or failed load.
  assert all(url == index_html.as_uri() or url.startswith('data:') for url in urls), urls
  # Every section is laid out, in order, with room for its content.
  tops = [section['top'] for section in layout['sections']]
  assert tops == sorted(tops)
  assert all(section['height'] > 60 for section in layout['sections']), layout['sections']
  assert layout['sections'][-1]['top'] + layout['sections'][-1]['height'] <= layout['height']
  assert len(layout['images']) > 4 and all(image['ok'] and image['width'] > 50
                                           for image in layout['images'])
  # The screenshot is the whole page, and not blank: text, plots and images drew pixels.
  screenshot = np.asarray(Image.open(io.BytesIO(png)).convert('RGB'))
  assert screenshot.shape[0] == layout['height'] and screenshot.shape[0] > 2000
  assert screenshot.std() > 20
  assert len(np.unique(screenshot.reshape(-1, 3)[::7], axis=0)) > 500


def test_a_broken_page_is_caught(tmp_path):
  """The checks above can fail: a missing image is a console error and a failed load, and a
  script's console.error and exception are reported too."""
  page_file = tmp_path / 'broken.html'
  page_file.write_text('<!DOCTYPE html><html><body><img src="missing.png"><script>'
                       'console.error("broken on purpose"); undefined_function();</script>'
                       '</body></html>')
  with browser.Chromium(CHROMIUM) as page:
    page.open(page_file.as_uri())
    problems = page.problems()
  assert any(problem.startswith('Failed to load resource: net::ERR_FILE_NOT_FOUND')
             for problem in problems), problems
  assert 'load failed: net::ERR_FILE_NOT_FOUND' in problems, problems
  assert any('broken on purpose' in problem for problem in problems), problems
  assert any('undefined_function is not defined' in problem for problem in problems), problems
