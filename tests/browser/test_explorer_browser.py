"""The explorer notebook in a real browser (JupyterLab in Chromium): it finds the runs under runs/, two runs are
picked, then a sample, the click slider is dragged, and both runs' replays show that click with the recorded IoU;
then three runs share one row and a reference run is chosen. The screenshot for the README goes to
runs/browser/explorer.png."""

from __future__ import annotations

import pytest

from iseg.evaluate import main
from iseg.weights import WEIGHTS_DIR
from test_demo_browser import KERNEL_READY, publish

NOTEBOOK = "05_explore.ipynb"
WINDOW = {"width": 1400, "height": 1000}  # the replay section fits in it
RUNS = {"GrabCut_OpenCV": ["--predictor", "grabcut"], "IFPN_default_shipped": ["--predictor", "default", "--no-flip"]}
THIRD = {"IFPN_coarse_alone": ["--predictor", str(WEIGHTS_DIR / "default_coarse.pt"), "--no-flip"]}
CLICKS = 5
SECONDS = 240

# Resolves to the status text once it matches `pattern` and `panels` replay panels show captions, or to
# "ERROR: ..." when a cell printed a traceback.
STATUS_OR_ERROR = """([pattern, panels]) => {
  const errors = [...document.querySelectorAll(
    '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
    .map((e) => e.textContent).filter((t) => /Error|Traceback/.test(t));
  if (errors.length) return 'ERROR: ' + errors.join('\\n');
  const status = document.querySelector('.iseg-explorer .iseg-status');
  const captions = document.querySelectorAll('.iseg-explorer .iseg-caption');
  return status && captions.length === panels && new RegExp(pattern).test(status.textContent)
    ? status.textContent : false;
}"""


def wait_status(page, pattern: str, panels: int) -> str:
    """Wait until the explorer's status matches `pattern` with `panels` replay panels; fail on a notebook error."""
    text = page.wait_for_function(STATUS_OR_ERROR, arg=[pattern, panels], timeout=SECONDS * 1000).json_value()
    if text.startswith("ERROR: "):
        pytest.fail(f"the notebook failed:\n{text[7:]}")
    return text


def captions(page) -> list[str]:
    return page.locator(".iseg-explorer .iseg-caption").all_text_contents()


@pytest.mark.browser
@pytest.mark.timeout(900)
def test_explorer_in_jupyterlab(page, lab, tmp_path, shared_datasets):
    for name, predictor in {**RUNS, **THIRD}.items():  # the notebook looks in ../runs: beside notebooks/
        main([*predictor, "--datasets", f"GrabCut={shared_datasets / 'GrabCut'}", "--limit", "3", "--max-clicks",
              str(CLICKS), "--full-curve", "--no-progress", "--out", str(tmp_path / "runs" / name)])
    page.set_viewport_size(WINDOW)
    page.goto(f"{lab}/lab/tree/{NOTEBOOK}")
    page.wait_for_function(KERNEL_READY, timeout=120_000)
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    wait_status(page, r": click 1 of 5$", 2)

    # Two runs picked: one alone first, then both.
    runs = page.locator(".iseg-run-picker select")
    runs.select_option(label=["IFPN_default_shipped"])
    wait_status(page, r": click 1 of 5$", 1)
    runs.select_option(label=list(RUNS))
    wait_status(page, r": click 1 of 5$", 2)
    assert "Δ@90 B" in page.locator(".iseg-explorer .iseg-samples").text_content()

    # A sample: the second of the sorted per-sample table.
    picker = page.locator(".iseg-sample-picker select")
    picker.select_option(index=1)
    sample = picker.evaluate("(s) => s.options[s.selectedIndex].text").split()[0]
    wait_status(page, rf"^{sample}: click 1 of 5$", 2)

    # The click slider dragged to click 4 of 1..5 (three quarters of its track).
    page.locator(".iseg-click-slider").scroll_into_view_if_needed()
    page.wait_for_timeout(500)  # let the scroll settle before measuring
    track = page.locator(".iseg-click-slider .noUi-target").bounding_box()
    handle = page.locator(".iseg-click-slider .noUi-handle").bounding_box()
    assert track["width"] >= 300, track  # the slider spans the controls: about 20 px per click at 20 clicks
    page.mouse.move(handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2)
    page.mouse.down()
    page.mouse.move(track["x"] + 0.75 * track["width"], track["y"] + track["height"] / 2, steps=8)
    page.mouse.up()
    wait_status(page, rf"^{sample}: click 4 of 5$", 2)
    grabcut, ifpn = captions(page)
    assert all("click 4/5" in c and "= recorded" in c and "differs" not in c for c in (grabcut, ifpn)), (grabcut,
                                                                                                        ifpn)
    assert "zoom-in box" in ifpn and "not an IFPN cascade" in grabcut
    images = page.locator(".iseg-explorer img.iseg-replay-image")
    assert images.count() == 2 and all(images.nth(i).evaluate("(img) => img.naturalWidth > 0") for i in range(2))

    panels = [page.locator(".iseg-explorer .iseg-panel").nth(i).bounding_box() for i in range(2)]
    assert abs(panels[0]["y"] - panels[1]["y"]) < 1 and panels[1]["x"] > panels[0]["x"], panels  # side by side
    # The layers: the mask switched off changes both frames; on again for the screenshot.
    shown = images.nth(0).get_attribute("src")
    page.locator(".iseg-layers label", has_text="mask").click()
    page.wait_for_function("(s) => document.querySelector('.iseg-explorer img.iseg-replay-image').src !== s",
                           arg=shown, timeout=SECONDS * 1000)
    page.locator(".iseg-layers label", has_text="mask").click()
    wait_status(page, rf"^{sample}: click 4 of 5$", 2)

    replay = page.locator(".iseg-explorer .iseg-replay")
    replay.scroll_into_view_if_needed()
    replay.screenshot(path=str(tmp_path / "explorer.png"))
    publish(tmp_path / "explorer.png", "explorer.png")

    # Three runs: their panels share one row inside the notebook area; the reference run sets the Δ columns.
    runs.select_option(label=[*RUNS, *THIRD])
    wait_status(page, r": click 1 of 5$", 3)
    area = page.locator(".jp-NotebookPanel").bounding_box()
    boxes = [page.locator(".iseg-explorer .iseg-panel").nth(i).bounding_box() for i in range(3)]
    assert len({round(b["y"]) for b in boxes}) == 1, boxes
    assert boxes[2]["x"] + boxes[2]["width"] <= area["x"] + area["width"], (boxes, area)
    page.locator(".iseg-reference select").select_option(label="B")
    page.wait_for_function("() => document.querySelector('.iseg-samples').textContent.includes('Δ@90 A')",
                           timeout=SECONDS * 1000)
    assert "Δ@90 C" in page.locator(".iseg-explorer .iseg-samples").text_content()
