"""Docstring paragraphs shared by a family of losses, written once and filled in at import.

A public docstring names a shared paragraph by a line that holds only ``{{name}}``; ``fill_doc``
replaces that line with the paragraph, re-indented to the line's indentation, so ``help()``, the
doctests and the API page (mkdocstrings inspects the imported objects, ``force_inspection`` in
mkdocs.yml) all read the whole text. An unknown name fails at import, not in front of a user.

>>> @fill_doc({"args": "Args:\\n    x: an array."})
... def f(x):
...     '''Summary.
...
...     {{args}}
...     '''
>>> print(f.__doc__.strip())
Summary.
<BLANKLINE>
    Args:
        x: an array.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TypeVar

F = TypeVar("F", bound=Callable[..., object])

_PLACEHOLDER = re.compile(r"^([ \t]*)\{\{(\w+)\}\}[ \t]*$", re.M)


def fill_doc(paragraphs: Mapping[str, str]) -> Callable[[F], F]:
    """Decorator: each ``{{name}}`` line of the docstring becomes ``paragraphs[name]``, indented alike."""

    def fill(match: re.Match[str]) -> str:
        indent, name = match[1], match[2]
        if name not in paragraphs:
            raise KeyError(f"docstring placeholder {{{{{name}}}}} has no paragraph; known: {sorted(paragraphs)}")
        return "\n".join(indent + line if line else "" for line in paragraphs[name].strip("\n").splitlines())

    def decorate(fn: F) -> F:
        fn.__doc__ = _PLACEHOLDER.sub(fill, fn.__doc__ or "")
        return fn

    return decorate
