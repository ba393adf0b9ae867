"""The Snakemake report of a tiny pitch-model run, opened in headless Chromium.

Builds ``pitch_model`` (data -> train -> evaluate -> plots) on a tiny config in a temporary copy
of the workflow, writes ``snakemake --report report.html``, loads it in headless Chromium (driven
through the DevTools protocol over ``--remote-debugging-pipe``, no extra Python package) and
checks that the page renders, that every pitch figure is embedded and displays as an image with a
real size, that every result has its caption, and that the browser console reported no error.
With ``NOTEWISE_SCREENSHOT=PATH`` it also saves a screenshot there (the committed
``docs/report_screenshot.png`` was taken the same way from the default-config run's report).

Skipped, saying so, when no Chromium binary is installed (Debian: ``apt-get install chromium``).
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from notewise.pitch.plots import PLOT_FILES

from snakekit import make_workdir, snakemake

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(n)), None)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(420),
    pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary on PATH: the report test "
                       "needs headless Chromium (Debian: apt-get install -y chromium)"),
]

TINY_PITCH_CONFIG = {
    "seed": 11,
    "audio": {"sample_rate": 44100, "window": 4096},
    "bins": {"n_bins": 2048, "f_min": 20.0, "f_max": 5000.0},
    "timbres": {"count": 8},
    "datasets": {
        "sanity": {"kind": "single_note", "samples_per_bin": 1, "shard_size": 2048},
        "train": {"kind": "random_polyphony", "num_samples": 64, "shard_size": 64,
                  "timbres": [0, 1, 2, 3]},
        "test": {"kind": "random_polyphony", "num_samples": 32, "shard_size": 32},
    },
    "pitch_model": {
        "model": {"width": 8, "dilations": [1, 2]},
        "train": {"epochs": 1, "batch_size": 16, "val_dataset": None, "warmup_steps": 0},
        "evaluate": {"max_windows": 128, "position_offsets": 8},
        "plots": {"examples": 2},
    },
}


# --------------------------------------------------------------------------- DevTools over a pipe


class DevTools:
    """Headless Chromium driven through the DevTools protocol on fds 3 (in) and 4 (out)."""

    def __init__(self, binary: str, profile: Path, timeout: float = 60.0):
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def wire_fds():  # in the child: the protocol's fixed descriptors
            keep_in, keep_out = os.dup(to_browser_r), os.dup(from_browser_w)
            os.dup2(keep_in, 3)
            os.dup2(keep_out, 4)

        self.proc = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--remote-debugging-pipe", f"--user-data-dir={profile}", "--window-size=1400,900",
             "about:blank"],
            preexec_fn=wire_fds, close_fds=False, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self.timeout, self._buffer, self._next_id = timeout, b"", 0
        self.events: list[dict] = []
        self.session: str | None = None

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise ConnectionError("chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, **params) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if self.session and not method.startswith(("Target.", "Browser.")):
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def wait_event(self, method: str) -> dict:
        deadline = time.monotonic() + self.timeout
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            event = self._read_message(deadline)
            self.events.append(event)
            if event.get("method") == method:
                return event

    def evaluate(self, expression: str):
        reply = self.send("Runtime.evaluate", expression=expression, awaitPromise=True,
                          returnByValue=True)
        if "exceptionDetails" in reply:
            raise RuntimeError(f"{expression[:80]}...: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def open_page(self, url: str) -> None:
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.send("Target.attachToTarget", targetId=target,
                                 flatten=True)["sessionId"]
        for domain in ("Runtime", "Log", "Page"):
            self.send(f"{domain}.enable")
        self.send("Page.navigate", url=url)
        self.wait_event("Page.loadEventFired")

    def console_errors(self) -> list[str]:
        """Uncaught exceptions, console.error/assert calls and error log entries so far."""
        errors = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                errors.append(json.dumps(params["exceptionDetails"])[:500])
            elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
                errors.append(json.dumps(params["args"])[:500])
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                errors.append(json.dumps(params["entry"])[:500])
        return errors

    def screenshot(self, path: Path) -> None:
        data = self.send("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (OSError, RuntimeError, TimeoutError, ConnectionError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.close(self._to_browser)
        os.close(self._from_browser)


# --------------------------------------------------------------------------- the test

RENDERED = """new Promise(done => {
  const start = Date.now();
  (function poll() {
    const ready = typeof app !== 'undefined' && document.querySelector('#app').innerText.length;
    if (ready || Date.now() - start > 20000) done(Boolean(ready)); else setTimeout(poll, 100);
  })();
})"""

SHOW_FIGURE = """(async () => {
  app.setView({navbarMode: 'subcategory', category: 'Pitch model', subcategory: 'Figures'});
  await new Promise(tick => setTimeout(tick, 200));
  app.setView({content: 'img', contentPath: results[%(path)s].data_uri, resultPath: %(path)s});
  for (const start = Date.now(); Date.now() - start < 10000;) {
    await new Promise(tick => setTimeout(tick, 100));
    const img = document.querySelector('#app img[src^="data:image/png"]');
    if (img && img.complete && img.naturalWidth > 0)
      return {width: img.naturalWidth, height: img.naturalHeight, shown: img.width};
  }
  return null;
})()"""


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    workdir = make_workdir(tmp_path_factory.mktemp("report"), TINY_PITCH_CONFIG)
    snakemake(workdir, "pitch_model")
    snakemake(workdir, "--report", "report.html", "pitch_model")
    return workdir / "report.html"


@pytest.fixture
def browser(tmp_path):
    tools = DevTools(CHROMIUM, tmp_path / "profile")
    yield tools
    tools.close()


def test_report_loads_shows_every_pitch_figure_and_logs_no_console_error(report, browser):
    browser.open_page(report.as_uri())
    assert browser.evaluate(RENDERED), "the report's React app rendered nothing"
    results = browser.evaluate(
        "Object.fromEntries(Object.entries(results).map(([k, v]) => [k, [v.mime_type, "
        "v.caption.length, v.data_uri.slice(0, 22)]]))")
    figures = {Path(path).name: path for path in results if "/plots/pitch/" in path}
    assert set(figures) == set(PLOT_FILES)
    for path, (mime, caption_chars, uri) in results.items():
        assert caption_chars > 40, f"{path} has no caption"
        assert uri.startswith("data:"), f"{path} is not embedded: {uri}"
    for name in PLOT_FILES:
        shown = browser.evaluate(SHOW_FIGURE % {"path": json.dumps(figures[name])})
        assert shown and shown["width"] > 300 and shown["shown"] > 0, f"{name}: {shown}"
    screenshot = os.environ.get("NOTEWISE_SCREENSHOT")
    if screenshot:
        browser.evaluate(SHOW_FIGURE % {"path": json.dumps(figures["f_measure_by_polyphony.png"])})
        browser.screenshot(Path(screenshot))
    assert browser.console_errors() == []
