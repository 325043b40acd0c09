"""The click demo: a GUI-free controller and a thin ipywidgets view over it."""

from iseg.demo.controller import ClickController, load_image_bytes

__all__ = ["ClickController", "ClickDemo", "load_image_bytes", "make_demo"]


def __getattr__(name: str):
    """Import the widget (ipywidgets, ipyevents) only when it is asked for."""
    if name in ("ClickDemo", "make_demo"):
        from iseg.demo import widget

        return getattr(widget, name)
    raise AttributeError(f"module 'iseg.demo' has no attribute {name!r}")
