"""A scoped cap on torch's CPU threads.

Small graphs spend their time in thread hand-offs, not arithmetic: on a busy machine a
tiny message-passing step runs two orders of magnitude slower on two threads than on one.
torch's setting is process-wide, so it is set around gmem's own work and restored after.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def cpu_threads(n: int) -> Iterator[None]:
    """Run the block with at most ``n`` torch CPU threads (0: leave torch's setting)."""
    if n <= 0:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(min(n, before))
    try:
        yield
    finally:
        torch.set_num_threads(before)
