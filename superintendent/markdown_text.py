"""Text shown as itself where Streamlit reads Markdown, and guidelines without remote images.

Pure string rules, no Streamlit (the web app calls them through
:mod:`superintendent.app.render`). Streamlit 1.67 reads Markdown in
``st.markdown``, ``st.caption``, headers, alerts, toasts, ``st.table``
cells, widget labels (buttons, checkboxes, text inputs, expanders, metrics)
and ``help`` tooltips. Besides CommonMark and GitHub's extensions (tables,
strikethrough, autolinks of ``www.``, ``http://`` and e-mail addresses) it
has its own: ``:red[...]`` colours and badges (text directives),
``:smile:`` emoji, ``:material/home:`` icons, ``:streamlit:``, ``$...$``
maths, and typographic replacements of `` -> <- <-> -- >= <= ~= ``. An
image (``![x](http://host/x.png)``) makes every browser that shows it fetch
that URL.

:func:`literal` makes a string show as exactly its characters:

* a backslash before each of ``\\ ` * _ { } [ ] ( ) # + - . ! | < > ~ $ & =``
  (CommonMark lets any ASCII punctuation be escaped so; ``&`` stops entities,
  ``=`` a heading underline);
* an invisible word joiner (U+2060) after ``:`` and ``@`` when a character
  follows, before a ``www.`` that starts a word, and between the two
  characters of the typographic pairs. Shortcodes, icons and the typographic
  replacements are applied by Streamlit to the text *after* Markdown has
  removed the backslashes, so a backslash cannot stop them; the joiner
  breaks their patterns (and the autolinks') and is invisible. It is part
  of the text a reader copies.

Line breaks and runs of spaces are laid out as Markdown lays them out (a line
break shows as a space). Use ``st.text``, ``st.code`` or ``st.dataframe``
where a string's own layout matters.
"""

from __future__ import annotations

import re

__all__ = ["WORD_JOINER", "literal", "without_images"]

WORD_JOINER = "\u2060"
_ESCAPED = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$&=])")
_BREAKS = re.compile(r"(?<=[:@])(?=\S)"            # :smile: :material/x: :red[..] ::leaf http:// a@b.c
                     r"|(?<=[<>~-])(?=[<>=-])"     # -> <- <-> -- >= <= ~=
                     r"|(?<![^\s*_~(])(?=www\.)",  # www.example.com where an autolink may start
                     re.IGNORECASE)
_IMAGE = re.compile(r"!\[")


def literal(value: object) -> str:
    """``value`` as Markdown that Streamlit shows as exactly its characters: no link, image, emphasis, heading,
    list, table, HTML, emoji, icon, colour, maths or autolink (see the module's docstring)."""
    return _ESCAPED.sub(r"\\\1", _BREAKS.sub(WORD_JOINER, str(value)))


def without_images(markdown: str) -> str:
    """Markdown with every image made text: ``![`` becomes ``!\\[``, so ``![x](http://host/x.png)`` shows as those
    characters and nothing is fetched (inline, reference-style and linked images alike; inside code the backslash
    shows). Everything else stays Markdown. Raw HTML (``<img>``) is left to ``st.markdown(unsafe_allow_html=False)``,
    which shows it as text."""
    return _IMAGE.sub(r"!\\[", markdown)
