"""Spanish and English through gettext catalogues.

The ``.po`` files under ``locale/`` are the source; they are compiled in memory with
Babel at first use, so a checkout runs without a build step and no ``.mo`` file can
drift from its ``.po``. One Jinja2 environment per language: the i18n extension
installs translations on an environment, and a per-request install would race
between threads.
"""

from __future__ import annotations

import gettext
import io
from functools import cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from jinja2 import BaseLoader, Environment, FileSystemLoader, select_autoescape

from uvox import markup

HERE = Path(__file__).resolve().parent
LOCALE_DIR = HERE / "locale"
TEMPLATES = HERE / "templates"
LANGUAGES = {"es": "Español", "en": "English"}
DEFAULT = "es"  # the manual's customers speak Spanish


def load_catalogue(locale_dir: Path, lang: str) -> gettext.NullTranslations:
    """The ``.po`` catalogue of ``lang`` under ``locale_dir``, compiled in memory
    (no translations when there is none); the softphone pages load theirs too."""
    po = locale_dir / lang / "LC_MESSAGES" / "messages.po"
    if not po.exists():
        return gettext.NullTranslations()
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=lang)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


@cache
def translations(lang: str) -> gettext.NullTranslations:
    return load_catalogue(LOCALE_DIR, lang)


def negotiate(accept_language: str | None) -> str:
    """The best of our languages for an Accept-Language header (q-values honoured)."""
    best, best_q = DEFAULT, -1.0
    for i, part in enumerate((accept_language or "").split(",")):
        bits = part.strip().split(";")
        tag = bits[0].strip().lower()
        q = 1.0
        for b in bits[1:]:
            b = b.strip()
            if b.startswith("q="):
                try:
                    q = float(b[2:])
                except ValueError:
                    q = 0.0
        primary = tag.split("-")[0]
        # Earlier entries win ties, as browsers list languages by preference.
        q -= i * 1e-6
        if primary in LANGUAGES and q > best_q:
            best, best_q = primary, q
    return best


def template_dirs() -> list[str]:
    """The portal's templates, then those of domain packages that add portal pages
    (``uvox/softphone/templates``: its pages extend our ``base.html``)."""
    dirs = [str(TEMPLATES)]
    for package in ("softphone",):
        extra = HERE.parent / package / "templates"
        if extra.is_dir():
            dirs.append(str(extra))
    return dirs


def make_environment(loader: BaseLoader, catalogue: gettext.NullTranslations) -> Environment:
    """A Jinja2 environment of the portal's settings (autoescape, gettext) for one language."""
    env = Environment(
        loader=loader,
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(catalogue, newstyle=True)
    # Documentation texts are Markdown (`code`, lists): {{ md(_(text)) }}.
    env.globals.update(md=markup.block, md_inline=markup.inline)
    return env


@cache
def environment(lang: str) -> Environment:
    return make_environment(FileSystemLoader(template_dirs()), translations(lang))


def gettext_for(lang: str):
    return translations(lang).gettext
