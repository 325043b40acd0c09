"""iseg: a research workbench for click-based interactive image segmentation (IFPN)."""

__version__ = "0.1.0"
