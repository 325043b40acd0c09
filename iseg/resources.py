"""Where the files shipped with iseg are: `weights/` and `data_configs/` of the repository in a clone (or an
editable install), or the copies a wheel carries in `iseg/_shipped/` (setup.py) when installed with `pip install .`."""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
SHIPPED_DIR = PACKAGE_DIR / "_shipped"
SOURCE_ROOT = PACKAGE_DIR.parent


def installed_from_wheel() -> bool:
    """Whether this iseg is a wheel install (it carries its shipped files) rather than a source tree."""
    return SHIPPED_DIR.is_dir()


def shipped(folder: str) -> Path:
    """The shipped folder `weights` or `data_configs`: the wheel's copy when installed from one, else the clone's."""
    return SHIPPED_DIR / folder if installed_from_wheel() else SOURCE_ROOT / folder


def project_root() -> Path:
    """What the default data config's relative paths and default run folders are relative to: the clone, or the
    current directory for a wheel install."""
    return Path.cwd() if installed_from_wheel() else SOURCE_ROOT
