"""Which environment variable holds which secret value.

Default: the key, uppercased, every character other than A-Z, 0-9 turned into ``_`` (``db-password`` →
``DB_PASSWORD``), after an optional prefix (``--env-prefix DEPLOY_``, or per secret
``--env-prefix prod-db=DB_``). ``--map KEY=NAME`` (or ``--map SECRET/KEY=NAME``) names one value
explicitly; the other keys keep their default names. Two values that would land in one variable are refused
rather than one silently winning, and so is a default name that would change how the job's programs run or
overwrite a variable the job already has (``app/client/envguard.py``; docs/API.md, "Command line").
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.client.broker import LeaseView
from app.client.envguard import refusal
from app.client.errors import UsageError

VALID_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NOT_ALNUM = re.compile(r"[^A-Za-z0-9]")


def default_name(key: str, prefix: str = "") -> str:
    name = prefix + _NOT_ALNUM.sub("_", key).upper()
    return "_" + name if name[:1].isdigit() else name


def value_text(value: Any) -> str:
    """Strings as they are; anything else a KV secret may hold (numbers, lists, objects) as JSON."""
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


@dataclass(frozen=True)
class EnvNaming:
    prefix: str = ""
    prefixes: Mapping[str, str] = field(default_factory=dict)  # secret -> prefix
    names: Mapping[tuple[str | None, str], str] = field(default_factory=dict)  # (secret or any, key) -> name

    @classmethod
    def parse(cls, secrets: Sequence[str], env_prefixes: Sequence[str], maps: Sequence[str]) -> EnvNaming:
        prefix = ""
        prefixes: dict[str, str] = {}
        for given in env_prefixes:
            secret, sep, value = given.rpartition("=")
            _check_name(value, "--env-prefix", allow_empty=True)
            if not sep:
                prefix = value
            elif secret in secrets:
                prefixes[secret] = value
            else:
                raise UsageError(f"--env-prefix {given}: {secret!r} is not one of the --secret names")
        names: dict[tuple[str | None, str], str] = {}
        for given in maps:
            target, sep, name = given.rpartition("=")
            if not sep or not target:
                raise UsageError(f"--map {given}: expected KEY=NAME or SECRET/KEY=NAME")
            _check_name(name, "--map")
            owner, slash, key = target.partition("/")
            if slash and owner in secrets:
                names[(owner, key)] = name
            else:
                names[(None, target)] = name
        return cls(prefix, prefixes, names)

    def explicit_name(self, secret: str, key: str) -> str | None:
        return self.names.get((secret, key)) or self.names.get((None, key))

    def name_for(self, secret: str, key: str) -> str:
        return self.explicit_name(secret, key) or default_name(key, self.prefixes.get(secret, self.prefix))

    def environment(self, leases: Sequence[LeaseView], environ: Mapping[str, str]) -> dict[str, str]:
        """NAME -> value for every value of every lease, checked before anything is handed on or run.

        Refuses collisions, unusable values, and default names that ``envguard`` refuses against ``environ``
        (the job's environment); a ``--map`` name is the job author's explicit choice and is not checked.
        """
        found: dict[str, str] = {}
        origin: dict[str, str] = {}
        seen_keys: set[tuple[str | None, str]] = set()
        hijacks: list[tuple[str, str, str]] = []  # (where, name, why)
        for lease in leases:
            for key, value in (lease.data or {}).items():
                seen_keys.update({(lease.secret, key), (None, key)})
                name = self.name_for(lease.secret, key)
                where = f"{lease.secret}/{shown_key(key)}"
                why = None if self.explicit_name(lease.secret, key) else refusal(name, environ)
                if why is not None:
                    hijacks.append((where, name, why))
                if name in found:
                    raise UsageError(
                        f"{origin[name]} and {where} would both be ${name}",
                        lines=["name them apart with --map SECRET/KEY=NAME or --env-prefix SECRET=PREFIX"],
                    )
                text = value_text(value)
                if "\0" in text:
                    raise UsageError(f"{where} holds a NUL character, which no environment variable can")
                found[name], origin[name] = text, where
        if hijacks:
            raise _hijack_error(hijacks)
        for wanted in self.names:
            if wanted not in seen_keys:
                shown = f"{wanted[0]}/{wanted[1]}" if wanted[0] else wanted[1]
                raise UsageError(f"--map names {shown!r}, which none of the leases holds")
        return found


def shown_key(key: str) -> str:
    """A key as the log may show it: a name from Vault must not forge log lines or workflow commands."""
    return key if key.isprintable() and len(key) <= 100 else repr(key[:100])


def _hijack_error(hijacks: Sequence[tuple[str, str, str]]) -> UsageError:
    names = ", ".join(f"${name}" for _, name, _ in hijacks)
    return UsageError(
        f"refused to set {names} from leased key names; nothing was run or handed on",
        lines=[
            *(f"{where} would be ${name}: {why}" for where, name, why in hijacks),
            "a key's name comes from the secret at Vault; to use such a name anyway, choose it explicitly "
            "with --map SECRET/KEY=NAME (or pick other names with --map or --env-prefix)",
        ],
    )


def _check_name(name: str, option: str, *, allow_empty: bool = False) -> None:
    if (allow_empty and name == "") or VALID_NAME.match(name):
        return
    raise UsageError(f"{option}: {name!r} is not a valid environment variable name (A-Z, 0-9, _)")
