"""The three-tier data model that every layer of gmem imports.

Query tier: one :class:`QueryNode` per distinct task (per namespace); repeated attempts at
the same task text update the same node. Interaction tier: the :class:`Utterance` nodes of
each attempt, linked by ``REPLIES_TO`` and ``NEXT`` edges. Insight tier: :class:`Insight`
nodes, linked to the queries that support or contradict them and to each other.

Beside the tiers, :class:`Item` nodes hold an adapter's own key-value records (LangGraph's
long-term store) in the same file or database. The memory engine never reads them: they
are a kind of their own so that no traversal, search or count of the tiers meets them.

The models live in the storage layer because backends persist them; they carry no
algorithm. Vectors are float32 numpy arrays so that hot paths avoid Python lists.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, TypeVar

import numpy as np
import numpy.typing as npt
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    PlainSerializer,
    field_validator,
)

from graph_store.errors import InvalidIdError, InvalidNamespaceError, UserInputError

DEFAULT_NAMESPACE = "default"
_ID_RE = re.compile(r"^[0-9a-f]{32}$")
#: Longest namespace a store accepts; adapters that build namespaces check against it.
MAX_NAMESPACE_LENGTH = 200
#: Longest agent or role name a stored utterance may carry.
MAX_NAME_CHARS = 200


class NodeKind(StrEnum):
    """Node labels; the values are the Neo4j labels people see in the Browser."""

    QUERY = "Query"
    UTTERANCE = "Utterance"
    INSIGHT = "Insight"
    ITEM = "Item"


class EdgeKind(StrEnum):
    """Relationship types between and within tiers (direction in the comment)."""

    HAS_TRACE = "HAS_TRACE"  # Query -> Utterance of one of its attempts
    REPLIES_TO = "REPLIES_TO"  # Utterance -> the utterance it answers
    NEXT = "NEXT"  # Utterance -> the next utterance in time, same attempt
    SUPPORTS = "SUPPORTS"  # Query -> Insight its outcome agrees with
    CONTRADICTS = "CONTRADICTS"  # Query -> Insight its outcome disagrees with
    USED_MEMORY_OF = "USED_MEMORY_OF"  # Query -> Query whose memory it was given
    SIMILAR_TO = "SIMILAR_TO"  # Query -> Query, props: score
    RELATED_TO = "RELATED_TO"  # Insight -> Insight used together, props: query_id


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    UNKNOWN = "unknown"


M = TypeVar("M", bound=BaseModel)


def trusted(cls: type[M], fields: dict[str, Any]) -> M:
    """A model of ``fields``, every field of ``cls`` in its declared order (the order its
    JSON is written in) and each one already valid, set as ``model_construct`` sets them
    minus its per-field pass over aliases and defaults. For values a store read back or
    a bulk writer checked: that pass cost more than the rest of building a few hundred
    thousand utterances and edges."""
    model = cls.__new__(cls)
    object.__setattr__(model, "__dict__", fields)
    object.__setattr__(model, "__pydantic_fields_set__", set(fields))
    object.__setattr__(model, "__pydantic_extra__", None)
    object.__setattr__(model, "__pydantic_private__", None)
    return model


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    """A random id (UUID4 as 32 hex digits)."""
    return uuid.uuid4().hex


def normalize_text(text: str) -> str:
    """Whitespace- and case-folded form of a task text, the basis of its content hash."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def query_id_for(namespace: str, text: str) -> str:
    """Content hash of a task: the same task text in a namespace is always the same query."""
    digest = hashlib.sha256(f"{namespace}\x00{normalize_text(text)}".encode()).hexdigest()
    return digest[:32]


def check_id(value: str) -> str:
    if not isinstance(value, str) or not _ID_RE.match(value):
        raise InvalidIdError(f"invalid id {value!r}: expected 32 lowercase hex digits")
    return value


def check_namespace(value: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidNamespaceError("namespace must be a non-empty string")
    if len(value) > MAX_NAMESPACE_LENGTH:
        raise InvalidNamespaceError(f"namespace is longer than {MAX_NAMESPACE_LENGTH} characters")
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in value):
        raise InvalidNamespaceError(
            "namespace must not contain control characters or lone surrogates"
        )
    return value


def _to_vector(value: Any) -> npt.NDArray[np.float32] | None:
    if value is None:
        return None
    arr = np.asarray(value, dtype=np.float32)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError("a vector must be a non-empty 1-d sequence of floats")
    if not np.all(np.isfinite(arr)):
        raise ValueError("a vector must not contain NaN or infinity")
    return arr


def _same_vector(a: npt.NDArray[np.float32] | None, b: npt.NDArray[np.float32] | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=1e-6, atol=1e-7))


Vector = Annotated[
    npt.NDArray[np.float32],
    BeforeValidator(_to_vector),
    PlainSerializer(lambda v: v.tolist(), return_type=list[float]),
]


class _Node(BaseModel):
    """Fields every node carries: identity, namespace, provenance time and two vectors.

    ``embedding`` is the text embedding; ``graph_embedding`` is the structural (GNN)
    embedding computed later over the graph. Both are optional.
    """

    # ``ser_json_inf_nan``: a node's JSON (what the embedded store keeps) writes a
    # non-finite float as the NaN / Infinity literal, as json.dumps does, not as null.
    model_config = ConfigDict(
        arbitrary_types_allowed=True, extra="forbid", ser_json_inf_nan="constants"
    )
    kind: ClassVar[NodeKind]

    id: str = Field(default_factory=new_id)
    namespace: str = DEFAULT_NAMESPACE
    created_at: datetime = Field(default_factory=utcnow)
    metadata: dict[str, JsonValue] = Field(default_factory=dict)
    embedding: Vector | None = None
    graph_embedding: Vector | None = None

    @field_validator("id")
    @classmethod
    def _valid_id(cls, v: str) -> str:
        return check_id(v)

    @field_validator("namespace")
    @classmethod
    def _valid_namespace(cls, v: str) -> str:
        return check_namespace(v)

    def props(self) -> dict[str, Any]:
        """JSON-safe properties without the vectors (backends store vectors apart)."""
        return self.model_dump(mode="json", exclude={"embedding", "graph_embedding"})

    def __eq__(self, other: object) -> bool:
        # pydantic's field-wise equality cannot compare numpy arrays.
        if not isinstance(other, _Node) or type(other) is not type(self):
            return NotImplemented
        return self.props() == other.props() and all(
            _same_vector(getattr(self, f), getattr(other, f))
            for f in ("embedding", "graph_embedding")
        )

    __hash__ = None  # type: ignore[assignment]


class QueryNode(_Node):
    """One task the team attempted, with the outcome of its latest attempt."""

    kind: ClassVar[NodeKind] = NodeKind.QUERY
    node_kind: Literal["Query"] = "Query"
    text: str
    outcome: Outcome = Outcome.UNKNOWN
    score: float | None = Field(default=None, ge=0.0, le=1.0)
    attempts: int = Field(default=0, ge=0)
    successes: int = Field(default=0, ge=0)
    failures: int = Field(default=0, ge=0)
    attempt_outcomes: list[Outcome] = Field(
        default_factory=list, description="Outcome of each attempt, oldest first."
    )
    updated_at: datetime = Field(default_factory=utcnow)

    @field_validator("text")
    @classmethod
    def _non_empty(cls, v: str) -> str:
        if not v or not v.strip():
            raise UserInputError("task text must not be empty")
        return v.strip()


class Utterance(_Node):
    """One message of one agent during one attempt of a task."""

    kind: ClassVar[NodeKind] = NodeKind.UTTERANCE
    node_kind: Literal["Utterance"] = "Utterance"
    query_id: str
    attempt: int = Field(default=1, ge=1)
    step: int = Field(ge=0)
    agent: str = Field(min_length=1, max_length=MAX_NAME_CHARS)
    role: str = Field(min_length=1, max_length=MAX_NAME_CHARS)
    content: str
    tokens: int = Field(default=0, ge=0)
    action: str | None = None
    observation: str | None = None
    reward: float | None = None
    key_step: bool = False

    @field_validator("query_id")
    @classmethod
    def _valid_query_id(cls, v: str) -> str:
        return check_id(v)


InsightOperation = Literal[
    "add", "edit", "agree", "contradict", "remove", "merge", "reward", "penalize", "retire"
]


class Provenance(BaseModel):
    """One step in an insight's history: which task did what to it, and when."""

    model_config = ConfigDict(extra="forbid")
    operation: InsightOperation
    query_id: str | None = None
    at: datetime = Field(default_factory=utcnow)
    detail: str = ""


RuleKind = Literal["require", "order", "avoid", "note"]
#: Most actions one rule names (``require`` lists up to this many steps).
MAX_RULE_ACTIONS = 3


class RuleEvidence(BaseModel):
    """How many attempts of the procedure showed the rule's pattern when it was learned."""

    model_config = ConfigDict(extra="forbid")
    successes_with: int = Field(default=0, ge=0)
    successes: int = Field(default=0, ge=0)
    failures_with: int = Field(default=0, ge=0)
    failures: int = Field(default=0, ge=0)


class InsightRule(BaseModel):
    """An insight's lesson as data, next to the sentence that states it.

    ``kind``: ``require`` (take every step in ``actions``), ``order`` (``actions[0]``
    before ``actions[1]``), ``avoid`` (do not ``actions[0]``), ``note`` (a lesson with no
    checkable pattern). ``actions`` and ``scope`` are abstracted procedure steps (verbs,
    prepositions, tools and places; the task's own objects as ``<obj>``); ``scope`` is
    the signature of the procedure the rule was learned from, which decides the tasks
    it is checked against and shown to.
    """

    model_config = ConfigDict(extra="forbid")
    kind: RuleKind
    actions: list[str] = Field(default_factory=list, max_length=MAX_RULE_ACTIONS)
    scope: list[str] = Field(default_factory=list)
    evidence: RuleEvidence = Field(default_factory=RuleEvidence)

    @field_validator("actions")
    @classmethod
    def _actions_fit_kind(cls, v: list[str]) -> list[str]:
        if any(not a.strip() for a in v):
            raise UserInputError("a rule's actions must be non-empty steps")
        return v


class Insight(_Node):
    """A short, general lesson, with the queries for and against it.

    ``roles`` empty means the lesson applies to every role. ``rule`` holds the lesson as
    data (None for insights stored before rules existed, or written by hand). Retired
    insights stay in the store (``retired=True``) so their history remains inspectable.

    ``supporting`` and ``contradicting`` name the most recent tasks for and against it
    (the engine bounds them: a lesson true everywhere would otherwise list every task
    ever run); ``support_total`` and ``contradiction_total`` count all of them, and each
    task's ``SUPPORTS``/``CONTRADICTS`` edge stays, so what a task evidenced can always
    be found from the task.
    """

    kind: ClassVar[NodeKind] = NodeKind.INSIGHT
    node_kind: Literal["Insight"] = "Insight"
    text: str = Field(min_length=1)
    score: float = 1.0
    supporting: list[str] = Field(default_factory=list)
    contradicting: list[str] = Field(default_factory=list)
    support_total: int = Field(0, ge=0)
    contradiction_total: int = Field(0, ge=0)
    roles: list[str] = Field(default_factory=list)
    rule: InsightRule | None = None
    retired: bool = False
    provenance: list[Provenance] = Field(default_factory=list)
    updated_at: datetime = Field(default_factory=utcnow)

    @property
    def support_count(self) -> int:
        """Tasks that supported it, all told (an insight stored before the totals
        existed lists every one)."""
        return max(self.support_total, len(self.supporting))

    @property
    def contradiction_count(self) -> int:
        """Tasks that contradicted it, all told."""
        return max(self.contradiction_total, len(self.contradicting))


class Item(_Node):
    """A key-value record an adapter keeps beside the memory, outside the three tiers.

    Adapters give it a content-hash id of (namespace, key), so a key names one node and
    a put replaces it; ``value`` is the adapter's JSON document.
    """

    kind: ClassVar[NodeKind] = NodeKind.ITEM
    node_kind: Literal["Item"] = "Item"
    key: str = Field(min_length=1, max_length=1024)
    value: dict[str, JsonValue] = Field(default_factory=dict)
    updated_at: datetime = Field(default_factory=utcnow)


Node = QueryNode | Utterance | Insight | Item
NODE_TYPES: dict[NodeKind, type[Node]] = {
    NodeKind.QUERY: QueryNode,
    NodeKind.UTTERANCE: Utterance,
    NodeKind.INSIGHT: Insight,
    NodeKind.ITEM: Item,
}


class Edge(BaseModel):
    """A typed, directed relationship; (kind, src, dst) is its identity."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: EdgeKind
    src: str
    dst: str
    props: dict[str, JsonValue] = Field(default_factory=dict)

    @field_validator("src", "dst")
    @classmethod
    def _valid_ids(cls, v: str) -> str:
        return check_id(v)

    @property
    def key(self) -> tuple[EdgeKind, str, str]:
        return (self.kind, self.src, self.dst)


def node_from_props(
    kind: NodeKind | str,
    props: dict[str, Any],
    embedding: Any = None,
    graph_embedding: Any = None,
) -> Node:
    """Rebuild a node from what a backend stored (properties plus the two vectors)."""
    cls = NODE_TYPES[NodeKind(kind)]
    data = dict(props)
    data["embedding"] = embedding
    data["graph_embedding"] = graph_embedding
    return cls.model_validate(data)
