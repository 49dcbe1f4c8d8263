"""Small matrix work runs on one BLAS thread, and the thread count comes back after it.

OpenBLAS's idle worker spins after a shared product until the next call, so one
recall's searches kept a second core busy between recalls; :mod:`graph_store.blas`
runs a search or a short embedding on the calling thread alone.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from graph_store import EmbeddedStore, NodeKind, QueryNode, ann
from graph_store.blas import _blas_libraries, _set, one_blas_thread
from graph_store.embedded.search import Search
from graph_store.model import query_id_for
from graph_store.ops import VectorSearch
from graph_store.vectors import VectorIndex

DIM = 16


def _threads() -> list[int]:
    return [lib.get_num_threads() for lib in _blas_libraries()]


@pytest.fixture
def two_threads() -> Iterator[None]:
    """Every BLAS library on two threads (also on a one-core runner), as it was after."""
    before = _threads()
    assert before, "numpy's BLAS was not found by threadpoolctl"
    for lib in _blas_libraries():
        _set(lib, 2)
    assert _threads() == [2] * len(before)
    yield
    for lib, count in zip(_blas_libraries(), before, strict=True):
        _set(lib, count)


@pytest.mark.usefixtures("two_threads")
@pytest.mark.parametrize("first_in", ["this thread", "another thread"])
@pytest.mark.parametrize("first_out", ["this thread", "another thread"])
def test_the_count_is_restored_once_overlapping_blocks_of_two_threads_end(
    first_in: str, first_out: str
) -> None:
    """Whichever thread enters or leaves first (only the thread that set the count
    restores it)."""
    entered, leave, left = threading.Event(), threading.Event(), threading.Event()

    def other() -> None:
        with one_blas_thread():
            entered.set()
            leave.wait(10)
        left.set()

    worker = threading.Thread(target=other)
    if first_in == "another thread":
        worker.start()
        assert entered.wait(10)
    with one_blas_thread():
        if first_in == "this thread":
            assert set(_threads()) == {1}
            with one_blas_thread():
                pass
            assert set(_threads()) == {1}  # a nested block does not restore it early
            worker.start()
            assert entered.wait(10)
        if first_out == "another thread":
            leave.set()
            assert left.wait(10)
    leave.set()
    worker.join(10)
    assert not worker.is_alive()
    assert set(_threads()) == {2}


@pytest.mark.usefixtures("two_threads")
def test_a_block_in_a_worker_thread_runs_on_one_thread_after_the_main_thread_set_one() -> None:
    """A recall in a worker thread (``arecall``, a server's handler) once the main
    thread has set the count: threadpoolctl lets only the thread that last set an
    OpenBLAS count set it, unless that thread gave control up."""
    with one_blas_thread():
        pass  # the main thread sets and restores the count
    seen: list[list[int]] = []

    def other() -> None:
        with one_blas_thread():
            seen.append(_threads())
        seen.append(_threads())

    worker = threading.Thread(target=other)
    worker.start()
    worker.join(10)
    assert seen == [[1] * len(_threads()), [2] * len(_threads())]


def _store(path: Path, n: int, ann_min_rows: int | None) -> EmbeddedStore:
    store = EmbeddedStore(path, ann_min_rows=ann_min_rows)
    rng = np.random.default_rng(7)
    store.put_nodes(
        [
            QueryNode(
                id=query_id_for("default", f"task {i}"),
                text=f"task {i}",
                namespace="default",
                embedding=rng.standard_normal(DIM).astype(np.float32),
            )
            for i in range(n)
        ]
    )
    return store


def _recorded(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> list[list[int]]:
    """The BLAS thread counts seen inside each call of ``owner.name``."""
    seen: list[list[int]] = []
    real = getattr(owner, name)

    def recording(*args: Any, **kwargs: Any) -> Any:
        seen.append(_threads())
        return real(*args, **kwargs)

    static = isinstance(owner.__dict__[name], staticmethod)
    monkeypatch.setattr(owner, name, staticmethod(recording) if static else recording)
    return seen


@pytest.mark.usefixtures("two_threads")
@pytest.mark.parametrize(
    ("rows", "ann_min_rows", "scorer"),
    [
        pytest.param(50, None, (VectorIndex, "search"), id="exact"),
        pytest.param(300, 100, (Search, "_scored"), id="approximate", marks=pytest.mark.ann),
    ],
)
def test_a_vector_search_runs_on_one_blas_thread(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    rows: int,
    ann_min_rows: int | None,
    scorer: tuple[type, str],
) -> None:
    if ann_min_rows is not None:
        assert ann.available(), "the ann extra (usearch) is not installed"
    store = _store(tmp_path / "search.db", rows, ann_min_rows=ann_min_rows)
    seen = _recorded(monkeypatch, *scorer)
    query = np.ones(DIM, dtype=np.float32)
    (hits,) = store.batch([VectorSearch(NodeKind.QUERY, query, 5, "default")])
    assert len(hits) == 5
    assert seen and all(set(counts) == {1} for counts in seen)
    assert set(_threads()) == {2}
    store.close()
