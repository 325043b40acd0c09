"""The run explorer for JupyterLab (notebook 05): evaluation runs side by side, the samples where they disagree,
and any sample replayed click by click exactly as it was evaluated.

Runs come from `iseg.runs.load_runs`, replays from `iseg.replay`. The chosen runs are labelled A, B, ... in the
order of the run list; the per-sample table's `Δ@t` is B's NoC minus A's (positive: A needed fewer clicks).
The drawing functions are plain (arrays and bytes in, no widgets) and the widget only wires them.
"""

from __future__ import annotations

import html
import io
import string
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import cv2
import ipywidgets as widgets
import numpy as np
import pandas as pd

from iseg.demo.controller import Intention, Snapshot
from iseg.demo.frame import FrameRenderer, FrameStyle, display_scale, encode_jpeg, outline
from iseg.replay import Replay, ReplayStep, ReplayUnavailable, load_run_predictor, replay_sample
from iseg.runs import Runs, load_runs, sample_table

OVERVIEW_COLUMNS = ["run", "dataset", "samples", "NoC@85", "NoC@90", "NoF@90", "mIoU@1", "mIoU@5", "SPC"]
PANEL_WIDTH = 420  # two panels side by side in JupyterLab's notebook area of a 1400 px wide window
PANEL_HEIGHT = 320
IOU_TOLERANCE = 1e-6
GT_COLOR = (255, 255, 255)
CSS = """<style>
.iseg-explorer .iseg-samples { max-height: 260px; overflow: auto; border: 1px solid var(--jp-border-color2, #ddd); }
.iseg-explorer .iseg-samples table, .iseg-explorer .iseg-overview table { border-collapse: collapse;
  font-size: 12px; }
.iseg-explorer td, .iseg-explorer th { padding: 2px 8px; text-align: right; }
.iseg-explorer .iseg-caption, .iseg-explorer .iseg-caption * { white-space: normal; line-height: 1.4;
  font-size: 12px; }
.iseg-explorer .iseg-panel { width: 430px; margin-right: 8px; }
.iseg-explorer .iseg-note { color: #b35900; }
</style>"""


def run_labels(chosen: Sequence[str]) -> list[str]:
    """A, B, C, ... for the chosen runs, in order."""
    letters = string.ascii_uppercase
    return [letters[i] if i < len(letters) else f"R{i + 1}" for i in range(len(chosen))]


def overview_table(runs: Runs, chosen: Sequence[str], datasets: Sequence[str]) -> pd.DataFrame:
    """The NoC table of the chosen runs on the chosen datasets (notebook 03's columns, `run` for `method`)."""
    rows = runs.results[runs.results.run.isin(chosen) & runs.results.dataset.isin(datasets)]
    order = {run: i for i, run in enumerate(chosen)}
    rows = rows.sort_values(["dataset", "run"], key=lambda c: c.map(order) if c.name == "run" else c)
    return rows[[c for c in OVERVIEW_COLUMNS if c in rows]].reset_index(drop=True)


def figure_png(fig) -> bytes:
    """A matplotlib figure as PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=96, bbox_inches="tight")
    return buffer.getvalue()


def curves_png(runs: Runs, chosen: Sequence[str], datasets: Sequence[str]) -> bytes:
    """mIoU against the number of clicks of the chosen runs, one plot per dataset (notebook 03's figure)."""
    from matplotlib.figure import Figure

    from iseg.visualize import plot_miou_curves

    rows = runs.clicks[runs.clicks.run.isin(chosen) & runs.clicks.dataset.isin(datasets)]
    names = [d for d in datasets if d in set(rows.dataset)]
    max_clicks = int(runs.runs[runs.runs.run.isin(chosen)]["max_clicks"].max())
    order = {run: j for j, run in enumerate(chosen)}
    labels = dict(zip(chosen, run_labels(chosen)))
    fig = Figure(figsize=(5 * max(1, len(names)), 3.6))
    for i, name in enumerate(names):
        ax = fig.add_subplot(1, len(names), i + 1)
        shown = rows[rows.dataset == name]
        shown = shown.sort_values("run", key=lambda c: c.map(order), kind="stable")
        shown = shown.assign(method=shown.run.map(lambda r: f"{labels[r]}: {r}"))
        plot_miou_curves(shown, ax=ax, max_clicks=max_clicks, title=name)
    return figure_png(fig)


def iou_curve_png(curves: dict[str, tuple[Sequence[float], Sequence[float]]], k: int, max_clicks: int) -> bytes:
    """IoU against the click of one sample: per label its recorded IoUs (line) and those replayed so far (dots),
    the current click `k` marked."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.4, 2.2))
    ax = fig.add_subplot()
    for label, (recorded, replayed) in curves.items():
        line, = ax.plot(range(1, len(recorded) + 1), recorded, marker="o", markersize=3, label=label)
        ax.plot(range(1, len(replayed) + 1), replayed, "x", color=line.get_color(), markersize=7)
    ax.axvline(k, color="0.3", linestyle="--", linewidth=1)
    ax.set(xlabel="click (line: recorded, x: replayed)", ylabel="IoU", ylim=(0, 1.02), xlim=(0.5, max_clicks + 0.5))
    ax.grid(alpha=0.3)
    if curves:
        ax.legend(loc="lower right", fontsize=8)
    return figure_png(fig)


def replay_frame(step: ReplayStep, renderer: FrameRenderer, gt_mask: np.ndarray, intention: bool) -> np.ndarray:
    """The image at display size with the ground truth's outline (white), the mask and clicks after `step`, and
    IFPN's intention if asked for."""
    shown = Intention(step.coarse, step.roi) if intention and step.coarse is not None else None
    frame = renderer.render(Snapshot(step.clicks, [], step.prob, shown, None), FrameStyle(intention=shown is not None))
    gt = cv2.resize((gt_mask == 1).astype(np.float32), renderer.size[::-1], interpolation=cv2.INTER_AREA) > 0.5
    cv2.drawContours(frame, outline(gt), -1, GT_COLOR, 1, cv2.LINE_AA)
    return frame


def step_caption(label: str, run: str, step: ReplayStep, n: int, intention: bool) -> str:
    """HTML caption of a replayed click: run, click, IoU replayed against recorded, the intention's legend."""
    click = step.clicks[-1]
    sign = "positive" if click.is_positive else "negative"
    same = abs(step.iou - step.recorded_iou) <= IOU_TOLERANCE
    check = "= recorded" if same else f"<span class='iseg-note'>recorded {step.recorded_iou:.4f}: differs</span>"
    parts = [f"<b>{label}</b> {html.escape(run)}",
             f"click {step.k}/{n}: {sign} at (row {click.row}, col {click.col})",
             f"IoU <b>{step.iou:.4f}</b> {check} (white: ground truth)"]
    if intention:
        if step.coarse is None:
            parts.append("no intention view: not an IFPN cascade")
        else:
            box = "" if step.roi is None else f", yellow: zoom-in box {step.roi.width}x{step.roi.height}"
            parts.append(f"orange: coarse (intention) mask{box}")
    return "<br>".join(parts)


class Explorer(widgets.VBox):
    """Choose runs and datasets, compare them (NoC table, mIoU curves, per-sample NoC), replay a sample.

    `runs` from `iseg.runs.load_runs`; `chosen` preselects runs (default: the first two); replays run the
    rebuilt predictors on `device`.
    """

    def __init__(self, runs: Runs, chosen: Sequence[str] | None = None, datasets: Sequence[str] | None = None,
                 device: str | None = None):
        self.runs, self.device = runs, device
        self.predictors: dict[str, tuple[object, list[str]]] = {}
        self.replays: dict[str, Replay | str] = {}
        self.renderers: dict[str, FrameRenderer] = {}
        self._quiet = False
        names = runs.runs["run"].tolist()
        all_datasets = sorted(runs.clicks["dataset"].dropna().unique())
        self.run_picker = widgets.SelectMultiple(options=names, value=tuple(chosen or names[:2]),
                                                 rows=min(8, max(2, len(names))), description="Runs",
                                                 layout=widgets.Layout(width="620px"))
        self.run_picker.add_class("iseg-run-picker")
        self.dataset_picker = widgets.SelectMultiple(options=all_datasets,
                                                     value=tuple(datasets or all_datasets),
                                                     rows=min(4, max(2, len(all_datasets))), description="Datasets")
        self.legend = widgets.HTML()
        self.overview = widgets.HTML()
        self.overview.add_class("iseg-overview")
        self.curves = widgets.Image(format="png", layout=widgets.Layout(align_self="flex-start"))
        self.sort_by = widgets.Dropdown(description="Sort by", layout=widgets.Layout(width="260px"))
        self.sort_by.add_class("iseg-sort")
        self.descending = widgets.Checkbox(value=True, description="descending", indent=False)
        self.table = widgets.HTML()
        self.table.add_class("iseg-samples")
        self.sample_picker = widgets.Dropdown(description="Sample", layout=widgets.Layout(width="480px"))
        self.sample_picker.add_class("iseg-sample-picker")
        self.slider = widgets.IntSlider(value=1, min=1, max=1, description="Click", continuous_update=False,
                                        layout=widgets.Layout(width="480px"))  # a step per click wide enough to hit
        self.slider.add_class("iseg-click-slider")
        self.intention = widgets.Checkbox(value=True, description="IFPN intention", indent=False)
        self.panels = widgets.HBox(layout=widgets.Layout(flex_flow="row wrap"))
        self.iou_curve = widgets.Image(format="png", layout=widgets.Layout(align_self="flex-start"))
        self.status = widgets.HTML()
        self.status.add_class("iseg-status")

        self.run_picker.observe(lambda _: self.refresh(), names="value")
        self.dataset_picker.observe(lambda _: self.refresh(), names="value")
        self.sort_by.observe(lambda _: self._quiet or self.show_table(), names="value")
        self.descending.observe(lambda _: self.show_table(), names="value")
        self.sample_picker.observe(lambda _: self._quiet or self.show_sample(), names="value")
        self.slider.observe(lambda _: self._quiet or self.show_click(), names="value")
        self.intention.observe(lambda _: self.show_click(), names="value")

        heading = lambda text: widgets.HTML(f"<h3>{text}</h3>")
        controls = widgets.VBox([self.sample_picker, self.slider, self.intention, self.status],
                                layout=widgets.Layout(width="500px"))
        self.replay_section = widgets.VBox([heading("Replay a sample click by click"),
                                            widgets.HBox([controls, self.iou_curve],
                                                         layout=widgets.Layout(flex_flow="row wrap")),
                                            self.panels])
        self.replay_section.add_class("iseg-replay")
        super().__init__([
            widgets.HTML(CSS), widgets.HBox([self.run_picker, self.dataset_picker]), self.legend,
            heading("NoC table (lower is better) and mIoU against clicks"), self.overview, self.curves,
            heading("Per sample: clicks to reach 85% / 90% IoU"), widgets.HBox([self.sort_by, self.descending]),
            self.table,
            self.replay_section,
        ])
        self.add_class("iseg-explorer")
        if not names:
            self.status.value = ("No evaluation runs found (folders with config.json, results.csv and ious.csv). "
                                 "Run <code>make smoke</code> or <code>python -m iseg.evaluate ... --out "
                                 "runs/&lt;name&gt;</code>.")
            return
        self.refresh()

    @property
    def chosen(self) -> list[str]:
        """The chosen runs, in the order of the run list."""
        return list(self.run_picker.value)

    @property
    def labels(self) -> dict[str, str]:
        """Run -> its letter."""
        return dict(zip(self.chosen, run_labels(self.chosen)))

    # ---- comparison ---------------------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Redraw everything for the chosen runs and datasets."""
        notes = self.runs.runs.set_index("run")["note"]
        self.legend.value = "<br>".join(
            f"<b>{label}</b>: {html.escape(run)}"
            + (f" <span class='iseg-note'>({html.escape(notes[run])})</span>" if notes[run] else "")
            for run, label in self.labels.items())
        datasets = list(self.dataset_picker.value)
        if not self.chosen or not datasets:
            self.overview.value, self.curves.value, self.table.value = "Choose runs and datasets.", b"", ""
            self._set_samples([], reload=True)
            return
        table = overview_table(self.runs, self.chosen, datasets)
        table["run"] = table["run"].map(lambda r: f"{self.labels[r]}: {r}")
        self.overview.value = table.style.format(precision=3).hide(axis="index").to_html()
        self.curves.value = curves_png(self.runs, self.chosen, datasets)
        self.samples = sample_table(self.runs, self.chosen, datasets, labels=run_labels(self.chosen))
        sortable = [c for c in self.samples.columns if c != "dataset"]
        default = "Δ@90" if "Δ@90" in sortable else sortable[-1]
        with self._hold():
            self.sort_by.options = sortable
            self.sort_by.value = default
        self.show_table(reload=True)

    @contextmanager
    def _hold(self) -> Iterator[None]:
        """A block in which the explorer's own changes to its widgets trigger no handler."""
        before, self._quiet = self._quiet, True
        try:
            yield
        finally:
            self._quiet = before

    def sorted_samples(self) -> pd.DataFrame:
        """The per-sample table sorted as the controls say (ties by dataset and sample)."""
        column = self.sort_by.value
        if column is None or self.samples.empty:
            return self.samples
        return self.samples.sort_values(column, ascending=not self.descending.value, kind="stable",
                                        na_position="last")

    def show_table(self, reload: bool = False) -> None:
        """The per-sample table and the sample picker in the same order; the replay again if the sample changed
        or `reload`."""
        rows = self.sorted_samples()
        self.table.value = rows.to_html(index=False, na_rep="-", float_format=lambda v: f"{v:g}")
        self._set_samples(rows, reload)

    def _set_samples(self, rows, reload: bool = False) -> None:
        """Offer the samples of `rows` in order, keeping the current one when it is still there."""
        current = self.sample_picker.value
        options = [] if len(rows) == 0 else [(self._sample_label(r), (r["dataset"], r["sample"]))
                                             for _, r in rows.iterrows()]
        values = [v for _, v in options]
        with self._hold():
            self.sample_picker.options = options
            self.sample_picker.value = current if current in values else (values[0] if values else None)
        if reload or self.sample_picker.value != current or not values:
            self.show_sample()

    def _sample_label(self, row: pd.Series) -> str:
        """'GrabCut/106024   NoC@90 A 3, B 12' for the sample picker."""
        nocs = ", ".join(f"{label} {row[f'NoC@90 {label}']:g}" for label in self.labels.values()
                         if pd.notna(row.get(f"NoC@90 {label}")))
        return f"{row['sample']}   NoC@90 {nocs}"

    # ---- replay -------------------------------------------------------------------------------------------------

    def predictor(self, run: str):
        """The rebuilt predictor of a run and its notes (built once)."""
        if run not in self.predictors:
            self.predictors[run] = load_run_predictor(self.runs.configs.get(run, {}), self.device)
        return self.predictors[run]

    def show_sample(self) -> None:
        """Prepare the replays of the chosen sample for every chosen run, then show its first click."""
        self.replays, self.renderers = {}, {}
        if self.sample_picker.value is None:
            self.panels.children, self.iou_curve.value = [], b""
            return
        dataset, sample = self.sample_picker.value
        info = self.runs.runs.set_index("run")
        for run in self.chosen:
            if not info.at[run, "replayable"]:
                self.replays[run] = info.at[run, "note"]
                continue
            self.status.value = f"loading {html.escape(run)}\u2026"
            try:
                predictor, _ = self.predictor(run)
                self.replays[run] = replay_sample(self.runs, run, dataset, sample, predictor=predictor)
            except ReplayUnavailable as error:
                self.replays[run] = str(error)
        lengths = [len(self.runs.sample_clicks(run, dataset, sample)) for run in self.chosen]
        with self._hold():
            self.slider.max = max([1, *lengths])
            self.slider.value = 1
        self.panels.children = [self._panel() for _ in self.chosen]
        self.show_click()

    @staticmethod
    def _panel() -> widgets.VBox:
        image = widgets.Image(format="jpeg")
        image.add_class("iseg-replay-image")
        caption = widgets.HTML()
        caption.add_class("iseg-caption")
        panel = widgets.VBox([image, caption])
        panel.add_class("iseg-panel")
        return panel

    def show_click(self) -> None:
        """Draw every chosen run's state after the slider's click, and the sample's IoU curves."""
        if self.sample_picker.value is None or len(self.panels.children) != len(self.chosen):
            return
        k = self.slider.value
        dataset, sample = self.sample_picker.value
        curves = {}
        for (run, label), panel in zip(self.labels.items(), self.panels.children):
            image, caption = panel.children
            recorded = self.runs.sample_clicks(run, dataset, sample)["iou"].tolist()
            replay = self.replays.get(run)
            if not isinstance(replay, Replay):
                image.layout.display = "none"
                caption.value = (f"<b>{label}</b> {html.escape(run)}<br><span class='iseg-note'>"
                                 f"{html.escape(str(replay))}</span>")
                curves[label] = (recorded, [])
                continue
            self.status.value = f"replaying {label} to click {min(k, len(replay))}\u2026"
            step = replay.step(min(k, len(replay)))
            if run not in self.renderers:
                shape = replay.sample.image.shape
                self.renderers[run] = FrameRenderer(replay.sample.image,
                                                    display_scale(shape, PANEL_WIDTH, PANEL_HEIGHT))
            image.layout.display = None
            frame = replay_frame(step, self.renderers[run], replay.sample.mask, self.intention.value)
            image.value = encode_jpeg(frame)
            text = step_caption(label, run, step, len(replay), self.intention.value)
            if k > len(replay):
                text += f"<br>stopped after click {len(replay)} (reached the run's target IoU)"
            notes = self.predictor(run)[1]
            caption.value = text + "".join(f"<br><span class='iseg-note'>{html.escape(n)}</span>" for n in notes)
            curves[label] = (recorded, [s.iou for s in replay.steps])
        self.iou_curve.value = iou_curve_png(curves, k, self.slider.max)
        self.status.value = f"{html.escape(sample)}: click {k} of {self.slider.max}"


def make_explorer(folders: Iterable[Path | str] = ("runs",), chosen: Sequence[str] | None = None,
                  datasets: Sequence[str] | None = None, device: str | None = None) -> Explorer:
    """The explorer over every run at or under `folders` (`iseg.runs.load_runs`); ValueError for a chosen run or
    dataset that is not there."""
    folders = list(folders)
    runs = load_runs(folders)
    for kind, given, known in (("run", chosen, runs.runs["run"]), ("dataset", datasets, runs.clicks["dataset"])):
        unknown = sorted(set(given or ()) - set(known))
        if unknown:
            raise ValueError(f"no {kind} {', '.join(unknown)} in {', '.join(map(str, folders))}; "
                             f"found: {', '.join(sorted(set(known.dropna())))}")
    return Explorer(runs, chosen or None, datasets or None, device or None)
