"""Check the built documentation site shows the docstrings' parameters as tables.

    python tools/check_docs.py site       # after `mkdocs build --site-dir site` (what `nox -s docs` runs)

For every public function whose docstring has an ``Args:`` section, its entry on the API page must hold
a parameter table (mkdocstrings' ``docstring_section_style: table``) listing each documented argument.
Exit status 1 with the offenders, or when no public function has an ``Args:`` section to check.
"""

from __future__ import annotations

import html
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import polyloss  # noqa: E402


def documented_args(doc: str) -> list[str]:
    """The argument names of a Google-style ``Args:`` section (empty when there is none)."""
    m = re.search(r"^(\s*)Args:\s*\n((?:\1\s+.*\n|\s*\n)+)", doc + "\n", re.M)
    if not m:
        return []
    indent = min(len(line) - len(line.lstrip()) for line in m[2].splitlines() if line.strip())
    return [re.match(r"\**(\w+)", line.strip())[1] for line in m[2].splitlines()
            if line.strip() and len(line) - len(line.lstrip()) == indent]


def entry(page: str, anchor: str) -> str | None:
    """The HTML of the API entry with ``id=anchor``, up to the next entry's heading."""
    start = page.find(f'id="{anchor}"')
    if start < 0:
        return None
    end = page.find('<div class="doc doc-object doc-function">', start + 1)
    return page[start:end if end > 0 else len(page)]


def main(site: Path) -> int:
    page = (site / "api" / "index.html").read_text()
    problems, checked = [], []
    for name in polyloss.__all__:
        obj = getattr(polyloss, name)
        args = documented_args(obj.__doc__ or "")
        if not args:
            continue
        checked.append(name)
        html_entry = entry(page, f"{obj.__module__}.{name}")
        if html_entry is None:
            problems.append(f"{name}: no entry {obj.__module__}.{name} on the API page")
            continue
        table = re.search(r"Parameters:.*?(<table.*?</table>)", html_entry, re.S)
        if table is None:
            problems.append(f"{name}: its API entry has no parameter table")
            continue
        cells = html.unescape(re.sub(r"<[^>]+>", " ", table[1]))
        problems += [f"{name}: argument {a} missing from its parameter table" for a in args if a not in cells.split()]
    if not checked:
        problems.append("no public function has an Args: section yet, so no parameter table could be checked")
    for p in problems:
        print(f"check_docs: {p}", file=sys.stderr)
    if not problems:
        print(f"check_docs: parameter tables on the API page for all {len(checked)} functions with Args sections")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "site")))
