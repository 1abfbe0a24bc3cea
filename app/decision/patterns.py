"""Name patterns for repositories, branches and tags: GitHub deployment-branch-policy semantics.

GitHub documents its deployment branch and tag policies as Ruby ``File.fnmatch`` patterns in which "wildcard
characters will not match ``/``"; docs/API.md adds that ``**`` matches across segments. The syntax here:

- ``*``: any run of characters, possibly empty, except ``/`` (it stays inside one segment).
- ``**``: any run of characters, ``/`` included; three or more ``*`` are the same as ``**``.
- ``**/`` at the start of the pattern or right after a ``/``: zero or more whole segments, so ``**/deploy``
  matches ``deploy`` and ``a/b/deploy``, and ``a/**/b`` matches ``a/b``.
- ``?``: exactly one character other than ``/``.
- ``[abc]``, ranges ``[a-z0-9]``, negated ``[!abc]`` or ``[^abc]``: one character of (not of) the set, never
  ``/``. A ``/`` in a class, an unclosed ``[``, a stray ``]`` or an empty class is refused.
- ``\\x``: the character ``x`` itself (``\\*``, ``\\[``, ``\\]``).
- Everything else is itself: ``.``, ``+``, ``(``, ``{``, ``$``... are literal. Matching is case-sensitive and
  covers the whole string.

Where this differs from Ruby's ``File.fnmatch(p, s, FNM_PATHNAME)``, deliberately:

- ``**`` that is not a whole ``**/`` segment crosses ``/`` (Ruby treats it as ``*``): docs/API.md's
  "``**`` across segments", and what ``feature/**`` is written to mean.
- A leading ``.`` in a segment is an ordinary character (Ruby's ``FNM_DOTMATCH``): git forbids ref components
  that start with ``.`` anyway, and ``acme/*`` is expected to include the repository ``acme/.github``.
- No brace alternatives ``{a,b}`` (Ruby's opt-in ``FNM_EXTGLOB``; GitHub does not document them): braces
  are literal.

Python's :mod:`fnmatch` is never used: its ``*`` crosses ``/`` and it is case-insensitive on some platforms.

Matching cost is bounded: patterns compile to regular expressions whose wildcard steps are atomic groups that
commit to the leftmost (earliest-ending) placement, which is always a correct choice for these patterns, so
a branch name chosen by whoever pushes it cannot make a pattern like ``*-*-*-*-x`` backtrack exponentially.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

MAX_PATTERN_LENGTH = 255

__all__ = [
    "MAX_PATTERN_LENGTH",
    "InvalidPattern",
    "compile_pattern",
    "matches",
    "matches_any",
    "validate_pattern",
]


class InvalidPattern(ValueError):
    """A pattern that :func:`validate_pattern` refuses; the message says why, for the admin."""


# --- parsing ---------------------------------------------------------------------------------------------

# "char": one regex element matching exactly one character (never "/" unless it is the literal separator);
# "star" *, "globstar" ** (crosses "/"), "dirstar" **/ as a whole segment (zero or more segments).
_Kind = Literal["char", "star", "globstar", "dirstar"]


@dataclass(frozen=True, slots=True)
class _Token:
    kind: _Kind
    regex: str = ""  # for "char": the regex for exactly one character
    slash: bool = False  # for "char": the literal "/" (a segment separator)


_SLASH = _Token("char", "/", slash=True)
_STAR = _Token("star")
_GLOBSTAR = _Token("globstar")
_DIRSTAR = _Token("dirstar")
_NOT_SLASH = "[^/]"


def _is_control(ch: str) -> bool:
    code = ord(ch)
    return code < 0x20 or 0x7F <= code < 0xA0


def _literal(ch: str) -> _Token:
    return _SLASH if ch == "/" else _Token("char", re.escape(ch))


def _at_segment_start(tokens: list[_Token]) -> bool:
    return not tokens or tokens[-1].slash or tokens[-1] is _DIRSTAR


def _parse(pattern: str) -> list[_Token]:
    """Tokens of a valid pattern, or :class:`InvalidPattern` saying what is wrong."""
    if not pattern:
        raise InvalidPattern("pattern is empty")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise InvalidPattern(f"pattern is longer than {MAX_PATTERN_LENGTH} characters")
    for position, ch in enumerate(pattern):
        if _is_control(ch):
            raise InvalidPattern(
                f"pattern contains a control character (U+{ord(ch):04X}) at position {position}"
            )

    tokens: list[_Token] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "\\":
            if i + 1 == n:
                raise InvalidPattern("pattern ends with an unfinished escape '\\'")
            tokens.append(_literal(pattern[i + 1]))
            i += 2
        elif ch == "*":
            run_end = i
            while run_end < n and pattern[run_end] == "*":
                run_end += 1
            if run_end - i == 1:
                tokens.append(_STAR)
            elif _at_segment_start(tokens) and run_end < n and pattern[run_end] == "/":
                if not tokens or tokens[-1] is not _DIRSTAR:  # "**/**/" is "**/"
                    tokens.append(_DIRSTAR)
                run_end += 1
            else:
                tokens.append(_GLOBSTAR)
            i = run_end
        elif ch == "[":
            token, i = _parse_class(pattern, i)
            tokens.append(token)
        elif ch == "]":
            raise InvalidPattern(
                f"unbalanced brackets: ']' at position {i} has no '[' before it (a literal ']' is '\\]')"
            )
        else:
            tokens.append(_Token("char", _NOT_SLASH) if ch == "?" else _literal(ch))
            i += 1
    return tokens


def _parse_class(pattern: str, start: int) -> tuple[_Token, int]:
    """The character class opening at ``pattern[start] == '['``, and the index just past its ``]``."""
    i = start + 1
    n = len(pattern)
    negated = i < n and pattern[i] in "!^"
    if negated:
        i += 1
    members: list[str] = []  # single characters
    parts: list[str] = []  # regex pieces inside [...]
    while i < n and pattern[i] != "]":
        ch = pattern[i]
        escaped = ch == "\\"
        if escaped:
            if i + 1 == n:
                raise InvalidPattern(f"unbalanced brackets: '[' at position {start} is never closed")
            ch = pattern[i + 1]
            i += 1
        if ch == "[" and not escaped:
            raise InvalidPattern(f"unbalanced brackets: '[' at position {i} inside a character class")
        if ch == "/":
            raise InvalidPattern(f"a character class cannot match '/' (position {i})")
        members.append(ch)
        i += 1
        # a range a-z: a "-" between two members that is not the class's last character
        if i + 1 < n and pattern[i] == "-" and pattern[i + 1] != "]":
            high = pattern[i + 1]
            high_at = i + 1
            if high == "\\" and i + 2 < n:
                high = pattern[i + 2]
                high_at = i + 2
            if high == "/":
                raise InvalidPattern(f"a character class cannot match '/' (position {high_at})")
            low = members.pop()
            if ord(high) < ord(low):
                raise InvalidPattern(f"character range '{low}-{high}' is reversed (position {start})")
            if ord(low) <= ord("/") <= ord(high):
                raise InvalidPattern(f"a character class cannot match '/' (range '{low}-{high}')")
            parts.append(f"{re.escape(low)}-{re.escape(high)}")
            i = high_at + 1
    if i >= n:
        raise InvalidPattern(f"unbalanced brackets: '[' at position {start} is never closed")
    if not members and not parts:
        raise InvalidPattern(f"empty character class at position {start}")
    parts.extend(re.escape(member) for member in members)
    body = "".join(parts)
    # Never "/": a negated class excludes it explicitly; a positive one cannot contain it (refused above).
    regex = f"[^/{body}]" if negated else f"[{body}]"
    return _Token("char", regex), i + 1


# --- translation -----------------------------------------------------------------------------------------


def _segment_regex(tokens: list[_Token], *, free_end: bool) -> str:
    """One ``/``-free segment: fixed-width chunks separated by ``*``.

    Each ``*`` except the last commits atomically to the leftmost placement of the chunk after it, which is
    optimal for fixed-width chunks. The last one backtracks when the segment's end is fixed by what follows
    (a ``/`` or the end of the string), or commits to the earliest end when a ``**`` follows (``free_end``).
    """
    chunks: list[str] = [""]
    for token in tokens:
        if token.kind == "star":
            chunks.append("")  # the parser merged runs of "*", so stars are never adjacent
        else:
            chunks[-1] += token.regex
    if len(chunks) == 1:
        return chunks[0]
    out = [chunks[0]]
    out.extend(f"(?>{_NOT_SLASH}*?{chunk})" for chunk in chunks[1:-1])
    last = chunks[-1]
    out.append(f"(?>{_NOT_SLASH}*?{last})" if free_end else f"{_NOT_SLASH}*{last}")
    return "".join(out)


def _piece_regex(tokens: list[_Token], *, free_end: bool) -> str:
    """Tokens between two ``**``: segments joined by literal ``/``."""
    segments: list[list[_Token]] = [[]]
    for token in tokens:
        if token.slash:
            segments.append([])
        else:
            segments[-1].append(token)
    regexes = [_segment_regex(segment, free_end=False) for segment in segments[:-1]]
    regexes.append(_segment_regex(segments[-1], free_end=free_end))
    return "/".join(regexes)


def _translate(tokens: list[_Token]) -> str:
    pieces: list[list[_Token]] = [[]]
    separators: list[_Token] = []
    for token in tokens:
        if token.kind in ("globstar", "dirstar"):
            separators.append(token)
            pieces.append([])
        else:
            pieces[-1].append(token)
    if not separators:
        return rf"\A{_piece_regex(pieces[0], free_end=False)}\Z"
    # Between the first and the last piece, each piece takes its leftmost, earliest-ending match: whatever
    # the next "**" can follow from a later end it can follow from an earlier one too.
    first = _piece_regex(pieces[0], free_end=True)
    out = [rf"\A(?>{first})" if first else r"\A"]
    for separator, piece in zip(separators[:-1], pieces[1:-1], strict=True):
        lazy = ".*?" if separator.kind == "globstar" else "(?:.*?/)??"
        out.append(f"(?>{lazy}{_piece_regex(piece, free_end=True)})")
    greedy = ".*" if separators[-1].kind == "globstar" else "(?:.*/)?"
    out.append(rf"{greedy}{_piece_regex(pieces[-1], free_end=False)}\Z")
    return "".join(out)


# --- public API ------------------------------------------------------------------------------------------


def validate_pattern(pattern: str) -> str | None:
    """Why ``pattern`` is not acceptable (a sentence for the admin), or ``None`` when it is."""
    try:
        _parse(pattern)
    except InvalidPattern as exc:
        return str(exc)
    return None


@lru_cache(maxsize=4096)
def compile_pattern(pattern: str) -> re.Pattern[str]:
    """The anchored regular expression for ``pattern``; :class:`InvalidPattern` when it is not valid.

    The result matches the whole string with ``.match`` or ``.fullmatch`` alike.
    """
    return re.compile(_translate(_parse(pattern)), re.DOTALL)


def matches(pattern: str, value: str) -> bool:
    """Whether ``value`` as a whole matches ``pattern``. An invalid pattern matches nothing (fail closed)."""
    try:
        compiled = compile_pattern(pattern)
    except InvalidPattern:
        return False
    return compiled.fullmatch(value) is not None


def matches_any(patterns: Iterable[str], value: str) -> bool:
    """Whether ``value`` matches at least one of ``patterns``; no patterns match nothing."""
    return any(matches(pattern, value) for pattern in patterns)
