"""The shell blocks of the README and `docs/`, as a reader would run them.

A fenced block whose info string is `sh` is a command a reader runs: `tests/e2e/test_docs.py`
runs a page's `sh` blocks in order, in one shell, against the local cluster. A block that
cannot run here says why in its info string, `sh skip="needs a Docker engine"`, and is shown
as any other. Synopses and sample output use `text` or no language, and are never run.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^(?P<fence>`{3,})(?P<info>[^`]*)$")


class DocBlockError(ValueError):
    """A fenced block whose info string this module cannot read."""


@dataclass(frozen=True)
class Block:
    """One fenced block: where it starts (``page:line``), its language, why it is not run
    (None when it is), and its text."""

    page: str
    line: int
    language: str
    skip: str | None
    text: str

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def runs(self) -> bool:
        return self.language == "sh" and self.skip is None


def _info(info: str, where: str) -> tuple[str, str | None]:
    try:
        words = shlex.split(info)
    except ValueError as error:
        raise DocBlockError(f"{where}: info string {info!r}: {error}") from error
    if not words:
        return "", None
    language, attributes = words[0], words[1:]
    skip: str | None = None
    for attribute in attributes:
        key, _, value = attribute.partition("=")
        if key != "skip" or not value.strip():
            raise DocBlockError(f'{where}: {attribute!r}: the only attribute is skip="why"')
        skip = value.strip()
    return language, skip


def blocks(text: str, page: str) -> list[Block]:
    """Every fenced block of a Markdown page, in order."""
    found: list[Block] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        fence, start = opening["fence"], index + 1
        language, skip = _info(opening["info"].strip(), f"{page}:{start}")
        body: list[str] = []
        index += 1
        while index < len(lines) and lines[index].strip() != fence:
            body.append(lines[index])
            index += 1
        if index == len(lines):
            raise DocBlockError(f"{page}:{start}: the block is never closed")
        found.append(Block(page, start, language, skip, "\n".join(body)))
        index += 1
    return found


def page_blocks(page: str) -> list[Block]:
    """The blocks of ``page``, a path relative to the repository."""
    return blocks((REPO / page).read_text(), page)


def script(page_blocks: list[Block]) -> str:
    """One bash script of a page's runnable blocks, each announced on stderr, stopping at the
    first command that fails."""
    parts = ["set -euo pipefail"]
    for block in page_blocks:
        if block.runs:
            parts.append(f"echo {shlex.quote(f'+++ {block.where}')} >&2")
            parts.append(block.text)
    return "\n".join(parts) + "\n"


def documented_pages() -> list[str]:
    """The README and every page of `docs/` and the chart's README."""
    pages = ["README.md", "CONTRIBUTING.md", "charts/collectionflow-operator/README.md"]
    pages += sorted(str(path.relative_to(REPO)) for path in (REPO / "docs").glob("*.md"))
    return pages
