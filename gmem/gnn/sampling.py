"""Neighbourhood subgraphs for mini-batch training, in plain torch.

PyG's ``NeighborLoader`` needs ``pyg-lib`` or ``torch-sparse``, neither of which has a
usable wheel on every machine gmem runs on; an exact L-hop neighbourhood of a batch of
tasks is a few index operations, and exact is what the encoder's mean aggregation wants.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from gmem.gnn.export import NODE_TYPES, QUERY, EdgeType


def neighbourhood(
    x: Mapping[str, Tensor], edges: Mapping[EdgeType, Tensor], seeds: Tensor, hops: int
) -> tuple[dict[str, Tensor], dict[EdgeType, Tensor], Tensor]:
    """The subgraph a ``hops``-layer encoder reads to compute the ``seeds`` query rows.

    Returns its features, its relabelled edges, and the global query rows it holds (sorted;
    the subgraph's query ``i`` is global row ``rows[i]``).
    """
    device = seeds.device
    keep = {t: torch.zeros(x[t].shape[0], dtype=torch.bool, device=device) for t in NODE_TYPES}
    keep[QUERY][seeds] = True
    for _ in range(hops):
        grown = {t: m.clone() for t, m in keep.items()}
        for (src, _, dst), ei in edges.items():
            if ei.numel():
                grown[src][ei[0][keep[dst][ei[1]]]] = True
        keep = grown
    index = {t: torch.nonzero(m).flatten() for t, m in keep.items()}
    remap = {}
    for t, rows in index.items():
        where = torch.full((x[t].shape[0],), -1, dtype=torch.long, device=device)
        where[rows] = torch.arange(rows.numel(), device=device)
        remap[t] = where
    sub_x = {t: x[t][index[t]] for t in NODE_TYPES}
    sub_e = {}
    for et, ei in edges.items():
        src, _, dst = et
        inside = (
            keep[src][ei[0]] & keep[dst][ei[1]] if ei.numel() else torch.zeros(0, dtype=torch.bool)
        )
        sub_e[et] = torch.stack([remap[src][ei[0][inside]], remap[dst][ei[1][inside]]])
    return sub_x, sub_e, index[QUERY]
