"""The click demo notebook in a real browser: run it in JupyterLab, click on the image, see the mask change."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = "04_click_demo.ipynb"
KERNEL_SECONDS = 120
RUN_SECONDS = 180
CLICK_SECONDS = 120

KERNEL_READY = """() => {
  const widget = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const context = widget && widget.sessionContext;
  const kernel = context && context.isReady && context.session && context.session.kernel;
  return !!kernel && kernel.connectionStatus === 'connected' && kernel.status === 'idle';
}"""

# Resolves to the status text once it matches `pattern`, or to "ERROR: ..." when a cell printed a traceback.
STATUS_OR_ERROR = """(pattern) => {
  const errors = [...document.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
    .map((e) => e.textContent).filter((t) => /Error|Traceback/.test(t));
  if (errors.length) return 'ERROR: ' + errors.join('\\n');
  const status = document.querySelector('.iseg-status');
  return status && new RegExp(pattern).test(status.textContent) ? status.textContent : false;
}"""


def wait_status(page, pattern: str, timeout_s: float) -> str:
    """Wait until the demo's status label matches the regex `pattern`; fail on a notebook error."""
    text = page.wait_for_function(STATUS_OR_ERROR, arg=pattern, timeout=timeout_s * 1000).json_value()
    if text.startswith("ERROR: "):
        pytest.fail(f"the notebook failed:\n{text[7:]}")
    return text


def png_pixels(data: bytes) -> np.ndarray:
    """Decode a PNG screenshot into (H, W, 3) uint8."""
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


@pytest.mark.browser
@pytest.mark.timeout(300)
def test_click_demo_in_jupyterlab(page, lab, tmp_path):
    page.goto(f"{lab}/lab/tree/{NOTEBOOK}")
    page.wait_for_function(KERNEL_READY, timeout=KERNEL_SECONDS * 1000)
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    assert re.search(r"\b0 clicks\b", wait_status(page, r"\b0 clicks\b", RUN_SECONDS))

    image = page.locator("img.iseg-image")
    image.scroll_into_view_if_needed()
    box = image.bounding_box()
    assert box and box["width"] > 50 and box["height"] > 50
    before_src, before = image.get_attribute("src"), png_pixels(image.screenshot())

    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    wait_status(page, r"\b1 click\b", CLICK_SECONDS)
    page.wait_for_function("(src) => document.querySelector('img.iseg-image').src !== src", arg=before_src,
                           timeout=CLICK_SECONDS * 1000)
    after = png_pixels(image.screenshot())
    assert after.shape == before.shape
    changed = (np.abs(after.astype(np.int16) - before).max(axis=2) > 20).mean()
    # the click marker alone covers < 0.1 % of the frame; the mask overlay tints a whole region
    assert changed > 0.005, f"the mask overlay did not change the frame ({changed:.2%} of pixels changed)"

    page.mouse.click(box["x"] + 0.06 * box["width"], box["y"] + 0.06 * box["height"], button="right")
    status = wait_status(page, r"\b2 clicks\b", CLICK_SECONDS)
    assert "2 clicks" in status and "s/click" in status

    shot = tmp_path / "demo.png"
    page.locator(".jp-OutputArea-output:has(.iseg-status)").screenshot(path=str(shot))
    published = REPO / "runs" / "browser" / "demo.png"
    published.parent.mkdir(parents=True, exist_ok=True)
    tmp = published.with_name(".demo.png.tmp")
    shutil.copyfile(shot, tmp)
    tmp.replace(published)
