"""Small matrix work on one BLAS thread.

OpenBLAS shares a matrix-vector product of a few thousand rows between its threads, and
its idle worker then spins, waiting for more work, until the next BLAS call or its
timeout: after one recall's searches a second core stayed busy for the whole gap
between recalls. A search or a short embedding is too little work to share, so it runs
on the calling thread alone. On one thread OpenBLAS computes each output the same way,
so results do not change, bit for bit.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@functools.cache
def _blas_libraries() -> tuple[Any, ...]:
    """The BLAS libraries loaded in this process (numpy's at least), looked up once:
    asking threadpoolctl afresh on every call cost more than a small search."""
    from threadpoolctl import ThreadpoolController

    return tuple(ThreadpoolController().select(user_api="blas").lib_controllers)


def _set(lib: Any, count: int) -> None:
    """Set a library's count and give up control of it again: threadpoolctl (3.8 on)
    lets only the thread that last set an OpenBLAS count, without clearing, set it, so a
    recall in a worker thread could not otherwise change what the main thread set."""
    lib.set_num_threads(count)
    release = getattr(lib, "clear_controlling_thread", None)
    if release is not None:
        release()


class _OneThread:
    """The process-wide setting: which thread set the count, and what it was before.

    The thread that set the count restores it, when its outermost block ends; a block
    another thread enters meanwhile runs with whatever count is current (only its speed
    depends on it, never its results).
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.owner: int | None = None
        self.depth = 0
        self.saved: list[tuple[Any, int]] = []

    def enter(self, me: int) -> None:
        with self.lock:
            if self.owner is None:
                self.saved = [(lib, lib.get_num_threads()) for lib in _blas_libraries()]
                for lib, count in self.saved:
                    if count != 1:
                        _set(lib, 1)
                self.owner = me
            if self.owner == me:
                self.depth += 1

    def leave(self, me: int) -> None:
        with self.lock:
            if self.owner != me:
                return
            self.depth -= 1
            if self.depth == 0:
                for lib, count in self.saved:
                    if count != 1:
                        _set(lib, count)
                self.saved = []
                self.owner = None


_setting = _OneThread()


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run the block with every BLAS library on one thread, then restore their counts
    (nested blocks, and blocks of several threads at once, included)."""
    me = threading.get_ident()
    _setting.enter(me)
    try:
        yield
    finally:
        _setting.leave(me)
