"""Text from outside (servers, providers, pasted input) made safe to place inside Markdown.

Streamlit renders most text as Markdown with its own extensions (``:red[...]`` directives,
``:material/...:`` icons, math between ``$``), so a server's ``Content-Type`` header or a pasted
line could otherwise become a clickable link or fake formatting on our page. :func:`plain`
backslash-escapes every ASCII punctuation character (CommonMark allows that escape for all of
them), which defeats written links (``[a](b)``, ``<b>``), emphasis, code spans, directives and
math; line breaks become spaces so nothing can start a heading, list or code block.

Escapes are not enough for bare addresses: the GFM autolink step runs on the text *after*
escapes are resolved, turning ``https://...``, ``www.`` and ``a@b.c`` into links. An invisible
word joiner (U+2060) after the colon of ``://``, inside ``www.`` and after ``@`` breaks those
patterns without changing what the reader sees. Where a value must copy exactly (a URL the
user may paste elsewhere), :func:`verbatim` shows it as inline code, which is never linked.
"""

from __future__ import annotations

import re

__all__ = ["neutral_cell", "plain", "verbatim"]

_PUNCTUATION = re.compile(r"""([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~])""")
_SPACE = re.compile(r"\s+")
_JOINER = "\u2060"
# Where GFM would start an autolink in the escaped text: "\:" (of "://"), "\@", and "www" before "\.".
_AUTOLINK = re.compile(r"\\:|\\@|(?i:www)(?=\\\.)")
# A spreadsheet evaluates a cell that starts with one of these as a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def plain(text: object, *, limit: int | None = 500) -> str:
    """``text`` as Markdown that renders as exactly these characters (shortened past ``limit``)."""
    value = _SPACE.sub(" ", str(text)).strip()
    if limit is not None and len(value) > limit:
        value = value[: limit - 1].rstrip() + "…"
    escaped = _PUNCTUATION.sub(r"\\\1", value)
    return _AUTOLINK.sub(lambda m: m.group(0) + _JOINER, escaped)


def verbatim(text: object, *, limit: int | None = 500) -> str:
    """``text`` as inline code: shown and copied exactly, never linked or formatted."""
    value = _SPACE.sub(" ", str(text)).strip()
    if limit is not None and len(value) > limit:
        value = value[: limit - 1].rstrip() + "…"
    longest = max((len(run) for run in re.findall(r"`+", value)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if value.startswith("`") or value.endswith("`") else ""
    return f"{fence}{pad}{value}{pad}{fence}" if value else ""


def neutral_cell(value: str) -> str:
    """A CSV cell a spreadsheet shows as text: a leading formula character gets a quote before it."""
    return "'" + value if value.startswith(_FORMULA_START) else value
