"""The explorer widget: runs and datasets chosen, compared (NoC table, mIoU curves, per-sample NoC against a
reference run), and a sample replayed (`ReplayView`)."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from pathlib import Path

import ipywidgets as widgets
import pandas as pd

from iseg.explorer.figures import curves_png, overview_table, run_labels
from iseg.explorer.replay_view import ReplayView, quiet_block
from iseg.runs import Runs, load_runs, sample_table

CSS = """<style>
.iseg-explorer .iseg-samples { max-height: 260px; overflow: auto; border: 1px solid var(--jp-border-color2, #ddd); }
.iseg-explorer .iseg-samples table, .iseg-explorer .iseg-overview table { border-collapse: collapse;
  font-size: 12px; }
.iseg-explorer td, .iseg-explorer th { padding: 2px 8px; text-align: right; }
.iseg-explorer .iseg-caption, .iseg-explorer .iseg-caption * { white-space: normal; line-height: 1.4;
  font-size: 12px; }
.iseg-explorer .iseg-panel { margin-right: 12px; }
.iseg-explorer .iseg-replay-image { max-width: 100%; height: auto; }
.iseg-explorer .iseg-note { color: #b35900; }
</style>"""


class Explorer(widgets.VBox):
    """Choose runs and datasets, compare them (NoC table, mIoU curves, per-sample NoC and its difference to the
    reference run), replay a sample (`self.replay`).

    `runs` from `iseg.runs.load_runs`; `chosen` preselects runs (default: the first two); replays run the
    rebuilt predictors on `device`.
    """

    def __init__(self, runs: Runs, chosen: Sequence[str] | None = None, datasets: Sequence[str] | None = None,
                 device: str | None = None):
        self.runs = runs
        self._quiet = False
        self.samples = pd.DataFrame()
        names = runs.runs["run"].tolist()
        all_datasets = sorted(runs.clicks["dataset"].dropna().unique())
        self.run_picker = widgets.SelectMultiple(options=names, value=tuple(chosen or names[:2]),
                                                 rows=min(8, max(2, len(names))), description="Runs",
                                                 layout=widgets.Layout(width="620px"))
        self.run_picker.add_class("iseg-run-picker")
        self.dataset_picker = widgets.SelectMultiple(options=all_datasets,
                                                     value=tuple(datasets or all_datasets),
                                                     rows=min(4, max(2, len(all_datasets))), description="Datasets")
        self.reference = widgets.Dropdown(description="Reference", layout=widgets.Layout(width="260px"),
                                          tooltip="Δ columns: each run's NoC minus the reference run's")
        self.reference.add_class("iseg-reference")
        self.legend = widgets.HTML()
        self.overview = widgets.HTML()
        self.overview.add_class("iseg-overview")
        self.curves = widgets.Image(format="png", layout=widgets.Layout(align_self="flex-start"))
        self.sort_by = widgets.Dropdown(description="Sort by", layout=widgets.Layout(width="260px"))
        self.sort_by.add_class("iseg-sort")
        self.descending = widgets.Checkbox(value=True, description="descending", indent=False)
        self.table = widgets.HTML()
        self.table.add_class("iseg-samples")
        self.replay = ReplayView(runs, device)

        self.run_picker.observe(lambda _: self.refresh(), names="value")
        self.dataset_picker.observe(lambda _: self.refresh(), names="value")
        self.reference.observe(lambda _: self._quiet or self.refresh(), names="value")
        self.sort_by.observe(lambda _: self._quiet or self.show_table(), names="value")
        self.descending.observe(lambda _: self.show_table(), names="value")

        heading = lambda text: widgets.HTML(f"<h3>{text}</h3>")
        super().__init__([
            widgets.HTML(CSS), widgets.HBox([self.run_picker, self.dataset_picker]), self.legend,
            heading("NoC table (lower is better) and mIoU against clicks"), self.overview, self.curves,
            heading("Per sample: clicks to reach 85% / 90% IoU; Δ: a run's minus the reference's"),
            widgets.HBox([self.reference, self.sort_by, self.descending]), self.table,
            self.replay,
        ])
        self.add_class("iseg-explorer")
        if not names:
            self.replay.status.value = ("No evaluation runs found (folders with config.json, results.csv and "
                                        "ious.csv). Run <code>make smoke</code> or <code>python -m iseg.evaluate "
                                        "... --out runs/&lt;name&gt;</code>.")
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

    def refresh(self) -> None:
        """Redraw everything for the chosen runs, datasets and reference."""
        notes = self.runs.runs.set_index("run")["note"]
        self.legend.value = "<br>".join(
            f"<b>{label}</b>: {html.escape(run)}"
            + (f" <span class='iseg-note'>({html.escape(notes[run])})</span>" if notes[run] else "")
            for run, label in self.labels.items())
        labels = list(self.labels.values())
        with quiet_block(self):
            reference = self.reference.value if self.reference.value in labels else (labels or [None])[0]
            self.reference.options = labels
            self.reference.value = reference
        self.replay.choose(self.chosen, self.labels)
        datasets = list(self.dataset_picker.value)
        if not self.chosen or not datasets:
            self.overview.value, self.curves.value, self.table.value = "Choose runs and datasets.", b"", ""
            self._set_samples([], reload=True)
            return
        table = overview_table(self.runs, self.chosen, datasets)
        table["run"] = table["run"].map(lambda r: f"{self.labels[r]}: {r}")
        self.overview.value = table.style.format(precision=3).hide(axis="index").to_html()
        self.curves.value = curves_png(self.runs, self.chosen, datasets)
        self.samples = sample_table(self.runs, self.chosen, datasets, labels=labels,
                                    reference=labels.index(reference))
        sortable = [c for c in self.samples.columns if c != "dataset"]
        deltas = [c for c in sortable if c.startswith("Δ@90")]
        with quiet_block(self):
            self.sort_by.options = sortable
            self.sort_by.value = deltas[0] if deltas else sortable[-1]
        self.show_table(reload=True)

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
        picker = self.replay.sample_picker
        current = picker.value
        options = [] if len(rows) == 0 else [(self._sample_label(r), (r["dataset"], r["sample"]))
                                             for _, r in rows.iterrows()]
        values = [v for _, v in options]
        with self.replay.hold():
            picker.options = options
            picker.value = current if current in values else (values[0] if values else None)
        if reload or picker.value != current or not values:
            self.replay.show_sample()

    def _sample_label(self, row: pd.Series) -> str:
        """'GrabCut/106024   NoC@90 A 3, B 12' for the sample picker."""
        nocs = ", ".join(f"{label} {row[f'NoC@90 {label}']:g}" for label in self.labels.values()
                         if pd.notna(row.get(f"NoC@90 {label}")))
        return f"{row['sample']}   NoC@90 {nocs}"


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
