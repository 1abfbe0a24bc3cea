"""Name patterns: GitHub deployment-branch-policy semantics (app/decision/patterns.py)."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.decision.patterns import (
    MAX_PATTERN_LENGTH,
    InvalidPattern,
    compile_pattern,
    matches,
    matches_any,
    validate_pattern,
)

MATCH_CASES = [
    # literal
    ("main", "main", True),
    ("main", "mainline", False),
    ("main", "xmain", False),
    ("main", "Main", False),  # case-sensitive
    ("Main", "main", False),
    # "*" stays inside one segment
    ("release/*", "release/1.0", True),
    ("release/*", "release/", True),
    ("release/*", "release/1/x", False),
    ("release/*", "release", False),
    ("release/*/*", "release/1/x", True),
    ("*", "main", True),
    ("*", "a/b", False),
    ("*", "", True),
    ("feat*", "feature", True),
    ("*-hotfix", "prod-hotfix", True),
    ("*-hotfix", "team/prod-hotfix", False),
    ("a*b*c", "abc", True),
    ("a*b*c", "aXbYc", True),
    ("a*b*c", "aXcYb", False),
    ("a*b*c", "a/b/c", False),
    # "**" crosses segments
    ("**", "a/b/c", True),
    ("**", "", True),
    ("feature/**", "feature/x", True),
    ("feature/**", "feature/x/y/z", True),
    ("feature/**", "feature", False),
    ("feature/**", "features/x", False),
    ("release/**-rc", "release/2026/q4-rc", True),
    ("release/**-rc", "release/2026/q4-rc/x", False),
    ("a**b", "a/x/b", True),
    ("a***b", "a/x/b", True),  # three or more stars are "**"
    # "**/" as a whole segment: zero or more segments
    ("**/deploy", "deploy", True),
    ("**/deploy", "a/b/deploy", True),
    ("**/deploy", "a/predeploy", False),
    ("a/**/b", "a/b", True),
    ("a/**/b", "a/x/y/b", True),
    ("a/**/b", "a/xb", False),
    ("**/**/x", "x", True),
    ("team/**/release/*", "team/a/b/release/1", True),
    ("team/**/release/*", "team/release/1", True),
    ("team/**/release/*", "team/a/release/1/2", False),
    # "?" is one character other than "/"
    ("v?", "v1", True),
    ("v?", "v10", False),
    ("a?b", "a/b", False),
    # character classes
    ("v[0-9]", "v7", True),
    ("v[0-9]", "vx", False),
    ("[abc]x", "bx", True),
    ("[!abc]x", "dx", True),
    ("[!abc]x", "ax", False),
    ("[^abc]x", "dx", True),
    ("a[!b]c", "a/c", False),  # a negated class never matches "/"
    ("[-a]", "-", True),
    ("[a-]", "-", True),
    ("[\\]]", "]", True),
    ("x\\*", "x*", True),
    ("x\\*", "xy", False),
    # regular-expression metacharacters are literal
    ("v1.0", "v1.0", True),
    ("v1.0", "v1x0", False),
    ("a+", "a+", True),
    ("a+", "aa", False),
    ("(x)", "(x)", True),
    ("x|y", "x", False),
    ("^main$", "^main$", True),
    ("^main$", "main", False),
    ("{a,b}", "{a,b}", True),
    ("{a,b}", "a", False),
    ("a{2}", "aa", False),
    ("$(whoami)", "$(whoami)", True),
    # tags
    ("v*", "v1.2.3", True),
    ("v*", "1.2.3", False),
    ("v*.*.*", "v1.2.3", True),
    ("v*.*.*", "v1.2", False),
    # repositories
    ("acme/*", "acme/payments", True),
    ("acme/*", "acme/.github", True),  # a leading dot is an ordinary character
    ("acme/*", "acme-evil/payments", False),
    ("acme/*", "other/acme", False),
    ("acme/*", "acme/payments/x", False),
    ("acme/payments", "acme/payments", True),
    ("acme/payments", "acme/Payments", False),
]


@pytest.mark.parametrize(("pattern", "value", "expected"), MATCH_CASES)
def test_matches(pattern: str, value: str, expected: bool) -> None:
    assert validate_pattern(pattern) is None
    assert matches(pattern, value) is expected


@pytest.mark.parametrize(("pattern", "value", "expected"), MATCH_CASES)
def test_compiled_pattern_is_anchored_for_match_too(pattern: str, value: str, expected: bool) -> None:
    assert (compile_pattern(pattern).match(value) is not None) is expected


def test_matches_any() -> None:
    assert matches_any(["main", "release/*"], "release/1.0")
    assert not matches_any(["main", "release/*"], "feature/x")
    assert not matches_any([], "main")


def test_compiled_patterns_are_cached() -> None:
    assert compile_pattern("release/*") is compile_pattern("release/*")


INVALID_CASES = [
    ("", "empty"),
    ("x" * (MAX_PATTERN_LENGTH + 1), "longer than 255"),
    ("main\n", "control character"),
    ("ma\x00in", "control character"),
    ("a\x7f", "control character"),
    ("release/[0-9", "never closed"),
    ("[", "never closed"),
    ("[!", "never closed"),
    ("[a\\", "never closed"),
    ("release]", "no '[' before it"),
    ("[a[b]", "inside a character class"),
    ("[]", "empty character class"),
    ("[!]x", "empty character class"),
    ("[z-a]", "reversed"),
    ("[a/]", "cannot match '/'"),
    ("[!/]", "cannot match '/'"),
    ("[+-0]", "cannot match '/'"),  # the range + .. 0 includes "/"
    ("main\\", "unfinished escape"),
]


@pytest.mark.parametrize(("pattern", "fragment"), INVALID_CASES)
def test_invalid_patterns_are_refused_with_a_reason(pattern: str, fragment: str) -> None:
    message = validate_pattern(pattern)
    assert message is not None
    assert fragment in message
    with pytest.raises(InvalidPattern, match=re.escape(message)):
        compile_pattern(pattern)


@pytest.mark.parametrize(("pattern", "fragment"), INVALID_CASES)
def test_invalid_patterns_match_nothing(pattern: str, fragment: str) -> None:
    assert not matches(pattern, pattern)
    assert not matches(pattern, "main")


def test_longest_pattern_is_valid() -> None:
    assert validate_pattern("x" * MAX_PATTERN_LENGTH) is None


@pytest.mark.parametrize(
    ("pattern", "value"),
    [
        ("*-*-*-*-*-*-*-*-*-*-*-*-x", "-" * 255),
        ("*a*a*a*a*a*a*a*a*a*a*a*a*a*b", "a" * 255),
        ("**a**a**a**a**a**a**a**a**b", "a/" * 127),
        ("**a*a*a*a*a*a*a*a*a*a*b", "a/" * 60 + "a" * 135),
        ("a/**/a/**/a/**/a/**/a/**/b", "a/" * 127),
    ],
)
def test_adversarial_values_do_not_backtrack_exponentially(pattern: str, value: str) -> None:
    """A branch name is chosen by whoever pushes it; a plain regex translation would run for hours here."""
    started = time.perf_counter()
    assert not matches(pattern, value)
    assert time.perf_counter() - started < 1.0


# --- properties ------------------------------------------------------------------------------------------

_LITERAL_CHARS = st.characters(
    blacklist_characters="*?[]\\",
    blacklist_categories=("Cc", "Cs"),
)


@given(st.text(_LITERAL_CHARS, min_size=1, max_size=MAX_PATTERN_LENGTH), st.text(max_size=40))
def test_a_pattern_without_wildcards_matches_exactly_itself(pattern: str, other: str) -> None:
    assert validate_pattern(pattern) is None
    assert matches(pattern, pattern)
    assert matches(pattern, other) is (other == pattern)


def _naive_regex(pattern: str) -> str:
    """The obvious backtracking translation, as an oracle for small inputs (patterns of _ELEMENTS only)."""
    out: list[str] = []
    at_segment_start = True
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            j = i
            while j < len(pattern) and pattern[j] == "*":
                j += 1
            if j - i >= 2 and at_segment_start and j < len(pattern) and pattern[j] == "/":
                out.append("(?:.*/)?")
                i = j + 1
                continue  # still at a segment start
            out.append(".*" if j - i >= 2 else "[^/]*")
            i = j
        elif ch == "[":
            j = pattern.index("]", i)
            body = pattern[i + 1 : j]
            out.append(f"[^/{body[1:]}]" if body.startswith("!") else f"[{body}]")
            i = j + 1
        elif ch == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(ch))
            i += 1
        at_segment_start = ch == "/"
    return "".join(out)


_ELEMENTS = st.sampled_from(["a", "b", "-", ".", "/", "*", "**", "?", "[ab]", "[!a]"])


@given(st.lists(_ELEMENTS, min_size=1, max_size=8).map("".join), st.text("ab-./", max_size=10))
def test_agrees_with_the_naive_translation(pattern: str, value: str) -> None:
    expected = re.fullmatch(_naive_regex(pattern), value, re.DOTALL) is not None
    assert matches(pattern, value) is expected
