"""Structural (GNN) embeddings of the memory graph, behind the ``gnn`` extra.

This module imports no torch: :class:`StructureIndex` is what the rest of gmem holds,
and it loads the torch side (``gmem.gnn.runtime``) only when retrieval asks for a
structural embedding, i.e. when ``gnn_alpha < 1``. Without torch, without a trained model,
or with one that no longer fits the configuration, retrieval is text-only and a warning
says why, once per namespace; nothing raises.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from gmem.config import MemoryConfig
from graph_store.base import GraphStore
from graph_store.model import NodeKind
from graph_store.ops import ListNodes

if TYPE_CHECKING:
    from gmem.gnn.embed import EmbedReport
    from gmem.gnn.runtime import StructuralModel

#: Node metadata key holding the version of the model that wrote its graph_embedding.
VERSION_KEY = "gnn_model"

log = logging.getLogger("gmem.gnn")
FloatVector = npt.NDArray[np.float32]


class TaskEncoder(Protocol):
    """What retrieval needs: a structural embedding for a task that has no edges yet."""

    version: str

    def encode_task(self, vector: FloatVector, neighbours: Sequence[str]) -> FloatVector: ...


def torch_available() -> bool:
    return (
        importlib.util.find_spec("torch") is not None
        and importlib.util.find_spec("torch_geometric") is not None
    )


def model_dir(store: GraphStore, config: MemoryConfig) -> Path | None:
    """Where a store's encoders are saved: the configured path, else beside the .db file."""
    if config.gnn_model_path:
        return Path(config.gnn_model_path).expanduser()
    path = getattr(store, "path", None)
    if isinstance(path, str) and path != ":memory:" and store.url.startswith("sqlite"):
        return Path(path + ".gnn")
    return None


def artifact_stem(directory: Path, namespace: str) -> Path:
    """The artifact of a namespace without suffix: ``.pt`` weights, ``.json`` summary."""
    return directory / hashlib.sha256(namespace.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class EmbeddingStatus:
    """Whether a namespace's structural embeddings are current, for `gmem stats`."""

    namespace: str
    state: str  # "current", "stale", "none" or "not saved"
    version: str | None
    embedded: int
    tasks: int
    detail: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class StructureIndex:
    """One memory's view of its trained encoders, one per namespace, loaded on demand."""

    def __init__(self, store: GraphStore, config: MemoryConfig, embedder: str, text_dim: int):
        self.store = store
        self.config = config
        self.embedder = embedder
        self.text_dim = text_dim
        self._models: dict[str, StructuralModel | None] = {}
        self._pending: dict[str, list[str]] = {}
        self._since_training: dict[str, int] = {}
        self.reason: dict[str, str] = {}

    @property
    def wanted(self) -> bool:
        return self.config.gnn_alpha < 1.0

    def _text_only(self, namespace: str, why: str) -> None:
        self._models[namespace] = None
        self.reason[namespace] = why
        # A warning when the user asked for structure; by default, a memory nobody has
        # trained an encoder for is simply text-only, and says so quietly.
        asked = "gnn_alpha" in self.config.model_fields_set
        log.log(
            logging.WARNING if asked else logging.INFO,
            "retrieval in namespace %r is text-only: %s",
            namespace,
            why,
        )

    def encoder(self, namespace: str) -> TaskEncoder | None:
        """The namespace's encoder, or ``None`` (text-only, reason logged once)."""
        if not self.wanted:
            return None
        if namespace in self._models:
            return self._models[namespace]
        if not torch_available():
            self._text_only(
                namespace,
                "torch and torch-geometric are not installed (pip install 'gmem-agents[gnn]')",
            )
            return None
        directory = model_dir(self.store, self.config)
        if directory is None:
            self._text_only(
                namespace,
                "no trained model in this process and no "
                "gnn_model_path to load one from; run `gmem embed`",
            )
            return None
        path = artifact_stem(directory, namespace).with_suffix(".pt")
        if not path.exists():  # checked before torch is imported: that takes seconds
            self._text_only(namespace, f"no trained model at {path}; run `gmem embed`")
            return None
        from gmem.gnn.runtime import StaleModelError, StructuralModel

        try:
            model = StructuralModel.load(path, self.config, self.embedder, self.text_dim)
        except StaleModelError as exc:
            self._text_only(namespace, str(exc))
            return None
        self._models[namespace] = model
        self.reason.pop(namespace, None)
        return model

    def attach(self, model: StructuralModel, save: bool = True) -> Path | None:
        """Use a freshly trained model now, and save it where this store keeps models."""
        self._models[model.namespace] = model
        self.reason.pop(model.namespace, None)
        self._since_training[model.namespace] = 0
        self._pending[model.namespace] = []
        directory = model_dir(self.store, self.config)
        if not save or directory is None:
            return None
        stem = artifact_stem(directory, model.namespace)
        model.save(stem.with_suffix(".pt"))
        summary = {"version": model.version, "encoder": model.kind, "namespace": model.namespace}
        stem.with_suffix(".json").write_text(json.dumps(summary))
        return stem.with_suffix(".pt")

    def status(self, namespace: str) -> EmbeddingStatus:
        """Compare the saved model's version with the one each task was embedded by."""
        (nodes,) = self.store.batch([ListNodes(NodeKind.QUERY, namespace)])
        versions = [n.metadata.get(VERSION_KEY) for n in nodes]
        loaded = self._models.get(namespace)
        version = loaded.version if loaded is not None else None
        directory = model_dir(self.store, self.config)
        if version is None and directory is not None:
            summary = artifact_stem(directory, namespace).with_suffix(".json")
            if summary.exists():
                version = json.loads(summary.read_text()).get("version")
        embedded = sum(v == version for v in versions) if version else 0
        if version is None:
            state = "none" if directory is not None else "not saved"
            detail = "no trained model; run `gmem embed`"
        elif embedded == len(versions):
            state, detail = "current", f"all {embedded} tasks embedded by {version}"
        else:
            state = "stale"
            missing = len(versions) - embedded
            detail = (
                f"{missing} of {len(versions)} tasks not embedded by {version}; run `gmem embed`"
            )
        return EmbeddingStatus(namespace, state, version, embedded, len(versions), detail)

    def train(
        self,
        namespace: str,
        epochs: int | None = None,
        device: str | None = None,
        progress: Callable[[int, int, float], None] | None = None,
    ) -> EmbedReport:
        """Retrain the namespace's encoder, write every embedding, save and use the model."""
        from gmem.gnn.embed import embed_namespace

        model, report = embed_namespace(
            self.store, namespace, self.config, self.embedder, epochs, device, progress
        )
        self.attach(model)
        return report

    def task_finished(self, namespace: str, query_id: str) -> None:
        """Cadence: refresh new tasks every ``gnn_refresh_every``, retrain every
        ``gnn_retrain_every`` (both counted in new tasks since the last training)."""
        cfg = self.config
        if not self.wanted or (not cfg.gnn_refresh_every and not cfg.gnn_retrain_every):
            return
        model = self.encoder(namespace)
        if model is None:
            return
        from gmem.gnn.embed import embed_namespace, refresh_tasks

        pending = self._pending.setdefault(namespace, [])
        pending.append(query_id)
        self._since_training[namespace] = self._since_training.get(namespace, 0) + 1
        if cfg.gnn_retrain_every and self._since_training[namespace] >= cfg.gnn_retrain_every:
            trained, _ = embed_namespace(self.store, namespace, cfg, self.embedder)
            self.attach(trained)
            return
        if cfg.gnn_refresh_every and len(pending) >= cfg.gnn_refresh_every:
            assert not isinstance(model, type(None))
            refresh_tasks(self.store, model, pending, cfg)  # type: ignore[arg-type]
            self._pending[namespace] = []
