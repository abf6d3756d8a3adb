"""The portfolio: every completed postmortem on one page, as Markdown and as standalone HTML.

Only postmortems without a placeholder left count: a half-written one would show the marker on
a page meant for others to read. One of a solve that followed the reference fix is marked
assisted under its title, from the progress store rather than its (editable) text. The page goes
to ``<learner_home>/portfolio/``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from markdown_it import MarkdownIt

from mlops_lab.interview import postmortem
from platform_core.errors import PlatformError
from platform_core.settings import Settings

TITLE = "Incidents I debugged"
_FENCE = re.compile(r"^\s*(```|~~~)")
_SOLVE_TIME = re.compile(r"(\d{8}-\d{6})\.md$")
_CSS = """
body { font: 16px/1.55 system-ui, sans-serif; max-width: 52rem; margin: 2rem auto;
       padding: 0 1rem; color: #1f2328; }
h1 { border-bottom: 2px solid #d0d7de; padding-bottom: .3rem; }
h2 { margin-top: 3rem; border-bottom: 1px solid #d0d7de; }
table { border-collapse: collapse; margin: 1rem 0; }
td, th { border: 1px solid #d0d7de; padding: .3rem .7rem; text-align: left; }
code, pre { background: #f6f8fa; border-radius: 4px; font-size: 90%; }
pre { padding: .8rem; overflow-x: auto; }
code { padding: .1rem .3rem; }
hr { border: 0; border-top: 1px solid #d0d7de; margin: 3rem 0; }
"""


@dataclass(frozen=True)
class Portfolio:
    markdown: Path
    html: Path
    included: list[Path]
    skipped: list[tuple[Path, str]]


def sources(settings: Settings) -> list[Path]:
    """Postmortems oldest solve first (their names end with the solve time)."""
    paths = postmortem.folder(settings).glob("*.md")

    def solved(path: Path) -> str:
        match = _SOLVE_TIME.search(path.name)
        return match[1] if match else path.name

    return sorted(paths, key=solved)


def compile_portfolio(settings: Settings) -> Portfolio:
    included, skipped, sections, assisted = [], [], [], 0
    for path in sources(settings):
        text = path.read_text()
        if not postmortem.is_complete(text):
            left = text.count(postmortem.PLACEHOLDER)
            skipped.append((path, f"{left} `{postmortem.PLACEHOLDER}` placeholders left"))
            continue
        included.append(path)
        section = demote(text.strip())
        if postmortem.was_assisted(settings, path):
            assisted += 1
            section = mark_assisted(section)
        sections.append(section)
    if not included:
        unfinished = "; ".join(f"{path.name}: {why}" for path, why in skipped) or "none written"
        raise PlatformError(
            f"No completed postmortem in {postmortem.folder(settings)} yet ({unfinished}), so "
            "there is nothing to compile.",
            hint="Write one with `mlops-lab postmortem ID` after a solve and replace every "
            f"`{postmortem.PLACEHOLDER}` in it.",
        )
    count = f"{len(included)} incident{'s' if len(included) != 1 else ''}"
    if assisted:
        count += f" ({assisted} solved with the reference fix, marked assisted)"
    page = "\n\n---\n\n".join(
        [f"# {TITLE}\n\n{count}, each written up as a blameless postmortem.", *sections]
    )
    out = settings.learner_home / "portfolio"
    out.mkdir(parents=True, exist_ok=True)
    markdown, html = out / "incidents.md", out / "incidents.html"
    markdown.write_text(page + "\n")
    html.write_text(standalone_html(page))
    return Portfolio(markdown, html, included, skipped)


def mark_assisted(section: str) -> str:
    """A line under the section's title saying the solve was assisted."""
    title, _, rest = section.partition("\n")
    note = f"> **Assisted**: {postmortem.ASSISTED}; not mitigated unaided."
    return f"{title}\n\n{note}\n{rest}"


def demote(text: str) -> str:
    """Every heading one level down, so each postmortem sits under the page's title; lines in
    code blocks (shell comments start with '#') stay as they are."""
    lines, in_code = [], False
    for line in text.splitlines():
        if _FENCE.match(line):
            in_code = not in_code
        elif not in_code and re.match(r"#{1,5} ", line):
            line = "#" + line
        lines.append(line)
    return "\n".join(lines)


def standalone_html(markdown: str, title: str = TITLE) -> str:
    # js-default: tables and strikethrough on, raw HTML off (it is shown as text, not run).
    body = MarkdownIt("js-default").render(markdown)
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n{body}</body>\n</html>\n"
    )
