"""Reading a declarative configuration file (TOML or YAML) into entries per kind, each with its line.

Syntax errors name the line. YAML is read with YAML 1.2's plain scalars: ``16:00`` stays a string (YAML 1.1
would make it the sexagesimal integer 960), dates and times stay strings, and only ``true``/``false`` are
booleans (``on``, ``no`` are strings). TOML date-times with an offset become RFC 3339 strings and TOML local
times ``HH:MM:00`` become ``"HH:MM"``, the forms the API reads.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import yaml

KINDS = ("issuers", "secrets", "windows", "freezes", "policies")
SINGULAR = {
    "issuers": "issuer",
    "secrets": "secret",
    "windows": "window",
    "freezes": "freeze",
    "policies": "policy",
}
YAML_SUFFIXES = (".yaml", ".yml")


class FileProblem(Exception):
    """The file cannot be read as configuration; the message names the line where it can."""


@dataclass(frozen=True)
class Entry:
    kind: str  # "policies"
    index: int  # position among the file's entries of that kind
    body: Any  # as written (a mapping when well-formed)
    line: int | None = None

    @property
    def label(self) -> str:
        """``policy "deploy-prod" (policies[1], line 40)`` — how error messages name the object."""
        name = self.body.get("name") if isinstance(self.body, dict) else None
        where = f"{self.kind}[{self.index}]" + (f", line {self.line}" if self.line else "")
        named = f' "{name}"' if isinstance(name, str) else ""
        return f"{SINGULAR[self.kind]}{named} ({where})"


@dataclass
class Document:
    path: str
    entries: dict[str, list[Entry]] = field(default_factory=lambda: {kind: [] for kind in KINDS})

    def all(self) -> list[Entry]:
        return [entry for kind in KINDS for entry in self.entries[kind]]


def read_document(path: Path) -> Document:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FileProblem(f"{path}: cannot read it ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise FileProblem(f"{path}: is not UTF-8 text") from None
    if path.suffix.lower() in YAML_SUFFIXES:
        data, lines = _load_yaml(text, str(path))
    else:
        data, lines = _load_toml(text, str(path))
    return _document(data, lines, str(path))


def _document(data: Any, lines: dict[tuple[str, int], int], path: str) -> Document:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise FileProblem(f"{path}: the top level must be a table/mapping of {', '.join(KINDS)}")
    unknown = sorted(str(key) for key in data if key not in KINDS)
    if unknown:
        raise FileProblem(
            f"{path}: unknown section(s) {', '.join(unknown)}; the sections are {', '.join(KINDS)}"
        )
    document = Document(path)
    for kind in KINDS:
        items = data.get(kind)
        if items is None:
            continue
        if not isinstance(items, list):
            raise FileProblem(f"{path}: {kind} must be a list ([[{kind}]] tables in TOML, a list in YAML)")
        document.entries[kind] = [
            Entry(kind, index, _plain(body), lines.get((kind, index))) for index, body in enumerate(items)
        ]
    return document


# --- TOML ---------------------------------------------------------------------------------------------------

_TOML_POSITION = re.compile(r"\(at line (\d+), column (\d+)\)")


def _load_toml(text: str, path: str) -> tuple[Any, dict[tuple[str, int], int]]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        position = _TOML_POSITION.search(message)
        if position:
            message = _TOML_POSITION.sub("", message).strip()
            line, column = position[1], position[2]
            raise FileProblem(
                f"{path}:{line}: TOML syntax error at line {line}, column {column}: {message}"
            ) from None
        raise FileProblem(f"{path}: TOML syntax error: {message}") from None
    return data, _toml_entry_lines(text)


def _toml_entry_lines(text: str) -> dict[tuple[str, int], int]:
    """The line of each ``[[kind]]`` header, by kind and position: the line an error about that entry names.

    Entries written inline (``policies = [{...}]``) have no header and get no line.
    """
    lines: dict[tuple[str, int], int] = {}
    seen = dict.fromkeys(KINDS, 0)
    for number, line in enumerate(text.splitlines(), start=1):
        match = re.match(r"\s*\[\[\s*([A-Za-z_]+)\s*\]\]", line)
        if match and match[1] in seen:
            lines[(match[1], seen[match[1]])] = number
            seen[match[1]] += 1
    return lines


# --- YAML ---------------------------------------------------------------------------------------------------


class _Yaml12Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema plain scalars (no sexagesimal numbers, timestamps, yes/no)."""


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag.rsplit(":", 1)[-1] not in {"bool", "int", "float", "timestamp"}
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^[-+]?[0-9]+$"), list("-+0123456789")
)
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$"),
    list("-+.0123456789"),
)


def _load_yaml(text: str, path: str) -> tuple[Any, dict[tuple[str, int], int]]:
    loader = _Yaml12Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise FileProblem(f"{path}{line}: YAML syntax error{at}: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise FileProblem(f"{path}: YAML syntax error: {exc}") from None
    finally:
        loader.dispose()
    return data, _yaml_entry_lines(node)


def _yaml_entry_lines(node: yaml.Node | None) -> dict[tuple[str, int], int]:
    lines: dict[tuple[str, int], int] = {}
    if not isinstance(node, yaml.MappingNode):
        return lines
    for key, value in node.value:
        if isinstance(key, yaml.ScalarNode) and key.value in KINDS and isinstance(value, yaml.SequenceNode):
            for index, item in enumerate(value.value):
                lines[(key.value, index)] = item.start_mark.line + 1
    return lines


# --- values -------------------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """JSON-ready values: TOML's date-times and times as the strings the API reads; the rest unchanged."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.isoformat()
    if isinstance(value, time) and value.tzinfo is None and not value.second and not value.microsecond:
        return value.strftime("%H:%M")
    if isinstance(value, datetime | date | time):
        return value.isoformat()  # a local date-time: the schema says it needs an offset
    return value
