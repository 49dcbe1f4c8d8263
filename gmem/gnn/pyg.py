"""PyTorch Geometric, imported once for the package, without its import-time warnings.

PyG scripts a few helpers with ``torch.jit.script`` as it is imported, which recent torch
releases deprecate with a FutureWarning on stderr. The warning is for PyG's maintainers;
to someone running ``gmem embed`` it reads like a gmem fault, so it is silenced here and
only here (any other warning still shows).
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings(
        "ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning
    )
    from torch_geometric.data import HeteroData
    from torch_geometric.nn import HeteroConv, SAGEConv

__all__ = ["HeteroConv", "HeteroData", "SAGEConv"]
