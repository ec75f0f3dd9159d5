"""Plotly figures from the child, made safe to draw in the user's browser.

The sandbox keeps the generated code off the network, but plotly.js draws its figure in the
user's browser, which is on it: an image or a map layer with a URL, a link in a label, or a
`config` naming servers would send what the code chose (the user's data, in the URL) wherever
it chose, or put a link in front of the user. So only `data`, `layout` and `frames` are kept,
with every value that makes the browser fetch dropped (inline `data:image/` pictures and
plotly's named map styles stay) and every link reduced to its text.
"""

from __future__ import annotations

import re
from typing import Any

KEPT = ("data", "layout", "frames")  # not `config` (topojsonURL, plotlyServerURL, links...)
MAX_DEPTH = 64  # a figure is a dozen levels deep; a deeper one is not a figure
# Attributes plotly.js (or the map library under it) fetches: layout.images[].source, image
# traces' source, map layers' source, choropleth geojson, map styles and their parts.
_FETCHED = {"source", "geojson", "tiles", "url", "urls", "sprite", "glyphs", "href", "topojsonurl", "style"}
_INLINE_IMAGE = re.compile(r"\s*data:image/", re.IGNORECASE)
_NAMED_STYLE = re.compile(r"[a-z0-9-]+", re.IGNORECASE)  # "open-street-map", "carto-positron", "white-bg"
_URL = re.compile(r"\s*([a-z][a-z0-9+.-]*:)?//", re.IGNORECASE)
_LINK_TAG = re.compile(r"</?a\b[^>]*>", re.IGNORECASE)
# A style attribute in a label's <span>: fine with colours and fonts; a url(...), a quote, a
# slash or an escape could make the browser fetch something (cursor: url(...)).
_STYLE_ATTR = re.compile(r"""\s+style\s*=\s*(["'])(.*?)\1""", re.IGNORECASE | re.DOTALL)
_PLAIN_STYLE = re.compile(r"[\w\s#:;,.%()+-]*")


_DROPPED = object()  # what _clean returns for a value to leave out


class _TooDeep(Exception):
    pass


def safe_figure(figure: Any) -> dict:
    """A copy of a plotly figure's JSON with nothing in it that reaches out of the browser."""
    if not isinstance(figure, dict):
        return {}
    try:
        return {key: _clean(figure[key], key, 0) for key in KEPT if key in figure}
    except _TooDeep:
        return {}


def _clean(value: Any, key: str, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise _TooDeep
    if isinstance(value, str):
        return _fetched(value, key) if key in _FETCHED else _text(value)
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            k = str(k)
            # "images[0].source" in an update menu's args names the same attribute
            name = k.rsplit(".", 1)[-1].split("[", 1)[0].lower()
            v = _clean(v, name, depth + 1)
            if v is not _DROPPED:
                out[k] = v
        return out
    if isinstance(value, (list, tuple)):
        items = [v if isinstance(v, (int, float, bool)) or v is None else _clean(v, key, depth + 1) for v in value]
        if key in ("args", "args2"):  # an update menu's [attribute, value] pairs
            items = [v for v in items if not (isinstance(v, str) and _URL.match(v))]
        return [v for v in items if v is not _DROPPED]
    return value


def _fetched(value: str, key: str) -> Any:
    """A value of an attribute the browser fetches: kept only where it fetches nothing."""
    if _INLINE_IMAGE.match(value):
        return value
    if key == "style" and _NAMED_STYLE.fullmatch(value):
        return value  # a named map style, or a font's style ("italic")
    return _DROPPED


def _text(value: str) -> str:
    """A label as plotly.js would draw it, without links or styles that fetch."""
    if "<" not in value:
        return value
    value = _LINK_TAG.sub("", value)
    return _STYLE_ATTR.sub(lambda m: m.group(0) if _PLAIN_STYLE.fullmatch(m.group(2)) else "", value)
