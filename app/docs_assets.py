"""Swagger UI's stylesheet without ``data:`` URLs, so that ``/docs`` runs under ``img-src 'self'``.

``swagger-ui.css`` draws its icons from ``url("data:...")`` images. Each one is taken out once, at the first
request, into a numbered file the broker serves itself; the stylesheet points at those instead. Pure: text
in, text and files out.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from urllib.parse import unquote

# url("data:<type>[;params],<payload>") with CSS string escapes, or url(data:...) unquoted.
_QUOTED = re.compile(r'url\("data:([a-z]+/[a-z0-9.+-]+)([^,"]*),((?:[^"\\]|\\.)*)"\)')
_BARE = re.compile(r"url\(data:([a-z]+/[a-z0-9.+-]+)([^,)]*),([^)]*)\)")
_CSS_ESCAPE = re.compile(r"\\(.)")
_EXTENSIONS = {"image/svg+xml": "svg", "image/png": "png", "image/jpeg": "jpg", "image/gif": "gif"}


@dataclass(frozen=True, slots=True)
class Image:
    media_type: str
    body: bytes


def without_data_urls(css: str, url_of: str) -> tuple[str, dict[str, Image]]:
    """``css`` with every data URL replaced by ``url("<url_of><name>")``, and the images by name."""
    images: dict[str, Image] = {}

    def take(match: re.Match[str], *, quoted: bool) -> str:
        media_type, params, payload = match.groups()
        if quoted:
            payload = _CSS_ESCAPE.sub(r"\1", payload)
        body = base64.b64decode(payload) if ";base64" in params else unquote(payload).encode()
        name = f"{len(images)}.{_EXTENSIONS.get(media_type, 'bin')}"
        images[name] = Image(media_type, body)
        return f'url("{url_of}{name}")'

    css = _QUOTED.sub(lambda m: take(m, quoted=True), css)
    css = _BARE.sub(lambda m: take(m, quoted=False), css)
    return css, images
