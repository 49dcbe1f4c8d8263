"""Every constant that shapes gmem's behaviour, in one place, with the paper's defaults.

G-Memory (Zhang et al., 2025) found one hop of expansion best (two or three hops did
worse) and few retrieved trajectories better than many; the defaults follow that. Change
values by passing a :class:`MemoryConfig` or setting ``GMEM_<FIELD>`` environment
variables (e.g. ``GMEM_HOPS=2``).
"""

from __future__ import annotations

import os
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from graph_store.errors import ConfigError

_LIST_FIELDS = frozenset({"insight_weights", "no_op_markers", "reserved_namespace_prefixes"})


class MemoryConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # --- retrieval: seeding and expansion over the query graph -------------------------
    seed_k: int = Field(3, ge=1, description="Past queries seeded by embedding similarity.")
    seed_min_similarity: float = Field(
        0.25, ge=-1, le=1, description="Seeds less similar than this to the task are dropped."
    )
    hops: int = Field(1, ge=0, le=5, description="Hops of expansion over the query graph.")
    max_candidates: int = Field(
        30, ge=1, description="Cap on queries ranked after expansion (bounds LLM cost)."
    )
    # --- retrieval: ranking and what is kept -------------------------------------------
    success_k: int = Field(2, ge=0, description="Successful past trajectories kept (paper M).")
    failure_k: int = Field(
        1, ge=0, description="Failed trajectories kept and shown as warnings (0: none)."
    )
    min_relevance: float = Field(
        0.5, ge=0, le=1, description="Ranked queries below this relevance are not kept."
    )
    relevance_margin: float = Field(
        0.3,
        ge=0,
        le=1,
        description=(
            "Ranked queries further than this below the best one of the same outcome are not"
            " kept (per outcome, so a failed identical task cannot hide every success)."
        ),
    )
    insight_k: int = Field(5, ge=0, description="Insights returned per recall.")
    insight_weights: tuple[float, float, float] = Field(
        (0.5, 0.2, 0.3),
        description="Weights of (support overlap, score, similarity) in insight ranking.",
    )
    insight_min_similarity: float = Field(
        0.2, ge=-1, le=1, description="Insights found by similarity alone need at least this."
    )
    insight_oversample: int = Field(
        3, ge=1, description="Insights searched by similarity per insight kept (x insight_k)."
    )
    procedure_min_similarity: float = Field(
        0.4,
        ge=-1,
        le=1,
        description=(
            "Least cosine similarity between a task and the mean of an insight's supporting"
            " tasks for the insight to be shown."
        ),
    )
    procedure_margin: float = Field(
        0.02,
        ge=0,
        le=1,
        description=(
            "An insight is not shown when an insight of another procedure is nearer to the"
            " task by more than this (cosine to each one's supporting tasks' mean)."
        ),
    )
    procedure_supporters: int = Field(
        20,
        ge=1,
        description="Most recent supporting tasks read per insight to place its procedure.",
    )
    insight_neighbourhood_k: int = Field(
        10,
        ge=1,
        description=(
            "Nearest ranked past tasks (text, or mixed with structure once embedded) whose"
            " SUPPORTS edges place an insight near this task."
        ),
    )
    insight_min_support_share: float = Field(
        0.2,
        ge=0,
        le=1,
        description=(
            "Least similarity-weighted share of those nearest tasks that must support a"
            " scoped insight for it to be shown (0: not checked)."
        ),
    )
    contradiction_weight: float = Field(
        0.5,
        ge=0,
        description="How much one contradicting retrieved query offsets a supporting one.",
    )
    key_steps_per_trajectory: int = Field(
        12, ge=1, description="Most key steps shown for one past trajectory."
    )
    trajectory_head_steps: int = Field(
        2,
        ge=0,
        description=(
            "Opening key steps (the plan) kept when a trajectory is cut to"
            " key_steps_per_trajectory; the rest are its last steps (what finally worked)."
        ),
    )
    recall_reuse_nodes: int = Field(
        10_000,
        ge=0,
        description=(
            "Query and insight nodes (with their vectors) a Memory keeps between recalls"
            " while its store reports them unchanged (the embedded store; Neo4j cannot"
            " tell, so there every recall reads them); 0 keeps none."
        ),
    )
    # --- per-role rendering ------------------------------------------------------------
    role_token_budget: int = Field(
        600, ge=50, description="Most tokens of memory injected into one role's prompt."
    )
    tokenizer: str = Field("cl100k_base", description="tiktoken encoding used for budgets.")
    step_chars: int = Field(
        240, ge=20, description="Characters of a role's own message shown per past step."
    )
    action_chars: int = Field(
        120, ge=20, description="Characters of an action or observation shown per past step."
    )
    other_role_chars: int = Field(
        100, ge=20, description="Characters of another role's action-less message shown."
    )
    task_chars: int = Field(
        160, ge=20, description="Characters of a task text shown in memory headers."
    )
    # --- evolution after each task -----------------------------------------------------
    similar_edge_k: int = Field(5, ge=0, description="Similarity edges from a new query.")
    similar_edge_threshold: float = Field(
        0.6, ge=-1, le=1, description="Least cosine similarity for a SIMILAR_TO edge."
    )
    insight_initial_score: float = Field(
        2.0, gt=0, description="Score of a new insight, and the neutral score unused ones decay to."
    )
    insight_credit: float = Field(
        1.0,
        ge=0,
        description=(
            "Score change of an insight rendered into a prompt, per unit of advantage: the"
            " outcome (1 or 0) minus the success rate of similar past tasks."
        ),
    )
    credit_min_baseline: int = Field(
        3,
        ge=1,
        description="Past attempts of similar tasks needed before an outcome credits anything.",
    )
    insight_max_score: float = Field(
        6.0, gt=0, description="Scores are bounded to [0, this]; at 0 an insight retires."
    )
    insight_credit_history: int = Field(
        50,
        ge=1,
        description=(
            "Most recent reward/penalize entries kept in an insight's provenance (every"
            " other entry is kept): without a bound, an insight shown in every task grows"
            " its history, and the cost of reading and rewriting it, with the store."
        ),
    )
    insight_evidence_keep: int = Field(
        100,
        ge=1,
        description=(
            "Most recent task ids kept in each of an insight's supporting and contradicting"
            " lists; the totals count every task and each task keeps its SUPPORTS or"
            " CONTRADICTS edge (forget and quarantine read those). Without a bound, a"
            " lesson true everywhere lists every task ever run."
        ),
    )
    insight_decay: float = Field(
        0.8,
        ge=0,
        le=1,
        description=(
            "At each merge pass, an insight not credited since the last one keeps this share"
            " of its distance from the neutral score."
        ),
    )
    insight_agree_bonus: float = Field(
        0.5, ge=0, description="Score gained when a task derives the same rule again (AGREE)."
    )
    retire_min_evidence: int = Field(
        3,
        ge=1,
        description=(
            "An insight retires once at least this many tasks contradict it and they"
            " outnumber its supporters."
        ),
    )
    max_live_insights: int = Field(
        200,
        ge=1,
        description="Live insights kept per namespace; the merge pass retires the lowest scored.",
    )
    insight_match_similarity: float = Field(
        0.85, ge=0, le=1, description="A derived insight this close to an existing one agrees."
    )
    merge_every: int = Field(
        10, ge=0, description="Merge near-duplicate insights every N new tasks (0: never)."
    )
    merge_similarity: float = Field(
        0.9, ge=0, le=1, description="Least cosine similarity for two rule-less insights to merge."
    )
    merge_scope_overlap: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Least scope overlap (Jaccard) for two insights with the same rule to merge.",
    )
    procedure_similarity: float = Field(
        0.4,
        ge=0,
        le=1,
        description=(
            "Least step overlap (Jaccard weighted by rarity among the references) for a past"
            " success to count as the same procedure when lessons are mined."
        ),
    )
    scope_min_share: float = Field(
        0.5,
        ge=0,
        le=1,
        description=(
            "Share of an insight's scope (procedure signature) an attempt must contain to be"
            " checked against it, and a recalled trajectory to have it shown."
        ),
    )
    evidence_min_peers: int = Field(
        1,
        ge=0,
        description=(
            "A task joins an existing rule's supporters only when at least this many of the"
            " past successes of its own procedure (the references evolution compared it"
            " with) already support the rule: steps alone let tasks of other procedures"
            " that happen to take the scope's steps vouch for it (0: steps alone). A rule"
            " with no supporter yet takes its first by steps; contradictions need no peers."
        ),
    )
    evidence_scope_share: float = Field(
        1.0,
        ge=0,
        le=1,
        description=(
            "Share of an insight's scope (its steps other than the rule's own) a successful"
            " attempt must contain for its outcome to count as evidence for or against the"
            " insight; failures count from scope_min_share."
        ),
    )
    reference_k: int = Field(
        4, ge=1, description="Similar past successes and failures compared when deriving."
    )
    reference_oversample: int = Field(
        3, ge=1, description="Past queries searched per reference kept (x reference_k)."
    )
    existing_insight_oversample: int = Field(
        2,
        ge=0,
        description="Insights offered to derivation by similarity (x insight_k) for AGREE/EDIT.",
    )
    related_pairs_max: int = Field(
        10, ge=0, description="Most RELATED_TO edges written between insights used together."
    )
    # --- heuristic mode (no LLM endpoint) ----------------------------------------------
    pattern_min_support: float = Field(
        0.8,
        ge=0,
        le=1,
        description=(
            "Share of one procedure's successes a step must appear in to belong to its core"
            " (its scope and its lessons); steps fewer successes take are search."
        ),
    )
    lesson_min_contrast: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Least difference in share between successes and failures for a lesson.",
    )
    lesson_min_successes: int = Field(
        2, ge=1, description="Successes of one procedure needed before a lesson is mined."
    )
    avoid_min_attempts: int = Field(
        3,
        ge=1,
        description=(
            "Successes and failures (each) of one procedure needed for an avoid or order"
            " rule (long failures take many steps, and orders, by chance)."
        ),
    )
    loop_window: int = Field(
        3, ge=1, description="A step repeating one of the last N actions counts as looping."
    )
    insight_task_chars: int = Field(
        120,
        ge=20,
        description="Characters of the example task a heuristic insight quotes (kept verbatim).",
    )
    no_op_markers: tuple[str, ...] = Field(
        (
            "nothing happens",
            "invalid",
            "unknown command",
            "not a valid",
            "not recognized",
            "can't do that",
            "cannot do that",
            "no effect",
        ),
        description=(
            "Observation phrases by which text environments (ALFWorld, ScienceWorld, PDDL"
            " simulators) say an action changed nothing; such steps are not key steps."
        ),
    )
    # --- integrations ---------------------------------------------------------------------
    judge_success_threshold: float = Field(
        0.5, ge=0, le=1, description="A judge's score at or above this counts as success."
    )
    # --- bulk ingest (gmem.bulk) ---------------------------------------------------------
    bulk_ingest_batch: int = Field(
        500,
        ge=1,
        description=(
            "Trajectories written per transaction by bulk ingest (ingest_many(bulk=True),"
            " gmem ingest --bulk); a batch is stored whole or not at all."
        ),
    )
    # --- concurrent writers ------------------------------------------------------------
    finish_conflict_retries: int = Field(
        50,
        ge=0,
        description="Times a finish is recomputed after another writer changed what it read.",
    )
    finish_conflict_backoff_s: float = Field(
        0.002, ge=0, description="First pause before recomputing a conflicted finish (doubles)."
    )
    # --- input limits (checked at the public API, before any LLM call or write) --------
    max_text_chars: int = Field(
        1_000_000, ge=1, description="Longest task text, message or metadata string accepted."
    )
    max_metadata_depth: int = Field(
        16, ge=1, le=200, description="Deepest nesting of metadata accepted on a task or message."
    )
    reserved_namespace_prefixes: tuple[str, ...] = Field(
        ("langgraph:",),
        description="Namespace prefixes kept for adapters' own records (LangGraph's store); "
        "team memory may not use them, so the two can never share a namespace.",
    )
    # --- structural (GNN) embeddings: gmem.gnn, behind the `gnn` extra -----------------
    gnn_alpha: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Weight of text similarity in seeding and ranking; 1 - alpha goes to the"
        " structural embedding once `gmem embed` has trained one (1: text-only always).",
    )
    gnn_encoder: Literal["hetero-sage", "mlp"] = Field(
        "mlp",
        description="Structural encoder: message passing over the memory graph, or the"
        " text-to-procedure MLP baseline without message passing.",
    )
    gnn_stored_view: Literal["full", "inductive"] = Field(
        "full",
        description="How stored tasks are embedded: from their whole neighbourhood, trace"
        " included (full), or as a new task is, from text and text neighbours (inductive).",
    )
    gnn_dim: int = Field(64, ge=2, le=1024, description="Size of a structural embedding.")
    gnn_hidden: int = Field(128, ge=2, le=4096, description="Hidden width of the encoder.")
    gnn_layers: int = Field(2, ge=1, le=4, description="Message-passing layers (hops seen).")
    gnn_epochs: int = Field(
        150,
        ge=1,
        description="Most optimiser steps of a full retrain; each sees up to"
        " gnn_pairs_per_step positive pairs (all of them on a small graph: an epoch).",
    )
    gnn_pairs_per_step: int = Field(
        8192,
        ge=1,
        description="Most positive pairs per optimiser step; above it a step samples this"
        " many, so a step's cost does not grow with the graph.",
    )
    gnn_train_node_budget: int = Field(
        1_500_000,
        ge=1,
        description="Most node rows the encoder may process in one retrain, summed over its"
        " steps: a large graph gets fewer steps, so a full refresh's time stays bounded.",
    )
    gnn_patience: int = Field(
        20,
        ge=0,
        description="Stop training once the smoothed loss has not improved for this many"
        " steps (0: always run gnn_epochs steps).",
    )
    gnn_min_delta: float = Field(
        0.005,
        ge=0,
        lt=1,
        description="Relative fall of the smoothed loss that counts as an improvement.",
    )
    gnn_lr: float = Field(0.005, gt=0, le=1, description="Adam learning rate.")
    gnn_weight_decay: float = Field(1e-4, ge=0, description="Adam weight decay.")
    gnn_dropout: float = Field(0.1, ge=0, lt=1, description="Feature dropout in training.")
    gnn_negatives: int = Field(
        256,
        ge=1,
        description="Successful tasks drawn per training step as the negatives every"
        " positive pair of the step is contrasted with.",
    )
    gnn_temperature: float = Field(
        0.1, gt=0, le=10, description="Softmax temperature of the contrastive loss."
    )
    gnn_mask_share: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Share of tasks trained as if new (trace, outcome and memory edges hidden),"
        " so the encoder learns to place an edgeless task from its text and text neighbours.",
    )
    gnn_procedure_threshold: float = Field(
        0.3,
        ge=0,
        le=1,
        description="Least weighted skeleton overlap for two successful tasks to count as"
        " sharing a procedure (a positive pair).",
    )
    gnn_procedure_k: int = Field(
        10, ge=1, description="Most procedural neighbours linked per successful task."
    )
    gnn_used_memory_weight: float = Field(
        0.5, ge=0, description="Loss weight of USED_MEMORY_OF pairs beside procedural pairs."
    )
    gnn_trace_dim: int = Field(256, ge=8, description="Hashed size of a trace's skeleton features.")
    gnn_seed: int = Field(0, description="Seed of initialisation and sampling (deterministic).")
    gnn_device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="Where the encoder runs; auto picks CUDA when available."
    )
    gnn_cpu_threads: int = Field(
        1,
        ge=0,
        description="CPU threads torch may use while gmem trains or encodes (0: torch's"
        " default). One avoids the oversubscription that makes small graphs crawl when other"
        " processes share the cores.",
    )
    gnn_minibatch_nodes: int = Field(
        200_000,
        ge=1,
        description="Above this many graph nodes, each training step of the graph encoder"
        " runs on the neighbourhood of its tasks instead of the whole graph.",
    )
    gnn_export_batch: int = Field(
        2000, ge=1, description="Node ids read from the store per export call."
    )
    gnn_candidate_pool: int = Field(
        4,
        ge=1,
        description="Hybrid seeding pools seed_k * this many hits from each vector before"
        " rescoring them by the mixed score.",
    )
    gnn_refresh_every: int = Field(
        1,
        ge=0,
        description="Embed new tasks with the current model after this many (0: only by"
        " `gmem embed`).",
    )
    gnn_retrain_every: int = Field(
        0,
        ge=0,
        description="Retrain the encoder after this many new tasks (0: only by `gmem embed`).",
    )
    gnn_model_path: str | None = Field(
        None,
        description="Where the encoder's weights live; default: beside an embedded store's"
        " file (required to persist for Neo4j and :memory: stores).",
    )
    # --- LLM ----------------------------------------------------------------------------
    llm_max_retries: int = Field(2, ge=0, description="Re-asks after invalid JSON or 429/5xx.")
    llm_timeout_s: float = Field(
        60.0, gt=0, description="Longest wait for one read from the endpoint (seconds)."
    )
    llm_deadline_s: float = Field(
        30.0,
        gt=0,
        description="Total time one memory operation may take, retries and waits included.",
    )
    llm_max_tokens: int = Field(
        1024, ge=16, description="Most tokens the model may write per answer (max_tokens)."
    )
    llm_max_answer_chars: int = Field(
        100_000, ge=1000, description="Longer answers are rejected unread (runaway output)."
    )
    llm_json_max_depth: int = Field(
        32, ge=4, le=500, description="Deeper JSON nesting in an answer is rejected."
    )
    llm_breaker_failures: int = Field(
        3, ge=1, description="Consecutive failed operations that open the circuit breaker."
    )
    llm_breaker_cooldown_s: float = Field(
        60.0, ge=0, description="Seconds the endpoint is not called once the breaker opens."
    )
    llm_response_format: Literal["json_object", "json_schema", "json_object+schema", "none"] = (
        Field(
            "json_object",
            description="How JSON is requested: OpenAI JSON mode, OpenAI/vLLM json_schema, "
            "llama-cpp-python's schema in json_object (grammar-constrained), or not at all.",
        )
    )
    llm_fallback: bool = Field(
        True,
        description="Answer with the heuristic reasoner while the endpoint fails (degraded).",
    )

    @classmethod
    def from_env(cls, **overrides: Any) -> Self:
        """Defaults, then ``GMEM_<FIELD>`` variables, then explicit keyword overrides."""
        values: dict[str, Any] = {}
        from_env: set[str] = set()
        for name in cls.model_fields:
            raw = os.environ.get(f"GMEM_{name.upper()}")
            if raw is not None:
                values[name] = raw.split(",") if name in _LIST_FIELDS else raw
                from_env.add(name)
        values.update(overrides)
        from_env -= set(overrides)
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            field = str(err["loc"][0]) if err["loc"] else ""
            if field in from_env:  # name the variable the user set, and what it held
                variable = f"GMEM_{field.upper()}"
                raise ConfigError(
                    f"invalid {variable}={os.environ[variable]!r}: {err['msg']}; fix or unset it"
                ) from None
            raise ConfigError(f"invalid config value for {where}: {err['msg']}") from None
