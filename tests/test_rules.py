"""Insight rules as data: scope, pattern, verdict and the labels read from them."""

from __future__ import annotations

from gmem.cli.picture import lesson
from gmem.rules import Attempt, in_scope, shows, signature, verdict
from graph_store.model import Insight, InsightRule, Outcome

SCOPE = ["go to sinkbasin", "clean <obj> with sinkbasin", "go to <obj>", "put <obj> in <obj>"]
CLEANED = ("go to sinkbasin", "clean <obj> with sinkbasin", "go to <obj>", "put <obj> in <obj>")
SKIPPED = ("go to sinkbasin", "go to <obj>", "put <obj> in <obj>")
HEATED = ("go to microwave", "heat <obj> with microwave", "put <obj> in <obj>")


def rule(kind: str, *actions: str) -> InsightRule:
    return InsightRule.model_validate({"kind": kind, "actions": list(actions), "scope": SCOPE})


def test_require_is_supported_only_by_successes_that_show_it() -> None:
    r = rule("require", "clean <obj> with sinkbasin")
    assert verdict(r, Attempt("a", Outcome.SUCCESS, CLEANED), 0.5) == "supports"
    assert verdict(r, Attempt("b", Outcome.SUCCESS, SKIPPED), 0.5) == "contradicts"
    assert verdict(r, Attempt("c", Outcome.FAILURE, SKIPPED), 0.5) is None
    assert verdict(r, Attempt("d", Outcome.FAILURE, CLEANED), 0.5) is None
    assert verdict(r, Attempt("e", Outcome.SUCCESS, HEATED), 0.5) is None  # out of scope
    assert verdict(r, Attempt("f", Outcome.UNKNOWN, CLEANED), 0.5) is None


def test_avoid_is_supported_by_failures_that_did_it_and_broken_by_successes() -> None:
    r = rule("avoid", "go to <obj>")
    assert verdict(r, Attempt("a", Outcome.FAILURE, SKIPPED), 0.5) == "supports"
    assert verdict(r, Attempt("b", Outcome.SUCCESS, CLEANED), 0.5) == "contradicts"
    assert verdict(r, Attempt("c", Outcome.SUCCESS, ("go to sinkbasin",)), 0.0) is None


def test_order_needs_both_steps_in_that_order() -> None:
    r = rule("order", "clean <obj> with sinkbasin", "put <obj> in <obj>")
    assert shows(r, CLEANED)
    assert not shows(r, ("put <obj> in <obj>", "clean <obj> with sinkbasin"))
    assert not shows(r, SKIPPED)
    assert not shows(rule("note"), CLEANED)


def test_scope_and_signature() -> None:
    assert in_scope(SCOPE, SKIPPED, 0.5) and not in_scope(SCOPE, HEATED, 0.5)
    assert in_scope([], HEATED, 1.0)
    assert signature([CLEANED, CLEANED, SKIPPED], 0.6) == list(CLEANED)
    assert signature([CLEANED, SKIPPED, HEATED], 0.6) == [
        "go to sinkbasin",
        "go to <obj>",
        "put <obj> in <obj>",
    ]


def test_the_picture_labels_an_insight_by_its_rule_not_its_sentence() -> None:
    text = 'For tasks like "clean the mug 2": actor should "go to sinkbasin" (2 of 2 did).'
    ruled = Insight(
        text=text, rule=rule("require", "go to sinkbasin", "clean <obj> with sinkbasin")
    )
    assert lesson(ruled) == "do go to sinkbasin, then clean the object with sinkbasin"
    assert lesson(Insight(text=text, rule=rule("avoid", "go to <obj>"))) == "avoid go to the object"
    assert lesson(Insight(text="Rinse first.")) == "Rinse first."
