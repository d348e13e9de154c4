"""Segmentation losses and metrics, one public module per family, each with its private kernels beside it.

``pixelwise`` (``_pixel``), ``region`` and ``compound`` (``_confusion``), ``lovasz``,
``distance`` (``_edt``), ``boundary`` (``_boundary_ops``), ``topology`` (``_channels``, ``_skeleton``),
``metrics`` (``_surface``), ``supervision``. Every public name is re-exported as ``polyloss.<name>``.
"""
