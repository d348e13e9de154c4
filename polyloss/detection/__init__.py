"""Detection losses and box utilities, one public module per family, each with its private kernels beside it.

``boxes`` (``_box_ops``), ``ssd`` (``_ssd``), ``generalized_focal``, ``rotated`` (``_rotated_ops``).
Every public name is re-exported as ``polyloss.<name>``.
"""
