"""The structural encoder: export, training, inference for new tasks, save/load, fallback.

Runs on CPU with a lexical embedder so that a memory of a few dozen tasks builds in a
second; marked ``torch`` (deselect with ``-m "not torch"`` where torch is not installed).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from gmem.config import MemoryConfig
from gmem.embedding import HashingEmbedder
from gmem.llm import HeuristicLLM
from gmem.memory import Memory
from graph_store import EmbeddedStore, GraphStore
from graph_store.model import EdgeKind, NodeKind, QueryNode

pytestmark = pytest.mark.torch

# Two procedures whose tasks read alike, and a third worded differently.
HEAT = [
    "go to fridge 1",
    "take {o} 1 from fridge 1",
    "heat {o} 1 with microwave 1",
    "put {o} 1 in {d} 1",
]
CLEAN = [
    "go to sinkbasin 1",
    "take {o} 1 from sinkbasin 1",
    "clean {o} 1 with sinkbasin 1",
    "put {o} 1 in {d} 1",
]
LOOK = ["go to desk 1", "take {o} 1 from desk 1", "use desklamp 1"]
OBJECTS = ["apple", "mug", "plate", "tomato", "bowl", "bread"]
DESTS = ["cabinet", "countertop", "shelf"]


def _trajectory(
    task: str, plan: list[str], obj: str, dest: str, success: bool
) -> dict[str, object]:
    steps: list[dict[str, object]] = [
        {"agent": "p", "role": "planner", "content": f"plan for {task}"}
    ]
    for action in plan:
        act = action.format(o=obj, d=dest)
        steps.append({"agent": "a", "role": "actor", "content": act, "action": act, "reward": 0.0})
    return {"task": task, "success": success, "steps": steps}


def corpus() -> list[dict[str, object]]:
    out = []
    for i, obj in enumerate(OBJECTS):
        for j, dest in enumerate(DESTS):
            out.append(_trajectory(f"put a hot {obj} in the {dest}", HEAT, obj, dest, True))
            out.append(_trajectory(f"put a clean {obj} in the {dest}", CLEAN, obj, dest, True))
            if (i + j) % 2 == 0:
                out.append(_trajectory(f"examine the {obj} under the lamp", LOOK, obj, dest, True))
            if (i + j) % 3 == 0:
                out.append(_trajectory(f"warm up the {obj} for the {dest}", HEAT, obj, dest, False))
    return out


def small_config(**overrides: object) -> MemoryConfig:
    values: dict[str, object] = {
        "gnn_encoder": "hetero-sage",
        "gnn_epochs": 40,
        "gnn_dim": 16,
        "gnn_hidden": 32,
        "gnn_trace_dim": 64,
        "gnn_negatives": 8,
        "gnn_refresh_every": 0,
        "merge_every": 0,
    }
    values.update(overrides)
    return MemoryConfig.model_validate(values)


def filled(store: GraphStore, config: MemoryConfig) -> Memory:
    emb = HashingEmbedder(128)
    memory = Memory(store, embedder=emb, llm=HeuristicLLM(emb, config), config=config)
    for traj in corpus():
        memory.ingest(traj)
    return memory


def test_export_round_trips_node_and_edge_counts(store: GraphStore) -> None:
    from gmem.gnn.export import RELATIONS, TRACE, export_namespace

    config = small_config()
    memory = filled(store, config)
    graph = export_namespace(store, "default", config)
    counts = store.count("default")
    for kind in (NodeKind.QUERY, NodeKind.INSIGHT, NodeKind.UTTERANCE):
        assert graph.nodes_read.get(kind.value, 0) == counts.nodes.get(kind.value, 0)
    for edge in RELATIONS:
        assert graph.edges_read.get(edge.value, 0) == counts.edges.get(edge.value, 0), edge
    assert graph.data["query"].num_nodes == counts.nodes[NodeKind.QUERY.value]
    assert graph.data[TRACE].num_nodes == graph.data["query"].num_nodes
    # Symmetric SIMILAR_TO: both directions of every stored edge.
    similar = graph.data["query", "similar_to", "query"].edge_index
    assert similar.shape[1] == 2 * counts.edges.get(EdgeKind.SIMILAR_TO.value, 0)
    assert graph.procedure_pairs.shape[1] > 0
    memory.close()


def test_training_lowers_the_loss_and_is_deterministic() -> None:
    from gmem.gnn.export import export_namespace
    from gmem.gnn.train import train

    config = small_config()
    store = EmbeddedStore(":memory:")
    filled(store, config)
    graph = export_namespace(store, "default", config)
    model_a, report = train(graph, config)
    assert report.losses[-1] < report.losses[0] * 0.8
    model_b, again = train(graph, config)
    # Same seed, same run (up to the order of float sums in multi-threaded scatter).
    assert np.allclose(again.losses, report.losses, rtol=1e-4)
    for pa, pb in zip(model_a.parameters(), model_b.parameters(), strict=True):
        assert np.allclose(pa.detach().numpy(), pb.detach().numpy(), atol=1e-4)


def test_minibatch_training_lowers_the_loss() -> None:
    from gmem.gnn.export import export_namespace
    from gmem.gnn.train import train

    config = small_config(gnn_minibatch_nodes=10, gnn_pairs_per_step=16)
    store = EmbeddedStore(":memory:")
    filled(store, config)
    graph = export_namespace(store, "default", config)
    _, report = train(graph, config, epochs=15)
    assert report.losses[-1] < report.losses[0]


def test_training_is_bounded_by_the_node_budget_and_the_plateau() -> None:
    from gmem.gnn.export import export_namespace
    from gmem.gnn.train import train

    store = EmbeddedStore(":memory:")
    filled(store, small_config())
    graph = export_namespace(store, "default", small_config())
    # Each full-graph step passes every node through the encoder once.
    budget = small_config(gnn_train_node_budget=graph.num_nodes * 5, gnn_patience=0)
    _, report = train(graph, budget, epochs=40)
    assert report.epochs == 5 and report.stopped_early
    # A learning rate too small to move the loss: the plateau ends training early.
    stuck = small_config(gnn_lr=1e-9, gnn_patience=5, gnn_dropout=0.0, gnn_mask_share=0.0)
    _, flat = train(graph, stuck, epochs=40)
    assert flat.stopped_early and flat.epochs < 40
    # Sampled steps: more positives than one step takes still train.
    sampled = small_config(gnn_pairs_per_step=8)
    assert graph.procedure_pairs.shape[1] * 2 > 8
    _, part = train(graph, sampled, epochs=30)
    assert np.mean(part.losses[-5:]) < np.mean(part.losses[:5])


def test_fused_layer_is_heteroconv_arithmetic() -> None:
    """The encoder's layer sums root weights per node type instead of running one SAGEConv
    per relation; the result must be what HeteroConv computes, relations without edges
    included."""
    import torch

    from gmem.gnn.export import EDGE_TYPES, NODE_TYPES
    from gmem.gnn.model import MemoryEncoder, _hetero_sage

    torch.manual_seed(3)
    enc = MemoryEncoder({"query": 12, "insight": 12, "trace": 7}, 16, 8, 1, 0.0)
    sizes = {"query": 20, "insight": 4, "trace": 20}
    h = {t: torch.randn(sizes[t], 16) for t in NODE_TYPES}
    edges = {}
    for i, (src, rel, dst) in enumerate(EDGE_TYPES):
        count = 0 if i % 3 == 2 else 30
        edges[src, rel, dst] = torch.stack(
            [torch.randint(0, sizes[src], (count,)), torch.randint(0, sizes[dst], (count,))]
        )
    reference = enc.convs[0](h, edges)
    fused = _hetero_sage(enc.convs[0], h, edges)
    assert set(reference) == set(fused)
    for t in reference:
        assert torch.allclose(reference[t], fused[t], atol=1e-5)


def test_procedure_pairs_are_each_rows_best_above_threshold() -> None:
    from gmem.gnn.features import procedure_pairs

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(60, 8)).astype(np.float32)
    vectors[5] = 0.0
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)
    got = {tuple(p) for p in procedure_pairs(vectors, 3, 0.4, block=7).T.tolist()}
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -1.0)
    expected = set()
    for i in range(60):
        for j in np.argsort(-sims[i], kind="stable")[:3]:
            if sims[i, j] >= 0.4:
                expected.add((min(i, int(j)), max(i, int(j))))
    assert got == expected and got
    assert not any(5 in p for p in got)


def test_identical_text_different_procedures_embed_apart() -> None:
    """Two tasks whose text vectors are equal but whose traces differ get different
    structural embeddings: the trace, not the text, is what the encoder reads for them."""
    from gmem.gnn.embed import embed_namespace

    config = small_config()
    store = EmbeddedStore(":memory:")
    memory = filled(store, config)
    hot = memory.recall("put a hot apple in the cabinet").queries[0].id
    clean_q = next(q for q in memory.queries() if q.text == "put a clean apple in the cabinet")
    hot_node = store.get_node(hot, with_vectors=True)
    assert isinstance(hot_node, QueryNode) and hot_node.embedding is not None
    # Give the clean task exactly the hot task's text vector.
    store.put_nodes([clean_q.model_copy(update={"embedding": hot_node.embedding})])
    embed_namespace(store, "default", config, memory.embedder.name)
    a, b = store.get_nodes([hot, clean_q.id], with_vectors=True)
    assert a is not None and b is not None
    assert a.graph_embedding is not None and b.graph_embedding is not None
    assert float(a.graph_embedding @ b.graph_embedding) < 0.9


def test_unseen_task_gets_an_embedding_and_alpha_one_is_text_only(tmp_path: Path) -> None:
    from gmem.gnn.embed import embed_namespace

    config = small_config(gnn_alpha=0.5)
    store = EmbeddedStore(tmp_path / "m.db")
    memory = filled(store, config)
    model, _ = embed_namespace(store, "default", config, memory.embedder.name)
    memory.structure.attach(model)
    vec = memory.embedder.embed(["put a hot cup in the drawer"])[0]
    neighbours = [h.id for h in store.vector_search(NodeKind.QUERY, vec, 5, "default")]
    z = model.encode_task(vec, neighbours)
    assert z.shape == (config.gnn_dim,) and np.isfinite(z).all()
    assert abs(float(np.linalg.norm(z)) - 1.0) < 1e-4
    # The folded numpy path is the encoder's own arithmetic on the task's subgraph.
    assert np.allclose(z, model.encode_task_subgraph(vec, neighbours), atol=1e-5)
    assert np.allclose(model.encode_task(vec, []), model.encode_task_subgraph(vec, []), atol=1e-5)
    # Hybrid ranking differs from text-only for some task; alpha = 1 gives text-only exactly.
    text_cfg = config.model_copy(update={"gnn_alpha": 1.0})
    emb = memory.embedder
    text_only = Memory(store, embedder=emb, llm=HeuristicLLM(emb, text_cfg), config=text_cfg)
    reference_cfg = config.model_copy(update={"gnn_alpha": 1.0})
    plain = Memory(store, embedder=emb, llm=HeuristicLLM(emb, reference_cfg), config=reference_cfg)
    plain.structure = None  # type: ignore[assignment]
    plain._retriever.structure = None
    tasks = ["put a hot cup in the drawer", "clean the bowl and shelve it", "look at a pen"]
    for task in tasks:
        a, b = text_only.recall(task), plain.recall(task)
        assert [(q.id, q.similarity, q.relevance, q.kept) for q in a.queries] == [
            (q.id, q.similarity, q.relevance, q.kept) for q in b.queries
        ]
    hybrid = [[q.id for q in memory.recall(t).queries] for t in tasks]
    assert hybrid != [[q.id for q in text_only.recall(t).queries] for t in tasks]


@pytest.mark.parametrize("encoder", ["hetero-sage", "mlp"])
def test_save_load_reproduces_embeddings(tmp_path: Path, encoder: str) -> None:
    from gmem.gnn import model_dir
    from gmem.gnn.embed import embed_namespace
    from gmem.gnn.runtime import StructuralModel

    config = small_config(gnn_alpha=0.5, gnn_encoder=encoder)
    store = EmbeddedStore(tmp_path / "m.db")
    memory = filled(store, config)
    model, _ = embed_namespace(store, "default", config, memory.embedder.name)
    path = memory.structure.attach(model)
    assert path is not None and path.parent == model_dir(store, config)
    loaded = StructuralModel.load(path, config, memory.embedder.name, memory.embedder.dim)
    vec = memory.embedder.embed(["warm up a plate for the shelf"])[0]
    ids = list(model.query_rows)[:5]
    assert np.allclose(model.encode_task(vec, ids), loaded.encode_task(vec, ids), atol=1e-6)


def test_incremental_refresh_embeds_new_tasks() -> None:
    from gmem.gnn.embed import embed_namespace, refresh_tasks

    config = small_config(gnn_alpha=0.5)
    store = EmbeddedStore(":memory:")
    memory = filled(store, config)
    model, _ = embed_namespace(store, "default", config, memory.embedder.name)
    # Refreshing a stored task with unchanged neighbours reproduces its full-graph vector.
    some = list(model.query_rows)[3]
    before = store.get_node(some, with_vectors=True)
    assert before is not None and before.graph_embedding is not None
    refresh_tasks(store, model, [some], config)
    after = store.get_node(some, with_vectors=True)
    assert after is not None and after.graph_embedding is not None
    assert np.allclose(before.graph_embedding, after.graph_embedding, atol=1e-5)
    memory.structure.attach(model, save=False)
    memory.config = config.model_copy(update={"gnn_refresh_every": 1})
    memory.structure.config = memory.config
    report = memory.ingest(_trajectory("put a hot egg in the drawer", HEAT, "egg", "drawer", True))
    node = store.get_node(report.query_id, with_vectors=True)
    assert node is not None and node.graph_embedding is not None
    assert node.metadata["gnn_model"] == model.version


def test_missing_or_stale_model_falls_back_to_text(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from gmem.gnn.embed import embed_namespace

    config = small_config(gnn_alpha=0.5)
    store = EmbeddedStore(tmp_path / "m.db")
    memory = filled(store, config)
    with caplog.at_level(logging.WARNING, logger="gmem.gnn"):
        recall = memory.recall("put a hot cup in the drawer")
    assert recall.queries
    assert "text-only" in caplog.text and "gmem embed" in caplog.text
    model, _ = embed_namespace(store, "default", config, memory.embedder.name)
    memory.structure.attach(model)
    # Another shape of encoder in the configuration: the saved one is stale.
    other = config.model_copy(update={"gnn_dim": 8})
    emb = memory.embedder
    fresh = Memory(store, embedder=emb, llm=HeuristicLLM(emb, other), config=other)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="gmem.gnn"):
        assert fresh.recall("put a hot cup in the drawer").queries
    assert "gnn_dim" in caplog.text
    # A corrupt file is stale too, not a crash.
    path = next((tmp_path / "m.db.gnn").glob("*.pt"))
    path.write_bytes(b"not a model")
    broken = Memory(store, embedder=emb, llm=HeuristicLLM(emb, config), config=config)
    assert broken.recall("put a hot cup in the drawer").queries
    assert broken.structure.reason["default"].startswith("cannot read")


def test_cli_embed_then_stats_reports_current(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from gmem.cli import app

    db = tmp_path / "m.db"
    jsonl = tmp_path / "c.jsonl"
    jsonl.write_text("\n".join(json.dumps(t) for t in corpus()) + "\n")
    env = {"GMEM_STORE": None, "GMEM_EMBEDDER": "hashing", "GMEM_LLM_BASE_URL": None}
    runner = CliRunner()
    args = ["--store", str(db), "--embedder", "hashing"]
    assert runner.invoke(app, [*args, "ingest", str(jsonl)], env=env).exit_code == 0
    before = runner.invoke(app, [*args, "stats", "--json"], env=env)
    assert json.loads(before.stdout)["gnn"][0]["state"] == "none"
    done = runner.invoke(
        app, [*args, "embed", "--epochs", "3", "--device", "cpu", "--json"], env=env
    )
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)["namespaces"][0]
    assert report["epochs"] == 3 and report["device"] == "cpu"
    after = runner.invoke(app, [*args, "stats", "--json"], env=env)
    status = json.loads(after.stdout)["gnn"][0]
    assert status["state"] == "current" and status["version"] == report["version"]
    bad = runner.invoke(app, [*args, "embed", "--device", "tpu"], env=env)
    assert bad.exit_code == 2 and "unknown device" in bad.output


def test_default_config_without_a_model_is_quietly_text_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Nobody asked for structure and nobody trained it: an INFO line, not a warning."""
    config = small_config()
    memory = filled(EmbeddedStore(":memory:"), config)
    default = MemoryConfig()
    emb = memory.embedder
    plain = Memory(memory.store, embedder=emb, llm=HeuristicLLM(emb, default), config=default)
    with caplog.at_level(logging.INFO, logger="gmem.gnn"):
        assert plain.recall("put a hot cup in the drawer").queries
    if default.gnn_alpha < 1:
        assert [r.levelno for r in caplog.records] == [logging.INFO]
        assert "text-only" in caplog.text
    else:
        assert not caplog.records
