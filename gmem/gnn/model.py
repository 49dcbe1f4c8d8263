"""The encoders: heterogeneous GraphSAGE over the memory graph, and the MLP baseline.

:class:`MemoryEncoder` is GraphSAGE made heterogeneous the way ``to_hetero`` does it (one
``SAGEConv`` per relation, summed per destination type), written out with ``HeteroConv``
so that the runtime can evaluate a small subgraph around a new task while holding every
stored node at its cached state. GraphSAGE because it is inductive: its root transform
applies to a node with no edges at all, which is exactly a task being recalled for the
first time; HGT's attention and RGCN's basis weights buy expressiveness a graph of a few
relation types and thousands of tasks does not need, at several times the CPU cost. A
residual connection keeps a node's own text in its state however many neighbours it has.

:class:`TextProcedureMLP` is the baseline without message passing: the same contrastive
objective, a map from a task's text vector alone. The graph encoder earns its place only
by beating it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gmem.gnn.export import EDGE_TYPES, INSIGHT, NODE_TYPES, QUERY, EdgeType
from gmem.gnn.pyg import HeteroConv, SAGEConv

#: Per node type: rows held fixed and their state before and after each layer.
Frozen = Mapping[str, tuple[Tensor, Sequence[Tensor]]]


class MemoryEncoder(nn.Module):
    def __init__(
        self, in_dims: Mapping[str, int], hidden: int, out: int, layers: int, dropout: float
    ) -> None:
        super().__init__()
        self.inputs = nn.ModuleDict({t: nn.Linear(in_dims[t], hidden) for t in NODE_TYPES})
        self.convs = nn.ModuleList(
            HeteroConv(
                {et: SAGEConv((hidden, hidden), hidden, aggr="mean") for et in EDGE_TYPES},
                aggr="sum",
            )
            for _ in range(layers)
        )
        self.head = nn.Linear(hidden, out)
        self.dropout = dropout

    def states(
        self,
        x: Mapping[str, Tensor],
        edges: Mapping[EdgeType, Tensor],
        frozen: Frozen | None = None,
    ) -> list[dict[str, Tensor]]:
        """Every node's state before the first layer and after each one.

        ``frozen`` rows are overwritten with the given states after each step, so a
        subgraph evaluates as if embedded in the whole graph it was cut from.
        """

        def pin(h: dict[str, Tensor], layer: int) -> dict[str, Tensor]:
            if not frozen:
                return h
            out = dict(h)
            for t, (rows, states) in frozen.items():
                if rows.numel():
                    out[t] = out[t].index_copy(0, rows, states[layer])
            return out

        h = pin({t: F.relu(self.inputs[t](x[t])) for t in NODE_TYPES}, 0)
        out = [h]
        for i, conv in enumerate(self.convs):
            h_in = {t: F.dropout(v, self.dropout, self.training) for t, v in h.items()}
            msg = _hetero_sage(conv, h_in, edges)
            h = pin({t: h[t] + F.relu(msg[t]) if t in msg else h[t] for t in NODE_TYPES}, i + 1)
            out.append(h)
        return out

    def project(self, state: Tensor) -> Tensor:
        return F.normalize(self.head(state), dim=-1)

    def forward(self, x: Mapping[str, Tensor], edges: Mapping[EdgeType, Tensor]) -> Tensor:
        """Unit embeddings of the query nodes."""
        return self.project(self.states(x, edges)[-1][QUERY])

    def embed_all(
        self, x: Mapping[str, Tensor], edges: Mapping[EdgeType, Tensor]
    ) -> tuple[Tensor, Tensor, list[dict[str, Tensor]]]:
        states = self.states(x, edges)
        return self.project(states[-1][QUERY]), self.project(states[-1][INSIGHT]), states


def _hetero_sage(
    conv: HeteroConv, h: Mapping[str, Tensor], edges: Mapping[EdgeType, Tensor]
) -> dict[str, Tensor]:
    """What ``conv(h, edges)`` computes with every relation present, in fewer products.

    Each relation's SAGE output is ``W_l mean(neighbours) + b_l + W_r h_dst``; summed over
    the relations into one node type, the root terms are one product with the summed
    ``W_r`` and the biases one sum, and a relation without edges adds only those. Per
    layer that is one root product per node type plus one per relation that has edges,
    instead of two per relation; the parameters are the ``SAGEConv``s' own.
    """
    roots: dict[str, list[SAGEConv]] = {}
    for et in EDGE_TYPES:
        roots.setdefault(et[2], []).append(conv.convs[et])
    out: dict[str, Tensor] = {}
    for dst, convs in roots.items():
        weight = torch.stack([c.lin_r.weight for c in convs]).sum(0)
        bias = torch.stack([c.lin_l.bias for c in convs]).sum(0)
        out[dst] = h[dst] @ weight.T + bias
    for et in EDGE_TYPES:
        ei = edges.get(et)
        if ei is None or ei.numel() == 0:
            continue
        src, _, dst = et
        n_dst = h[dst].shape[0]
        total = torch.zeros((n_dst, h[src].shape[1]), dtype=h[src].dtype, device=h[src].device)
        total = total.index_add(0, ei[1], h[src][ei[0]])
        count = torch.bincount(ei[1], minlength=n_dst).clamp_min(1).to(total.dtype)
        sage = conv.convs[et]
        out[dst] = out[dst] + (total / count[:, None]) @ sage.lin_l.weight.T
    return out


class TextProcedureMLP(nn.Module):
    """Text vector -> embedding whose neighbours share a procedure. No graph."""

    def __init__(self, in_dim: int, hidden: int, out: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, out)
        )

    def forward(self, text: Tensor) -> Tensor:
        return F.normalize(self.net(text), dim=-1)
