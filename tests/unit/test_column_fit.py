"""Claim values cut to their column's width: whole characters only, and the event says what was cut."""

from __future__ import annotations

from app.audit.models import fitted
from app.clip import clip


def test_clip_counts_characters_as_varchar_does_and_never_splits_one() -> None:
    cut = clip("é" * 300, 255)
    assert cut == "é" * 255
    assert cut.encode("utf-8").decode("utf-8") == cut
    assert clip("short", 255) == "short"


def test_fitted_cuts_only_what_is_too_long_and_names_it() -> None:
    values, cut = fitted({"ref": "r" * 256, "branch": "main", "repository": None, "actor_id": "a" * 513})
    assert values == {"ref": "r" * 255, "branch": "main", "repository": None, "actor_id": "a" * 512}
    assert cut == ["actor_id", "ref"]


def test_fitted_leaves_values_that_fit_unmarked() -> None:
    values = {"ref": "r" * 255, "policy": "deploy-prod"}
    assert fitted(values) == (values, [])
