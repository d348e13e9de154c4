"""What every public family shares: the input layer, the checks, the reductions, the types.

``inputs`` (``prepare``: the one validation pass of a segmentation loss),
``checks`` (errors raised in the public function's name; value checks only on
concrete arrays), ``reduce`` (every reduction and the dtype policy), ``typing``
(the shared type aliases). Imports only ``polyloss._backend``.
"""
