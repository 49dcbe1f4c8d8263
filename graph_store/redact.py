"""Credentials out of every message, repr and log line gmem writes.

A store URL may carry ``user:password@``, an LLM endpoint's error body may echo the bearer
token it was sent, and an exception raised inside a task may quote whatever the caller had
at hand. Everything gmem shows or stores about such things passes through :func:`redact`
first. It lives in the bottom layer so that backends use the same rules as the engine,
the LLM clients and the CLI.

The rules are deliberately blunt: a value that only looks like a credential is hidden as
well, because a redacted word costs a reader little and a leaked password costs its owner
a rotation.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "***"

# scheme://user:password@host -> scheme://user:***@host ; scheme://token@host -> ***@host
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<info>[^/\s@]+)@")
# Authorization header values, whatever scheme they use.
_AUTH_HEADER = re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=\-]{4,}")
# key=value, key: value and "key": "value" for the usual credential names.
_KEY_VALUE = re.compile(
    r"(?i)(?P<key>[\"']?(?<![A-Za-z0-9])(?:api[_\-]?key|apikey|x-api-key|password|passwd|pwd|secret|"
    r"client[_\-]?secret|access[_\-]?token|refresh[_\-]?token|auth[_\-]?token|token|"
    r"authorization)(?![A-Za-z0-9])[\"']?\s*[:=]\s*)(?P<quote>[\"']?)(?P<value>[^\s\"'&,;}]+)"
)
# Provider key shapes that appear without a key name: OpenAI-style sk-..., GitHub, Slack.
_KEY_SHAPES = re.compile(
    r"\b(?:sk|pk|rk)-[A-Za-z0-9_\-]{8,}|\bgh[pousr]_[A-Za-z0-9]{16,}|\bxox[abpr]-[A-Za-z0-9\-]{8,}"
)


def _userinfo(match: re.Match[str]) -> str:
    info = match.group("info")
    user, sep, _ = info.partition(":")
    return f"{match.group('scheme')}{user}:{MASK}@" if sep else f"{match.group('scheme')}{MASK}@"


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with URL passwords, tokens, API keys and the given ``secrets`` masked.

    ``secrets`` are exact values known to be sensitive (a password passed as an option),
    masked wherever they appear; values shorter than four characters are ignored, since
    masking every "a" would make the text unreadable without protecting anything.
    """
    out = str(text)
    for secret in secrets:
        if secret and len(secret) >= 4:
            out = out.replace(secret, MASK)
    out = _USERINFO.sub(_userinfo, out)
    out = _AUTH_HEADER.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", out)
    out = _KEY_VALUE.sub(lambda m: f"{m.group('key')}{m.group('quote')}{MASK}", out)
    return _KEY_SHAPES.sub(MASK, out)


def redact_url(url: str) -> str:
    """A URL fit to show: the password (or a bare token) in its user info masked."""
    return _USERINFO.sub(_userinfo, str(url))


def describe_exception(exc: BaseException, limit: int = 300) -> str:
    """What may be kept about an exception: its type and a redacted, one-line, bounded
    message. The traceback and the raw text never are."""
    message = " ".join(redact(str(exc)).split())
    if len(message) > limit:
        message = message[: limit - 1] + "…"
    name = type(exc).__name__
    return f"{name}: {message}" if message else name


__all__ = ["MASK", "describe_exception", "redact", "redact_url"]
