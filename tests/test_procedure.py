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


def test_names_with_digits_keep_them_and_bare_numbers_go() -> None:
    # "v2" names a thing (a version, a room): only a bare number is an episode's object id.
    assert abstract_action("go to paris v2", {"paris"}) == f"go to {OBJECT} v2"
    assert abstract_action("take egg 12 from fridge 3", {"egg"}) == f"take {OBJECT} from fridge"
    assert abstract_action("pour co2 into flask 2", ()) == "pour co2 into flask"
    sk = skeleton("travel to paris v2", ["go to paris v2", "wait1", "wait"])
    assert sk.steps == (f"go to {OBJECT} v2", "wait1", "wait")
