"""What data is configured, what is present, and what is missing (the data-prep notebook's table)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from iseg.data.sources import SOURCES


def inventory(names: list[str] | None = None, config: Path | str | None = None) -> pd.DataFrame:
    """One row per configured dataset: path, status (ok / missing / error), sample count, message, source."""
    from iseg.data import load_data_config, load_dataset

    paths = load_data_config(config)
    rows = []
    for name in names or list(paths):
        path = paths.get(name)
        row = {"dataset": name, "path": str(path), "status": "ok", "samples": 0, "message": "",
               "source": SOURCES[name].url if name in SOURCES else ""}
        try:
            row["samples"] = len(load_dataset(name, config=config))
        except FileNotFoundError as err:
            row.update(status="missing", message=str(err))
        except (ValueError, OSError) as err:
            row.update(status="error", message=str(err))
        rows.append(row)
    return pd.DataFrame(rows)
