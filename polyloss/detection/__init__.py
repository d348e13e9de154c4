"""Detection losses and box utilities, one public module per family, each with its private kernels beside it.

``boxes`` and ``box_variants`` (``_box_ops``), ``ssd`` (``_ssd``), ``generalized_focal`` (``_gfl_ops``),
``task_aligned`` (``_tal``), ``set_prediction`` (``_lsa``), ``rotated`` (``_rotated_ops``).
Every public name is re-exported as ``polyloss.<name>``.
"""
