"""A picture of the three tiers: insights on top, queries in the middle, utterances below.

The whole interaction tier is far too large to draw, so the picture samples it: every
active insight (up to a cap), every query (up to a cap), and the traces of a few queries
(the latest success, the latest failure, the latest task). One layout feeds both outputs:
a PNG (matplotlib) and a self-contained HTML page whose own small script draws an SVG with
hover details, wheel zoom, panning and node dragging, so it opens offline with no CDN.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path

from gmem.rules import describe_step
from graph_store.base import GraphStore
from graph_store.model import EdgeKind, Insight, NodeKind, Outcome, QueryNode, Utterance

TIER_Y = {NodeKind.INSIGHT: 2.0, NodeKind.QUERY: 1.0, NodeKind.UTTERANCE: 0.0}
TIER_NAMES = {
    NodeKind.INSIGHT: "insight graph",
    NodeKind.QUERY: "query graph",
    NodeKind.UTTERANCE: "interaction graph (sample)",
}
OUTCOME_COLOURS = {
    Outcome.SUCCESS: "#2e9d4f",
    Outcome.FAILURE: "#d64545",
    Outcome.UNKNOWN: "#8c8c8c",
}
ROLE_COLOURS = {"planner": "#3b6fd4", "actor": "#8a4fc9", "verifier": "#1f9c9c"}
INSIGHT_COLOUR, RETIRED_COLOUR = "#e39b1b", "#c9c1b0"
EDGE_COLOURS = {
    EdgeKind.SUPPORTS: "#2e9d4f",
    EdgeKind.CONTRADICTS: "#d64545",
    EdgeKind.RELATED_TO: "#e39b1b",
    EdgeKind.SIMILAR_TO: "#9bb3d9",
    EdgeKind.USED_MEMORY_OF: "#3b6fd4",
    EdgeKind.HAS_TRACE: "#b0b0b0",
    EdgeKind.REPLIES_TO: "#8a4fc9",
    EdgeKind.NEXT: "#d0d0d0",
}


@dataclass
class PictureNode:
    id: str
    kind: NodeKind
    label: str
    detail: str
    colour: str
    x: float = 0.0
    y: float = 0.0


@dataclass
class Picture:
    nodes: list[PictureNode] = field(default_factory=list)
    edges: list[tuple[str, str, EdgeKind]] = field(default_factory=list)
    traced: list[str] = field(default_factory=list)  # query ids whose traces are drawn


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


_RULE_LABELS = {"order": "{0} before {1}", "avoid": "avoid {0}"}


def lesson(insight: Insight | str) -> str:
    """Label an insight by its lesson: the rule it holds as data, or else its text."""
    if isinstance(insight, str):
        return insight
    rule = insight.rule
    if rule is None or rule.kind == "note" or not rule.actions:
        return insight.text
    steps = [describe_step(a) for a in rule.actions]
    if rule.kind == "require":
        return "do " + ", then ".join(steps)
    return _RULE_LABELS[rule.kind].format(steps[0], steps[-1])


def sample(
    store: GraphStore,
    namespace: str | None = None,
    max_insights: int = 30,
    max_queries: int = 40,
    traces: int = 3,
) -> Picture:
    queries = [q for q in store.list_nodes(NodeKind.QUERY, namespace) if isinstance(q, QueryNode)]
    queries.sort(key=lambda q: q.created_at)
    queries = queries[-max_queries:]
    insights = [i for i in store.list_nodes(NodeKind.INSIGHT, namespace) if isinstance(i, Insight)]
    insights.sort(key=lambda i: (i.retired, -i.score, i.created_at))
    insights = insights[:max_insights]

    latest = sorted(queries, key=lambda q: q.updated_at, reverse=True)
    traced: list[str] = []
    for wanted in (Outcome.SUCCESS, Outcome.FAILURE, None):
        pick = next(
            (q for q in latest if (wanted is None or q.outcome == wanted) and q.id not in traced),
            None,
        )
        if pick is not None and len(traced) < traces:
            traced.append(pick.id)
    trace_edges = store.get_edges(traced, [EdgeKind.HAS_TRACE], "out") if traced else []
    utterances = [
        u for u in store.get_nodes([e.dst for e in trace_edges]) if isinstance(u, Utterance)
    ]
    # Only each traced query's latest attempt: the picture shows one conversation per task.
    last_attempt: dict[str, int] = {}
    for u in utterances:
        last_attempt[u.query_id] = max(last_attempt.get(u.query_id, 0), u.attempt)
    utterances = [u for u in utterances if u.attempt == last_attempt[u.query_id]]

    pic = Picture(traced=traced)
    for q in queries:
        pic.nodes.append(
            PictureNode(
                q.id,
                NodeKind.QUERY,
                _clip(q.text, 40),
                f"Query {q.id[:8]} · {q.outcome.value} · {q.attempts} attempt(s)\n{q.text}",
                OUTCOME_COLOURS[q.outcome],
            )
        )
    for i in insights:
        state = "retired" if i.retired else f"score {i.score:.1f}"
        pic.nodes.append(
            PictureNode(
                i.id,
                NodeKind.INSIGHT,
                _clip(lesson(i), 40),
                f"Insight {i.id[:8]} · {state} · {i.support_count} for, "
                f"{i.contradiction_count} against\n{i.text}",
                RETIRED_COLOUR if i.retired else INSIGHT_COLOUR,
            )
        )
    for u in sorted(utterances, key=lambda u: (traced.index(u.query_id), u.step)):
        said = u.content + (f"\naction: {u.action}" if u.action else "")
        pic.nodes.append(
            PictureNode(
                u.id,
                NodeKind.UTTERANCE,
                f"{u.role} #{u.step}",
                f"Utterance {u.step} of {u.query_id[:8]} · {u.agent} ({u.role})"
                f"{' · key step' if u.key_step else ''}\n{_clip(said, 400)}",
                ROLE_COLOURS.get(u.role, "#666666"),
            )
        )
    ids = {n.id for n in pic.nodes}
    edges = store.get_edges(sorted(ids), None, "out") if ids else []
    pic.edges = sorted(
        {(e.src, e.dst, e.kind) for e in edges if e.dst in ids},
        key=lambda e: (e[2].value, e[0], e[1]),
    )
    _layout(pic)
    return pic


def _spread(nodes: list[PictureNode]) -> None:
    n = len(nodes)
    for i, node in enumerate(nodes):
        node.x = (i + 0.5) / n if n else 0.5


def _layout(pic: Picture) -> None:
    """Queries in time order; insights and utterances under the mean position of the
    queries they touch, which keeps inter-tier edges short and mostly vertical."""
    by_kind: dict[NodeKind, list[PictureNode]] = {k: [] for k in TIER_Y}
    for node in pic.nodes:
        node.y = TIER_Y[node.kind]
        by_kind[node.kind].append(node)
    _spread(by_kind[NodeKind.QUERY])
    qx = {n.id: n.x for n in by_kind[NodeKind.QUERY]}
    touching: dict[str, list[float]] = {}
    for src, dst, _ in pic.edges:
        if src in qx:
            touching.setdefault(dst, []).append(qx[src])
    order = {n.id: i for i, n in enumerate(pic.nodes)}
    for kind in (NodeKind.INSIGHT, NodeKind.UTTERANCE):
        nodes = by_kind[kind]
        nodes.sort(
            key=lambda n: (
                sum(touching.get(n.id, [0.5])) / len(touching.get(n.id, [0.5])),
                order[n.id],
            )
        )
        _spread(nodes)


# ---- PNG ------------------------------------------------------------------------------
def write_png(pic: Picture, path: Path, title: str = "gmem: the three tiers") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import FancyArrowPatch

    pos = {n.id: (n.x, n.y) for n in pic.nodes}
    fig, ax = plt.subplots(figsize=(14, 8), dpi=110)
    for tier, y in TIER_Y.items():
        ax.axhspan(y - 0.38, y + 0.38, color="#f3f3f3" if y != 1.0 else "#eef3fb", zorder=0)
        ax.text(
            0.003,
            y + 0.3,
            TIER_NAMES[tier],
            fontsize=10,
            fontweight="bold",
            color="#444444",
            va="center",
        )
    for src, dst, kind in pic.edges:
        (x0, y0), (x1, y1) = pos[src], pos[dst]
        same_tier = y0 == y1
        arrow = FancyArrowPatch(
            (x0, y0),
            (x1, y1),
            arrowstyle="-",
            linewidth=0.6 if same_tier else 0.5,
            color=EDGE_COLOURS[kind],
            alpha=0.55 if same_tier else 0.35,
            connectionstyle="arc3,rad=0.35" if same_tier else "arc3,rad=0.0",
            zorder=1,
        )
        ax.add_patch(arrow)
    for tier in TIER_Y:
        nodes = [n for n in pic.nodes if n.kind == tier]
        if nodes:
            ax.scatter(
                [n.x for n in nodes],
                [n.y for n in nodes],
                c=[n.colour for n in nodes],
                s=70 if tier != NodeKind.UTTERANCE else 28,
                edgecolors="white",
                linewidths=0.6,
                zorder=3,
            )
    for n in pic.nodes:
        if n.kind == NodeKind.INSIGHT:
            ax.text(
                n.x,
                n.y + 0.1,
                _clip(n.label, 28),
                fontsize=5.5,
                rotation=25,
                ha="left",
                va="bottom",
                color="#5a4210",
                zorder=4,
            )
    legend = [
        Line2D([], [], marker="o", ls="", color=INSIGHT_COLOUR, label="insight"),
        Line2D(
            [],
            [],
            marker="o",
            ls="",
            color=OUTCOME_COLOURS[Outcome.SUCCESS],
            label="query: success",
        ),
        Line2D(
            [],
            [],
            marker="o",
            ls="",
            color=OUTCOME_COLOURS[Outcome.FAILURE],
            label="query: failure",
        ),
        *[
            Line2D([], [], marker="o", ls="", color=c, label=f"utterance: {r}")
            for r, c in ROLE_COLOURS.items()
        ],
        *[
            Line2D([], [], color=EDGE_COLOURS[k], label=k.value)
            for k in (
                EdgeKind.SUPPORTS,
                EdgeKind.CONTRADICTS,
                EdgeKind.SIMILAR_TO,
                EdgeKind.USED_MEMORY_OF,
                EdgeKind.HAS_TRACE,
                EdgeKind.REPLIES_TO,
            )
        ],
    ]
    ax.legend(
        handles=legend,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.01),
        ncol=6,
        fontsize=7,
        frameon=False,
    )
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.45, 2.75)
    ax.axis("off")
    ax.set_title(title, fontsize=12)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


# ---- HTML -----------------------------------------------------------------------------
_SCRIPT = r"""
const data = JSON.parse(document.getElementById("gmem-data").textContent);
const svg = document.getElementById("view"), tip = document.getElementById("tip");
const NS = "http://www.w3.org/2000/svg", W = 1400, BASE = 690, GAP = 290;
const X = x => 30 + x * (W - 60), Y = y => BASE - y * GAP;
const world = document.createElementNS(NS, "g"); svg.appendChild(world);
const bands = document.createElementNS(NS, "g"), edgeLayer = document.createElementNS(NS, "g");
world.append(bands, edgeLayer);
for (const b of data.tiers) {
  const r = document.createElementNS(NS, "rect");
  Object.entries({x: 0, y: Y(b.y) - 100, width: W, height: 200, fill: b.fill}).forEach(
    ([k, v]) => r.setAttribute(k, v));
  const t = document.createElementNS(NS, "text");
  t.setAttribute("x", 8); t.setAttribute("y", Y(b.y) - 80); t.setAttribute("class", "tier");
  t.textContent = b.name; bands.append(r, t);
}
const byId = {}, lines = [];
for (const n of data.nodes) byId[n.id] = n;
function path(e) {
  const a = byId[e.s], b = byId[e.t], x0 = X(a.x), y0 = Y(a.y), x1 = X(b.x), y1 = Y(b.y);
  if (a.y !== b.y) return `M${x0},${y0} L${x1},${y1}`;
  const bend = Math.min(90, Math.abs(x1 - x0) * 0.35 + 12);
  return `M${x0},${y0} Q${(x0 + x1) / 2},${y0 - bend} ${x1},${y1}`;
}
for (const e of data.edges) {
  const p = document.createElementNS(NS, "path");
  p.setAttribute("d", path(e)); p.setAttribute("stroke", e.colour);
  p.setAttribute("class", "edge"); p.dataset.s = e.s; p.dataset.t = e.t;
  edgeLayer.appendChild(p); lines.push([p, e]);
}
let dragging = null, panning = null, scale = 1, tx = 0, ty = 0;
const apply = () => world.setAttribute("transform", `translate(${tx},${ty}) scale(${scale})`);
function focus(id) {
  for (const [p, e] of lines) p.classList.toggle("hot", id !== null && (e.s === id || e.t === id));
}
for (const n of data.nodes) {
  const c = document.createElementNS(NS, "circle");
  c.setAttribute("r", n.kind === "Utterance" ? 5 : 8); c.setAttribute("fill", n.colour);
  c.setAttribute("class", "node"); n.el = c;
  const place = () => { c.setAttribute("cx", X(n.x)); c.setAttribute("cy", Y(n.y)); };
  place(); n.place = place;
  c.addEventListener("mouseenter", ev => {
    tip.textContent = n.detail; tip.style.display = "block"; focus(n.id);
  });
  c.addEventListener("mousemove", ev => {
    tip.style.left = (ev.clientX + 14) + "px"; tip.style.top = (ev.clientY + 14) + "px";
  });
  c.addEventListener("mouseleave", () => { tip.style.display = "none"; focus(null); });
  c.addEventListener("mousedown", ev => { dragging = n; ev.stopPropagation(); });
  world.appendChild(c);
}
function toWorld(ev) {
  const r = svg.getBoundingClientRect(), k = W / r.width;
  return [((ev.clientX - r.left) * k - tx) / scale, ((ev.clientY - r.top) * k - ty) / scale];
}
svg.addEventListener("mousedown", ev => { panning = [ev.clientX, ev.clientY, tx, ty]; });
window.addEventListener("mousemove", ev => {
  if (dragging) {
    const [wx, wy] = toWorld(ev);
    dragging.x = (wx - 30) / (W - 60); dragging.y = (BASE - wy) / GAP; dragging.place();
    for (const [p, e] of lines) if (e.s === dragging.id || e.t === dragging.id)
      p.setAttribute("d", path(e));
  } else if (panning) {
    const k = W / svg.getBoundingClientRect().width;
    tx = panning[2] + (ev.clientX - panning[0]) * k;
    ty = panning[3] + (ev.clientY - panning[1]) * k;
    apply();
  }
});
window.addEventListener("mouseup", () => { dragging = null; panning = null; });
svg.addEventListener("wheel", ev => {
  ev.preventDefault();
  const [wx, wy] = toWorld(ev), f = ev.deltaY < 0 ? 1.15 : 1 / 1.15;
  scale = Math.max(0.3, Math.min(12, scale * f));
  const r = svg.getBoundingClientRect(), k = W / r.width;
  tx = (ev.clientX - r.left) * k - wx * scale; ty = (ev.clientY - r.top) * k - wy * scale;
  apply();
}, {passive: false});
document.getElementById("reset").onclick = () => { scale = 1; tx = 0; ty = 0; apply(); };
"""

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 12px; color: #222; }}
#view {{ width: 100%; height: auto; border: 1px solid #ddd; cursor: grab; user-select: none; }}
.edge {{ fill: none; stroke-width: 0.8; opacity: 0.35; }}
.edge.hot {{ stroke-width: 2.2; opacity: 0.95; }}
.node {{ stroke: white; stroke-width: 1.2; cursor: pointer; }}
.tier {{ font-size: 14px; font-weight: 600; fill: #555; }}
#tip {{ position: fixed; display: none; max-width: 440px; white-space: pre-wrap;
  background: #fffff4; border: 1px solid #bbb; padding: 6px 8px; font-size: 12px;
  box-shadow: 0 2px 6px rgba(0,0,0,.15); pointer-events: none; }}
.legend span {{ display: inline-block; margin-right: 14px; font-size: 12px; }}
.legend i {{ display: inline-block; width: 10px; height: 10px; border-radius: 50%;
  margin-right: 4px; vertical-align: -1px; }}
</style></head><body>
<h2>{title}</h2>
<p>{summary} Hover a node for its text and edges; drag nodes; scroll to zoom; drag the
background to pan. <button id="reset">reset view</button></p>
<p class="legend">{legend}</p>
<svg id="view" viewBox="0 0 1400 800" xmlns="http://www.w3.org/2000/svg"></svg>
<div id="tip"></div>
<script type="application/json" id="gmem-data">{data}</script>
<script>{script}</script>
</body></html>
"""


def html_data(pic: Picture) -> dict[str, object]:
    return {
        "tiers": [
            {"name": TIER_NAMES[k], "y": y, "fill": "#eef3fb" if y == 1.0 else "#f5f5f5"}
            for k, y in TIER_Y.items()
        ],
        "nodes": [
            {
                "id": n.id,
                "kind": n.kind.value,
                "label": n.label,
                "detail": n.detail,
                "colour": n.colour,
                "x": round(n.x, 5),
                "y": n.y,
            }
            for n in pic.nodes
        ],
        "edges": [
            {"s": s, "t": t, "kind": k.value, "colour": EDGE_COLOURS[k]} for s, t, k in pic.edges
        ],
    }


def write_html(pic: Picture, path: Path, title: str = "gmem: the three tiers") -> None:
    # No "<" may appear inside the script element ("</script>" would end it early); "<"
    # only occurs inside JSON strings, where the \u003c escape reads back the same.
    data = json.dumps(html_data(pic), ensure_ascii=False).replace("<", "\\u003c")
    counts = {k: sum(1 for n in pic.nodes if n.kind == k) for k in TIER_Y}
    summary = (
        f"{counts[NodeKind.INSIGHT]} insights, {counts[NodeKind.QUERY]} queries, and the "
        f"{counts[NodeKind.UTTERANCE]} utterances of {len(pic.traced)} sampled tasks; "
        f"{len(pic.edges)} edges."
    )
    swatches = [
        ("insight", INSIGHT_COLOUR),
        ("retired insight", RETIRED_COLOUR),
        ("query: success", OUTCOME_COLOURS[Outcome.SUCCESS]),
        ("query: failure", OUTCOME_COLOURS[Outcome.FAILURE]),
        *[(f"utterance: {r}", c) for r, c in ROLE_COLOURS.items()],
    ]
    legend = "".join(
        f'<span><i style="background:{c}"></i>{html.escape(name)}</span>' for name, c in swatches
    )
    page = _PAGE.format(
        title=html.escape(title),
        summary=html.escape(summary),
        legend=legend,
        data=data,
        script=_SCRIPT,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
