"""EIDO notes are HTML5 fragments (notesActionComments); the routing rules read plain text.

NENA-STA-021.1b warns that notes may carry script and lets a receiver filter it. This
keeps the text a person would read and nothing else: the content of script, style and
other non-text elements is dropped, tags are removed, entities are decoded, and block
elements become line breaks. Nothing is ever rendered or executed, so the output is safe
to store and to show as text (it is escaped again wherever it becomes HTML).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

# Elements whose content is not text a reader sees.
_HIDDEN = frozenset({"script", "style", "template", "noscript", "iframe", "object", "embed",
                     "svg", "math", "head", "title", "textarea", "select", "applet", "frame",
                     "frameset", "noembed", "noframes", "xmp", "plaintext"})
# Elements that end a line.
_BLOCK = frozenset({"p", "div", "br", "li", "ul", "ol", "tr", "table", "h1", "h2", "h3", "h4",
                    "h5", "h6", "blockquote", "pre", "section", "article", "header", "footer",
                    "dd", "dt", "dl", "hr", "address", "figure", "figcaption"})
_VOID = frozenset({"br", "hr", "img", "input", "meta", "link", "area", "base", "col", "wbr",
                   "source", "track", "param", "embed"})
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN and tag not in _VOID:
            self.hidden += 1
        elif tag in _BLOCK:
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN and tag not in _VOID:
            self.hidden = max(0, self.hidden - 1)
        elif tag in _BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def html_to_text(fragment: str) -> str:
    """The plain text of an HTML fragment: no markup, no script, tidy whitespace."""
    parser = _Text()
    parser.feed(fragment)
    parser.close()
    text = _CONTROL.sub("", "".join(parser.parts))
    lines = (re.sub(r"[ \t\r\f\v\xa0]+", " ", line).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)
