"""A headless Chromium driven over the DevTools protocol through a pipe: no driver binary, no
websocket library, no network port.

With --remote-debugging-pipe Chromium reads protocol messages (JSON, each ended by a NUL
byte) on file descriptor 3 and writes its replies and events on descriptor 4
(https://chromedevtools.github.io/devtools-protocol/, as Puppeteer's `pipe: true` does).
Used by tests/e2e/test_report_browser.py and scripts/report_screenshots.py.
"""

import base64
import json
import os
import select
import shutil
import subprocess
import tempfile

# Flags for a quiet, offline, throwaway browser (no sandbox: tests and CI run as root).
CHROMIUM_FLAGS = ('--headless', '--no-sandbox', '--disable-gpu', '--remote-debugging-pipe',
                  '--disable-background-networking', '--disable-component-update',
                  '--no-first-run', '--disable-sync', '--disable-extensions',
                  '--hide-scrollbars', '--mute-audio')


def find_chromium() -> str | None:
  """The chromium executable on PATH (Debian's package: `apt-get install chromium`), or None."""
  for name in ('chromium', 'chromium-browser', 'google-chrome'):
    if shutil.which(name):
      return shutil.which(name)
  return None


class Chromium:
  """One headless browser with one page; a context manager that closes it."""

  def __init__(self, executable: str, *, width: int = 1280, height: int = 900,
               timeout: float = 60.0):
    self.timeout = timeout
    self.events: list[dict] = []
    self._profile = tempfile.mkdtemp(prefix='chromium-profile-')
    to_browser, self._to_browser = os.pipe()
    self._from_browser, from_browser = os.pipe()

    def use_pipe_descriptors():  # In the child, before exec: its fds 3 and 4 are the pipes.
      os.dup2(to_browser, 3)
      os.dup2(from_browser, 4)

    self.process = subprocess.Popen(
        [executable, *CHROMIUM_FLAGS, f'--user-data-dir={self._profile}', 'about:blank'],
        pass_fds=(3, 4), preexec_fn=use_pipe_descriptors, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(to_browser)
    os.close(from_browser)
    self._buffer, self._next_id = b'', 0
    target = self.call('Target.createTarget', url='about:blank')['targetId']
    self.session = self.call('Target.attachToTarget', targetId=target, flatten=True)['sessionId']
    for domain in ('Page', 'Runtime', 'Log', 'Network'):
      self.call(f'{domain}.enable', session=True)
    self.call('Emulation.setDeviceMetricsOverride', session=True, width=width, height=height,
              deviceScaleFactor=1, mobile=False)

  def _receive(self) -> dict:
    while b'\0' not in self._buffer:
      ready, _, _ = select.select([self._from_browser], [], [], self.timeout)
      if not ready:
        raise TimeoutError(f'Chromium sent nothing for {self.timeout} s.')
      chunk = os.read(self._from_browser, 1 << 20)
      if not chunk:
        raise EOFError('Chromium closed its DevTools pipe.')
      self._buffer += chunk
    message, self._buffer = self._buffer.split(b'\0', 1)
    return json.loads(message)

  def call(self, method: str, *, session: bool = False, **params) -> dict:
    """Sends one protocol command (to the page when `session`) and returns its result; events
    that arrive meanwhile are kept in self.events."""
    self._next_id += 1
    message = {'id': self._next_id, 'method': method, 'params': params}
    if session:
      message['sessionId'] = self.session
    os.write(self._to_browser, json.dumps(message).encode() + b'\0')
    while True:
      reply = self._receive()
      if reply.get('id') == self._next_id:
        if 'error' in reply:
          raise RuntimeError(f'{method}: {reply["error"]}')
        return reply['result']
      self.events.append(reply)

  def wait_for(self, event: str) -> dict:
    """Returns (and removes) the first `event` received, waiting for it if needed."""
    for index, received in enumerate(self.events):
      if received.get('method') == event:
        return self.events.pop(index)
    while True:
      received = self._receive()
      if received.get('method') == event:
        return received
      self.events.append(received)

  def open(self, url: str) -> None:
    """Navigates the page to `url` and waits for its load event (images decoded)."""
    self.call('Page.navigate', session=True, url=url)
    self.wait_for('Page.loadEventFired')

  def evaluate(self, expression: str):
    """The value of a JavaScript expression in the page (JSON-serialisable)."""
    result = self.call('Runtime.evaluate', session=True, expression=expression,
                       returnByValue=True)
    if 'exceptionDetails' in result:
      raise RuntimeError(f'{expression}: {result["exceptionDetails"]}')
    return result['result'].get('value')

  def screenshot(self, *, clip: dict | None = None) -> bytes:
    """PNG of the whole page (beyond the window), or of `clip` {x, y, width, height}."""
    params = {'format': 'png', 'captureBeyondViewport': True}
    if clip is not None:
      params['clip'] = {**clip, 'scale': 1}
    return base64.b64decode(self.call('Page.captureScreenshot', session=True, **params)['data'])

  def problems(self) -> list[str]:
    """Console errors, uncaught exceptions and failed loads reported so far."""
    self.evaluate('0')  # Collects the events the page sent before now.
    found = []
    for event in self.events:
      params = event.get('params', {})
      if event.get('method') == 'Log.entryAdded' and params['entry']['level'] == 'error':
        found.append(f'{params["entry"]["text"]} ({params["entry"].get("url", "")})')
      elif event.get('method') == 'Runtime.consoleAPICalled' and params['type'] == 'error':
        found.append(str(params['args']))
      elif event.get('method') == 'Runtime.exceptionThrown':
        found.append(str(params['exceptionDetails']))
      elif event.get('method') == 'Network.loadingFailed':
        found.append(f'load failed: {params.get("errorText")}')
    return found

  def requested_urls(self) -> list[str]:
    """Every URL the page requested (Network.requestWillBeSent)."""
    return [event['params']['request']['url'] for event in self.events
            if event.get('method') == 'Network.requestWillBeSent']

  def close(self) -> None:
    try:
      self.call('Browser.close')
    except (EOFError, OSError, TimeoutError):
      pass
    try:
      self.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
      self.process.kill()
      self.process.wait()
    os.close(self._to_browser)
    os.close(self._from_browser)
    shutil.rmtree(self._profile, ignore_errors=True)

  def __enter__(self):
    return self

  def __exit__(self, *exc_info):
    self.close()
