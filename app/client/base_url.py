"""The broker's base URL, one rule for every `transom` command that talks to it: ``--url`` or
``TRANSOM_URL``, http(s), and the base the API hangs from (``https://transom.example.com``), never ``/v1``."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

EXAMPLE = "http://127.0.0.1:8080"
_SHOWN = 80  # a URL in a message is cut here: it came from the environment, not from us


def base_url_problem(url: str | None) -> str | None:
    """What is wrong with ``url`` as a broker base URL, as a sentence for the user; None when it is fine."""
    if not url or not url.strip():
        return f"no broker URL: set TRANSOM_URL or pass --url (the broker's base URL, such as {EXAMPLE})"
    url = url.strip()
    if not url.startswith(("http://", "https://")):
        return f"the broker URL must start with http:// or https:// (got {_shown(url)})"
    parts = urlsplit(url)
    cut = (parts.path.rstrip("/") + "/").find("/v1/")
    if cut >= 0:
        base = urlunsplit((parts.scheme, parts.netloc, parts.path[:cut], "", ""))
        return (
            f"the broker URL is its base, without /v1: use {_shown(base)} (got {_shown(url)}); "
            "the commands add /v1/... themselves"
        )
    return None


def _shown(url: str) -> str:
    text = url if len(url) <= _SHOWN else url[:_SHOWN] + "..."
    return repr(text)
