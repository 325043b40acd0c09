"""The click demo: a GUI-free controller, its frames and background worker, and a thin ipywidgets view over them."""

from iseg.demo.controller import ClickController, load_image_bytes
from iseg.demo.frame import FrameRenderer, FrameStyle
from iseg.demo.worker import PredictionWorker

__all__ = ["ClickController", "ClickDemo", "FrameRenderer", "FrameStyle", "PredictionWorker", "load_image_bytes",
           "make_demo"]


def __getattr__(name: str):
    """Import the widget (ipywidgets, ipyevents) only when it is asked for."""
    if name in ("ClickDemo", "make_demo"):
        from iseg.demo import widget

        return getattr(widget, name)
    raise AttributeError(f"module 'iseg.demo' has no attribute {name!r}")
