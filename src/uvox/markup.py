"""Markdown to HTML for the texts of the API documentation.

The OpenAPI description's texts are Markdown (OpenAPI says CommonMark), and so are
the portal's documentation sections: `code`, lists, links. markdown-it-py renders
them by the CommonMark specification; raw HTML in a text is escaped, not passed
through (``html: False``), and only safe link schemes become links.
"""

from __future__ import annotations

from markdown_it import MarkdownIt
from markupsafe import Markup

_MD = MarkdownIt("commonmark", {"html": False})


def block(text: str) -> Markup:
    """Paragraphs, lists and code blocks."""
    return Markup(_MD.render(text))


def inline(text: str) -> Markup:
    """One line of text: code, emphasis and links, no paragraph around it."""
    return Markup(_MD.renderInline(text))
