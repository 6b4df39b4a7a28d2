"""Outside text placed in Markdown, and CSV cells a spreadsheet would evaluate."""

from __future__ import annotations

import re

import pytest

from studio.text import neutral_cell, plain, verbatim

HOSTILE = [
    "[click me](https://evil.example/steal)",
    "<https://evil.example>",
    "https://evil.example/x",
    "www.evil.example",
    "mail@evil.example",
    ":red[FAKE PASS] :material/check_circle:",
    "**bold** _em_ `code` ~~strike~~",
    "$x^2$",
    "# heading\n- item\n    code",
    "![img](https://evil.example/p.png)",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_every_markdown_construct_is_escaped(text):
    out = plain(text)
    assert "\n" not in out
    # Every ASCII punctuation character is preceded by a backslash, so none can start syntax.
    for match in re.finditer(r"[!\"#$%&'()*+,\-./:;<=>?@\[\]^_`{|}~]", out):
        assert out[match.start() - 1] == "\\", (text, out)
    # What GFM autolinks *after* escapes are resolved (the reader's text) no longer matches.
    seen = re.sub(r"\\(.)", r"\1", out)
    assert not re.search(r"(https?://|www(?=\.))", seen, re.I), seen
    assert not re.search(r"([-.\w+]+)@([-\w]+(?:\.[-\w]+)+)", seen), seen


def test_plain_keeps_the_words_and_shortens_long_text():
    assert plain("text/html; charset=utf-8") == r"text\/html\; charset\=utf\-8"
    assert len(plain("a" * 1000, limit=10)) == 10


@pytest.mark.parametrize("cell", ["=HYPERLINK(\"x\")", "+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"])
def test_cells_a_spreadsheet_would_evaluate_are_quoted(cell):
    assert neutral_cell(cell) == "'" + cell


def test_ordinary_cells_are_unchanged():
    assert neutral_cell("turn day into night") == "turn day into night"
    assert neutral_cell("") == ""


def test_verbatim_shows_a_value_exactly_even_with_backticks():
    assert verbatim("https://videos.example.com/a.mp4") == "`https://videos.example.com/a.mp4`"
    assert verbatim("a`b") == "``a`b``"
    assert verbatim("`x`") == "`` `x` ``"
