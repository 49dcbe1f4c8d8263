"""The chat endpoint's address, split into what may be shown and what must not.

A base URL can carry credentials: ``https://user:token@proxy/v1`` or ``...?key=...``.
They are taken out of the URL before it reaches the HTTP client, so the client's request
log, ``repr(OpenAIChat)`` and every :class:`~gmem.errors.LLMError` show the address
only. The userinfo travels as the Basic ``Authorization`` header the HTTP client would
have built from it, the query as default query parameters (which the client would
otherwise have glued in front of the request path).

Everything that is secret is also registered with a log filter on the HTTP and
``openai`` loggers, and text relayed from the server (an error body) passes through
:func:`redact`, because an echoing proxy hands back the very header it was sent. The
masking rules themselves are :mod:`graph_store.redact`'s, shared with the stores.
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from graph_store.redact import MASK
from graph_store.redact import redact as redact_text

# Secrets shorter than this are not searched for in text: replacing every "ab" in a log
# line would destroy it and protect nothing (graph_store.redact ignores them too).
_MIN_SECRET_CHARS = 4
# Loggers that see request URLs or headers while gmem talks to an endpoint.
_HTTP_LOGGERS = (
    "httpx",
    "httpx2",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore2",
    "httpcore2.connection",
    "httpcore2.http11",
    "openai",
    "openai._base_client",
    "gmem.llm",
)


@dataclass(frozen=True)
class Endpoint:
    """A parsed base URL. ``url`` is what the HTTP client gets (``None``: the client's
    own default), ``shown`` what people may see."""

    url: str | None
    shown: str
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()

    def redact(self, text: str) -> str:
        return redact(text, self.secrets)


def parse_endpoint(base_url: str | None, api_key: str | None = None) -> Endpoint:
    """Split ``base_url`` into a credential-free URL, headers, query and secrets."""
    secrets: list[str] = [api_key] if api_key else []
    if not base_url:
        return Endpoint(url=None, shown="https://api.openai.com/v1", secrets=_usable(secrets))
    parts = urlsplit(base_url)
    headers: dict[str, str] = {}
    host = parts.netloc
    if "@" in parts.netloc:
        userinfo, host = parts.netloc.rsplit("@", 1)
        user, _, password = userinfo.partition(":")
        token = base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
        secrets += [token, password, unquote(password)]
        if not password:  # a token passed as the user name
            secrets += [user, unquote(user)]
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    secrets += list(query.values())
    url = urlunsplit((parts.scheme, host, parts.path, "", ""))
    shown_query = "&".join(f"{key}={MASK}" for key in query)
    shown_host = f"{MASK}@{host}" if headers else host
    shown = urlunsplit((parts.scheme, shown_host, parts.path, shown_query, ""))
    return Endpoint(url=url, shown=shown, query=query, headers=headers, secrets=_usable(secrets))


def _usable(secrets: Iterable[str]) -> tuple[str, ...]:
    # Longest first, so a secret containing another is replaced whole.
    unique = {s for s in secrets if s and len(s) >= _MIN_SECRET_CHARS}
    return tuple(sorted(unique, key=len, reverse=True))


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with the given secrets and anything that looks like a credential masked
    (:func:`graph_store.redact.redact`, the one set of rules gmem uses)."""
    return redact_text(text, secrets)


class _SecretFilter(logging.Filter):
    """Masks registered secrets in records of the loggers it is attached to."""

    def __init__(self) -> None:
        super().__init__("gmem-secrets")
        self._lock = threading.Lock()
        self._secrets: tuple[str, ...] = ()

    def add(self, secrets: Iterable[str]) -> None:
        with self._lock:
            self._secrets = _usable([*self._secrets, *secrets])

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed record is logging's to report
            return True
        cleaned = redact(message, self._secrets)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_FILTER = _SecretFilter()
_ATTACHED = threading.Event()


def guard_logs(secrets: Iterable[str]) -> None:
    """Mask ``secrets`` in what the HTTP client, ``openai`` and gmem's LLM code log."""
    _FILTER.add(secrets)
    if not _ATTACHED.is_set():
        for name in _HTTP_LOGGERS:
            logger = logging.getLogger(name)
            if _FILTER not in logger.filters:
                logger.addFilter(_FILTER)
        _ATTACHED.set()
