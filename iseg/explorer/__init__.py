"""The run explorer for JupyterLab (notebook 05): evaluation runs side by side, the samples where they disagree,
and any sample replayed click by click exactly as it was evaluated.

Runs come from `iseg.runs.load_runs`, replays from `iseg.replay`. The chosen runs are labelled A, B, ... in the
order of the run list; the per-sample table's `Δ@t <run>` is that run's NoC minus the reference run's (positive:
the reference needed fewer clicks). Split by concern, as the click demo is: `figures` (tables, curves and frames
as plain functions), `replay_view` (the replay widget), `widget` (the explorer that composes them).
"""

from iseg.explorer.figures import iou_curve_png, overview_table, panel_size, replay_frame, run_labels
from iseg.explorer.replay_view import ReplayView
from iseg.explorer.widget import Explorer, make_explorer

__all__ = ["Explorer", "ReplayView", "iou_curve_png", "make_explorer", "overview_table", "panel_size",
           "replay_frame", "run_labels"]
