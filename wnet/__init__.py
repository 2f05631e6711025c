"""W-Net: unsupervised image segmentation (Xia & Kulis 2017) with an exact soft N-Cut loss."""

__version__ = "0.1.0"
