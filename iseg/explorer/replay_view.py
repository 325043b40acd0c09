"""The explorer's replay: one sample of the chosen runs replayed click by click, one panel per run, in one row."""

from __future__ import annotations

import html
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import ipywidgets as widgets

from iseg.demo.frame import FrameRenderer, display_scale, encode_jpeg
from iseg.explorer.figures import iou_curve_png, panel_size, replay_frame, step_caption
from iseg.replay import Replay, ReplayUnavailable, load_run_predictor, replay_sample
from iseg.runs import Runs


@contextmanager
def quiet_block(owner) -> Iterator[None]:
    """A block during which `owner._quiet` is True: its widgets' handlers see that the change is its own."""
    before, owner._quiet = owner._quiet, True
    try:
        yield
    finally:
        owner._quiet = before


class ReplayView(widgets.VBox):
    """Sample picker, click slider, layer switches (mask, ground truth, IFPN intention), the panels of the chosen
    runs and the sample's IoU curves. Changes made inside `hold()` (by the view or the explorer) run no handler.
    The panels share one row: their width follows the number of runs (`panel_size`)."""

    def __init__(self, runs: Runs, device: str | None):
        self.runs, self.device = runs, device
        self._quiet = False
        self.chosen: list[str] = []
        self.labels: dict[str, str] = {}
        self.predictors: dict[str, tuple[object, list[str]]] = {}
        self.replays: dict[str, Replay | str] = {}
        self.renderers: dict[str, FrameRenderer] = {}
        self.sample_picker = widgets.Dropdown(description="Sample", layout=widgets.Layout(width="480px"))
        self.sample_picker.add_class("iseg-sample-picker")
        self.slider = widgets.IntSlider(value=1, min=1, max=1, description="Click", continuous_update=False,
                                        layout=widgets.Layout(width="480px"))  # a step per click wide enough to hit
        self.slider.add_class("iseg-click-slider")
        self.show_mask = widgets.Checkbox(value=True, description="mask", indent=False,
                                          layout=widgets.Layout(width="auto"))
        self.show_gt = widgets.Checkbox(value=True, description="ground truth", indent=False,
                                        layout=widgets.Layout(width="auto"))
        self.intention = widgets.Checkbox(value=True, description="IFPN intention", indent=False,
                                          layout=widgets.Layout(width="auto"))
        self.layers = widgets.HBox([widgets.HTML("Layers:"), self.show_mask, self.show_gt, self.intention])
        self.layers.add_class("iseg-layers")
        self.panels = widgets.HBox(layout=widgets.Layout(flex_flow="row nowrap"))
        self.iou_curve = widgets.Image(format="png", layout=widgets.Layout(align_self="flex-start"))
        self.status = widgets.HTML()
        self.status.add_class("iseg-status")
        self.sample_picker.observe(lambda _: self._quiet or self.show_sample(), names="value")
        self.slider.observe(lambda _: self._quiet or self.show_click(), names="value")
        for layer in (self.show_mask, self.show_gt, self.intention):
            layer.observe(lambda _: self.show_click(), names="value")
        controls = widgets.VBox([self.sample_picker, self.slider, self.layers, self.status],
                                layout=widgets.Layout(width="500px"))
        super().__init__([widgets.HTML("<h3>Replay a sample click by click</h3>"),
                          widgets.HBox([controls, self.iou_curve], layout=widgets.Layout(flex_flow="row wrap")),
                          self.panels])
        self.add_class("iseg-replay")

    def hold(self):
        """A block in which changes to the view's widgets trigger no handler."""
        return quiet_block(self)

    def choose(self, chosen: Sequence[str], labels: dict[str, str]) -> None:
        """The runs to replay, with their letters (the panels are rebuilt at the next sample)."""
        self.chosen, self.labels = list(chosen), dict(labels)

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
        with self.hold():
            self.slider.max = max([1, *lengths])
            self.slider.value = 1
        width = panel_size(len(self.chosen))[0]
        self.panels.children = [self._panel(width) for _ in self.chosen]
        self.show_click()

    @staticmethod
    def _panel(width: int) -> widgets.VBox:
        image = widgets.Image(format="jpeg")
        image.add_class("iseg-replay-image")
        caption = widgets.HTML()
        caption.add_class("iseg-caption")
        panel = widgets.VBox([image, caption], layout=widgets.Layout(width=f"{width}px", flex="0 0 auto"))
        panel.add_class("iseg-panel")
        return panel

    def show_click(self) -> None:
        """Draw every chosen run's state after the slider's click with the chosen layers, and the IoU curves."""
        if self.sample_picker.value is None or len(self.panels.children) != len(self.chosen):
            return
        k = self.slider.value
        dataset, sample = self.sample_picker.value
        width, height = panel_size(len(self.chosen))
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
                self.renderers[run] = FrameRenderer(replay.sample.image, display_scale(shape, width, height))
            image.layout.display = None
            frame = replay_frame(step, self.renderers[run], replay.sample.mask, self.intention.value,
                                 mask=self.show_mask.value, ground_truth=self.show_gt.value)
            image.value = encode_jpeg(frame)
            text = step_caption(label, run, step, len(replay), self.intention.value)
            if k > len(replay):
                text += f"<br>stopped after click {len(replay)} (reached the run's target IoU)"
            notes = self.predictor(run)[1]
            caption.value = text + "".join(f"<br><span class='iseg-note'>{html.escape(n)}</span>" for n in notes)
            curves[label] = (recorded, [s.iou for s in replay.steps])
        self.iou_curve.value = iou_curve_png(curves, k, self.slider.max)
        self.status.value = f"{html.escape(sample)}: click {k} of {self.slider.max}"
