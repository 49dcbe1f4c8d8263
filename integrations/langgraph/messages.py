"""How a LangChain message reads as a gmem utterance: its words, and its tool calls as an action.

Utterances store plain text, so structured content (content blocks, tool-call arguments)
is flattened here once, the same way for every node, so that similar runs produce similar
traces and the lessons learned from them match.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    RemoveMessage,
    SystemMessage,
    convert_to_messages,
)

#: Ids of the memory messages gmem prepends; they are stripped from what a node returns so
#: the injected memory never lands in the team's own state.
MEMORY_MESSAGE_PREFIX = "gmem-memory-"


def text_of(message: BaseMessage) -> str:
    """The readable words of a message, whatever shape its content has."""
    content = message.content
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and isinstance(block.get("text"), str):
            parts.append(block["text"])
    return "\n".join(p for p in parts if p)


def action_of(message: BaseMessage) -> str | None:
    """Tool calls as one line, ``name(json args)`` joined by ``; ``, or None without calls."""
    if not isinstance(message, AIMessage) or not message.tool_calls:
        return None
    calls = []
    for call in message.tool_calls:
        args = json.dumps(call.get("args", {}), sort_keys=True, ensure_ascii=False, default=str)
        calls.append(f"{call['name']}({args})")
    return "; ".join(calls)


def call_ids_of(message: BaseMessage) -> list[str]:
    if not isinstance(message, AIMessage):
        return []
    return [call_id for c in message.tool_calls if (call_id := c.get("id"))]


def ensure_id(message: BaseMessage) -> str:
    """Give the message an id if it has none, so that the state and the record agree.

    LangGraph's ``add_messages`` reducer would assign one later, but only after the node
    returns; setting it here first keeps the id the record is keyed by.
    """
    if not message.id:
        message.id = str(uuid.uuid4())
    return message.id


def as_message_list(value: Any) -> list[BaseMessage] | None:
    """A node's ``messages`` update as message objects, or None if it is not messages."""
    if value is None:
        return None
    items: Sequence[Any] = value if isinstance(value, list | tuple) else [value]
    try:
        return convert_to_messages(items)
    except (ValueError, TypeError, NotImplementedError):
        return None


def is_memory_message(message: BaseMessage) -> bool:
    return isinstance(message, SystemMessage) and str(message.id or "").startswith(
        MEMORY_MESSAGE_PREFIX
    )


def memory_message(text: str, role: str) -> SystemMessage:
    return SystemMessage(content=text, id=f"{MEMORY_MESSAGE_PREFIX}{role}-{uuid.uuid4().hex}")


def is_recordable(message: BaseMessage) -> bool:
    """Agent speech and tool results are recorded; prompts and removals are not."""
    return not isinstance(message, SystemMessage | RemoveMessage)
