"""W-Net: unsupervised image segmentation (Xia & Kulis 2017) with an exact soft N-Cut loss."""

__version__ = "0.1.0"

# The notebook entry points, imported on first use so that ``import wnet`` stays light (no torch).
_LAZY = {"pretrained": "wnet.zoo", "segment_image": "wnet.segmentation"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'wnet' has no attribute {name!r}")
