"""Every public name documents itself: ``help(polyloss.<name>)`` shows Args, Returns, Raises, an Example
and References (Google style, as ``mkdocs.yml`` and the house style ask).

The examples themselves run in ``tests/test_snippets.py::test_docstring_examples_run``.
"""

from __future__ import annotations

import inspect
import re

import pytest

import polyloss

SECTIONS = ("Args", "Returns", "Raises", "Example", "References")
def missing_sections(doc: str | None) -> list[str]:
    """The sections of ``SECTIONS`` that ``doc`` lacks (``Example`` also accepts ``Examples``).

    A section counts when its header stands alone on a line (``Args:``) and something follows it.
    """
    doc = inspect.cleandoc(doc or "")
    missing = []
    for section in SECTIONS:
        header = r"Examples?" if section == "Example" else re.escape(section)
        if not re.search(rf"^{header}:[ \t]*\n[ \t]*\S", doc, re.M):
            missing.append(section)
    return missing


def test_missing_sections_reads_google_style() -> None:
    doc = '''Summary.

    Args:
        x: an array.

    Returns:
        An array.

    Raises:
        ValueError: on bad input.

    Examples:
        >>> 1 + 1
        2

    References:
        https://arxiv.org/abs/1234.5678
    '''
    assert missing_sections(doc) == []
    assert missing_sections("Summary.\n\nArgs:\n    x: an array.\n") == ["Returns", "Raises", "Example", "References"]
    assert missing_sections(None) == list(SECTIONS)


@pytest.mark.parametrize("name", polyloss.__all__)
def test_public_docstring_has_every_section(name: str) -> None:
    missing = missing_sections(getattr(polyloss, name).__doc__)
    assert not missing, f"polyloss.{name}'s docstring lacks {', '.join(missing)}"
