"""Vectors from any OpenAI-compatible ``/v1/embeddings`` endpoint."""

from __future__ import annotations

import os
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from gmem.embedding.protocol import Embedder, FloatMatrix, one_line
from gmem.errors import ConfigError, EmbedderUnavailableError, EmbeddingDimensionError


class OpenAIEmbedder(Embedder):
    """Any OpenAI-compatible ``/v1/embeddings`` endpoint (OpenAI, vLLM, Ollama, TEI, ...).

    Arguments win over ``GMEM_EMBED_MODEL``, ``GMEM_EMBED_BASE_URL`` and
    ``GMEM_EMBED_API_KEY`` (then ``OPENAI_API_KEY``). With a base URL and no key a
    placeholder key is sent, since local servers usually ignore it. The dimension is
    checked against ``dim`` when given (or known, for OpenAI's own models) and otherwise
    learned from the first response; reading ``dim`` before any call costs one short
    request, and so does ``isinstance(e, TextEmbedder)`` on Python 3.11, which reads every
    protocol member. Empty texts are sent as a single space because OpenAI rejects them.
    """

    DEFAULT_MODEL = "text-embedding-3-small"
    # Only trusted without a base URL: a compatible server may reuse a name for another model.
    OPENAI_DIMS: ClassVar[dict[str, int]] = {
        "text-embedding-3-small": 1536,
        "text-embedding-3-large": 3072,
        "text-embedding-ada-002": 1536,
    }

    def __init__(
        self,
        model: str | None = None,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        dim: int | None = None,
        batch_size: int = 128,
        timeout_s: float = 60.0,
        max_retries: int = 2,
    ) -> None:
        import openai

        self.model = model or os.environ.get("GMEM_EMBED_MODEL") or self.DEFAULT_MODEL
        self.base_url = base_url or os.environ.get("GMEM_EMBED_BASE_URL") or None
        key = api_key or os.environ.get("GMEM_EMBED_API_KEY") or os.environ.get("OPENAI_API_KEY")
        if not key:
            if self.base_url is None:
                raise ConfigError(
                    "OpenAIEmbedder needs an API key: set GMEM_EMBED_API_KEY or OPENAI_API_KEY,"
                    " or GMEM_EMBED_BASE_URL for a local server"
                )
            key = "unused"
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        if dim is not None and dim < 1:
            raise ConfigError(f"dim must be positive, got {dim}")
        self.batch_size = batch_size
        if dim is None and self.base_url is None:
            dim = self.OPENAI_DIMS.get(self.model)
        self._dim = dim
        self.name = f"openai:{self.model}"
        self._client = openai.OpenAI(
            api_key=key, base_url=self.base_url, timeout=timeout_s, max_retries=max_retries
        )

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._request(["dimension probe"])
        assert self._dim is not None
        return self._dim

    def _encode(self, texts: list[str]) -> NDArray[Any]:
        chunks = [
            self._request(texts[i : i + self.batch_size])
            for i in range(0, len(texts), self.batch_size)
        ]
        return np.concatenate(chunks, axis=0)

    def _request(self, texts: list[str]) -> FloatMatrix:
        import openai

        where = self.base_url or "the OpenAI API"
        try:
            response = self._client.embeddings.create(
                input=[t if t.strip() else " " for t in texts],
                model=self.model,
                encoding_format="float",
            )
        except openai.APIStatusError as exc:
            raise EmbedderUnavailableError(
                f"embedding endpoint {where} answered HTTP {exc.status_code} for model "
                f"{self.model!r}: {one_line(exc.message)}; check GMEM_EMBED_BASE_URL, "
                "GMEM_EMBED_MODEL and the API key"
            ) from exc
        except openai.APIConnectionError as exc:
            raise EmbedderUnavailableError(
                f"cannot reach embedding endpoint {where}: {one_line(str(exc))}; is the "
                "server running and GMEM_EMBED_BASE_URL right?"
            ) from exc
        data = sorted(response.data, key=lambda d: d.index)
        if len(data) != len(texts):
            raise EmbedderUnavailableError(
                f"embedding endpoint {where} returned {len(data)} vectors for {len(texts)} "
                "texts; it is not OpenAI-compatible"
            )
        vectors = np.asarray([d.embedding for d in data], dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] == 0:
            raise EmbedderUnavailableError(
                f"embedding endpoint {where} returned ragged or empty vectors for model "
                f"{self.model!r}"
            )
        if self._dim is None:
            self._dim = int(vectors.shape[1])
        elif vectors.shape[1] != self._dim:
            raise EmbeddingDimensionError(
                f"model {self.model!r} returned {vectors.shape[1]}-dimensional vectors, "
                f"expected {self._dim}; pass the right dim or another model"
            )
        return vectors
