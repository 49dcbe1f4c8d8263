"""Procedure skeletons: the same procedure compares equal across wording and objects."""

from __future__ import annotations

from gmem.procedure import OBJECT, abstract_action, similarity, skeleton


def test_object_ids_and_task_objects_are_abstracted() -> None:
    assert abstract_action("take Egg 1 from fridge 2.", {"egg"}) == f"take {OBJECT} from fridge"
    assert abstract_action("heat egg 1 with microwave 1", {"egg", "heat"}) == (
        f"heat {OBJECT} with microwave"
    )


def test_same_procedure_different_objects_match() -> None:
    egg = skeleton(
        "heat an egg and put it on the table",
        [
            "go to fridge 1",
            "take egg 1 from fridge 1",
            "heat egg 1 with microwave 1",
            "put egg 1 in table 1",
        ],
    )
    apple = skeleton(
        "put a hot apple on the table",
        [
            "go to fridge 1",
            "take apple 2 from fridge 1",
            "heat apple 2 with microwave 1",
            "put apple 2 in table 1",
        ],
    )
    clean = skeleton(
        "put a clean apple on the table",
        [
            "go to fridge 1",
            "take apple 2 from fridge 1",
            "clean apple 2 with sinkbasin 1",
            "put apple 2 in table 1",
        ],
    )
    assert similarity(egg, apple) == 1.0
    assert similarity(apple, clean) < 0.5


def test_repeats_and_empty_actions_are_dropped() -> None:
    sk = skeleton("open the door", ["look", None, "look", " ", "open door 1"])
    assert sk.steps == ("look", f"open {OBJECT}")
    assert similarity(sk, skeleton("x", [])) == 0.0
