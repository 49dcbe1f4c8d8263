"""What gmem accepts from its callers, checked once at the public boundary.

``Task.record``, ``Memory.task``/``recall``/``ingest`` and the embedder's output pass
through these checks before any LLM call or store write, so a bad value fails there with a
:mod:`gmem.errors` exception and leaves the store unchanged, instead of surfacing later as
a raw pydantic or driver error after the attempt's LLM calls were spent.

Unicode policy (the same on every backend): text must be encodable as UTF-8. A lone
surrogate (U+D800..U+DFFF, which Python strings can hold but no UTF-8 file or Neo4j string
can) is rejected with :class:`UserInputError`; gmem never rewrites text silently. NUL and
other control characters are accepted in free text (they are data) but not in names.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from gmem.embedding.protocol import WrappedEmbedder
from gmem.errors import EmbedderOutputError, UserInputError
from graph_store.model import MAX_NAME_CHARS

if TYPE_CHECKING:
    from gmem.embedding import TextEmbedder

FloatMatrix = npt.NDArray[np.float32]
#: Unicode's control characters (category Cc): a fixed range that the standard promises
#: never to change, searched in C instead of one category lookup per character.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def _utf8(value: str, what: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise UserInputError(
            f"{what} holds a lone surrogate at position {exc.start}; pass valid Unicode text"
        ) from None


def check_text(value: object, what: str, max_chars: int) -> str:
    """A free-text field: a ``str`` of valid Unicode within ``max_chars``."""
    if not isinstance(value, str):
        raise UserInputError(f"{what} must be a string, got {type(value).__name__}")
    if len(value) > max_chars:
        raise UserInputError(
            f"{what} is {len(value)} characters long; the limit is {max_chars} "
            "(raise GMEM_MAX_TEXT_CHARS)"
        )
    _utf8(value, what)
    return value


def check_optional_text(value: object, what: str, max_chars: int) -> str | None:
    return None if value is None else check_text(value, what, max_chars)


def check_name(value: object, what: str) -> str:
    """An agent or role name: non-empty, at most ``MAX_NAME_CHARS``, no control characters."""
    if not isinstance(value, str) or not value.strip():
        raise UserInputError(f"{what} must be a non-empty string")
    if len(value) > MAX_NAME_CHARS:
        raise UserInputError(f"{what} is longer than {MAX_NAME_CHARS} characters")
    if _CONTROL.search(value):
        raise UserInputError(f"{what} must not contain control characters")
    _utf8(value, what)
    return value


def check_reward(value: object) -> float | None:
    """A reward is a finite number or ``None`` (a bool is not a reward)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UserInputError(f"reward must be a number or None, got {type(value).__name__}")
    reward = float(value)
    if not math.isfinite(reward):
        raise UserInputError("reward must be a finite number, not NaN or infinity")
    return reward


def check_json(value: object, what: str, max_depth: int, max_chars: int) -> Any:
    """A JSON document made of plain values, nested at most ``max_depth`` deep.

    Returns a copy made of dicts, lists and scalars, so the caller mutating its object
    later changes nothing recorded. The walk is iterative: a 100,000-deep input costs a
    loop, never a ``RecursionError``.
    """
    root: list[Any] = [None]
    # (value, container to write into, key or index, depth)
    stack: list[tuple[object, Any, Any, int]] = [(value, root, 0, 1)]
    while stack:
        item, parent, slot, depth = stack.pop()
        if depth > max_depth:
            raise UserInputError(f"{what} is nested deeper than {max_depth} levels")
        if item is None or isinstance(item, bool):
            parent[slot] = item
        elif isinstance(item, int):
            parent[slot] = int(item)
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise UserInputError(f"{what} holds NaN or infinity, which JSON cannot store")
            parent[slot] = float(item)
        elif isinstance(item, str):
            parent[slot] = check_text(item, f"a text in {what}", max_chars)
        elif isinstance(item, Mapping):
            copy: dict[str, Any] = {}
            parent[slot] = copy
            for key, child in item.items():
                if not isinstance(key, str):
                    raise UserInputError(f"{what} has a non-string key {key!r}; JSON keys are text")
                check_text(key, f"a key in {what}", max_chars)
                copy[key] = None
                stack.append((child, copy, key, depth + 1))
        elif isinstance(item, list | tuple):
            items: list[Any] = [None] * len(item)
            parent[slot] = items
            stack.extend((child, items, i, depth + 1) for i, child in enumerate(item))
        else:
            raise UserInputError(
                f"{what} holds a {type(item).__name__}, which is not JSON; pass dicts, lists, "
                "strings, numbers, booleans or None"
            )
    return root[0]


def check_metadata(value: object, what: str, max_depth: int, max_chars: int) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise UserInputError(f"{what} must be a mapping, got {type(value).__name__}")
    checked: dict[str, Any] = check_json(value, what, max_depth, max_chars)
    return checked


class CheckedEmbedder(WrappedEmbedder):
    """An embedder whose every output is checked before the engine uses it.

    A custom embedder that returns NaN, infinities, a flat vector, the wrong number of
    rows or a dimension other than the one it declares would otherwise fail deep inside
    the store (or, worse, be stored); here it fails at once with
    :class:`EmbedderOutputError`, before anything is written.
    """

    def _check(self, texts: Sequence[str], out: object) -> FloatMatrix:
        label = f"embedder {self.inner.name!r}"
        try:
            matrix = np.asarray(out, dtype=np.float32)
        except (TypeError, ValueError):
            raise EmbedderOutputError(f"{label} returned something that is not a matrix") from None
        if matrix.ndim != 2 or matrix.shape[0] != len(texts):
            raise EmbedderOutputError(
                f"{label} returned shape {matrix.shape} for {len(texts)} texts; it must "
                "return one row per text"
            )
        if len(texts) and (matrix.shape[1] == 0 or matrix.shape[1] != self.inner.dim):
            raise EmbedderOutputError(
                f"{label} returned {matrix.shape[1]}-dimensional rows but declares dim "
                f"{self.inner.dim}"
            )
        if not np.all(np.isfinite(matrix)):
            raise EmbedderOutputError(f"{label} returned NaN or infinity; fix the embedder")
        return np.ascontiguousarray(matrix, dtype=np.float32)

    def embed(self, texts: Sequence[str]) -> FloatMatrix:
        return self._check(texts, self.inner.embed(texts))

    def __getattr__(self, name: str) -> Any:  # the wrapped embedder's other members
        return getattr(self.inner, name)


def checked_embedder(embedder: TextEmbedder) -> TextEmbedder:
    return embedder if isinstance(embedder, CheckedEmbedder) else CheckedEmbedder(embedder)
