"""Annotating a folder of photos with clicks: a GUI-free session saved as you go, COCO export, a thin widget."""

from iseg.annotate.session import AnnotatedObject, AnnotationSession

__all__ = ["AnnotatedObject", "AnnotationSession", "AnnotationWidget", "make_annotator"]


def __getattr__(name: str):
    """Import the widget (ipywidgets, ipyevents) only when it is asked for."""
    if name in ("AnnotationWidget", "make_annotator"):
        from iseg.annotate import widget

        return getattr(widget, name)
    raise AttributeError(f"module 'iseg.annotate' has no attribute {name!r}")
