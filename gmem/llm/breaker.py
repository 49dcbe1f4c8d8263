"""A circuit breaker for the chat endpoint.

An endpoint that is down, hung or rate-limited fails every operation after its full
deadline. Once ``failures`` operations in a row have failed on the endpoint (not on the
model's answer: an endpoint that answers badly is alive), the breaker opens and calls
fail at once for ``cooldown_s``; the first call after that is a trial, and one more
failure opens it again at once, while a success closes it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

_LOG = logging.getLogger("gmem.llm")


class CircuitBreaker:
    def __init__(
        self,
        failures: int,
        cooldown_s: float,
        *,
        what: str = "the LLM endpoint",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failures = failures
        self.cooldown_s = cooldown_s
        self.what = what
        self.clock = clock
        self._lock = threading.Lock()
        self._consecutive = 0
        self._open_until: float | None = None
        self.last_problem = ""

    @property
    def is_open(self) -> bool:
        """Whether calls are refused right now."""
        with self._lock:
            return self._open_until is not None and self.clock() < self._open_until

    @property
    def consecutive_failures(self) -> int:
        with self._lock:
            return self._consecutive

    def wait_left_s(self) -> float:
        """Seconds until the next trial call is let through (0 when closed)."""
        with self._lock:
            if self._open_until is None:
                return 0.0
            return max(0.0, self._open_until - self.clock())

    def succeeded(self) -> None:
        with self._lock:
            reopened = self._open_until is not None
            self._consecutive = 0
            self._open_until = None
        if reopened:
            _LOG.info("%s answers again; circuit breaker closed", self.what)

    def failed(self, problem: str) -> None:
        with self._lock:
            self._consecutive += 1
            self.last_problem = problem
            if self._consecutive < self.failures:
                return
            was_open = self._open_until is not None
            self._open_until = self.clock() + self.cooldown_s
        if not was_open:  # the warning is the degraded reasoner's to give, once
            _LOG.info(
                "%s failed %d operations in a row (%s); not calling it for %g s",
                self.what,
                self.failures,
                problem,
                self.cooldown_s,
            )
