"""mkdocs hooks: the site's home page is README.md, whose links point into ``docs/``.

``docs/index.md`` includes README.md (``--8<-- "README.md"``). From the repository root (GitHub, a
clone) the README's ``docs/<page>.md`` links are right; on the site the home page lives in ``docs/``
itself. The include is expanded by the Markdown extension after the page hooks run, so this hook
expands it first and drops the ``docs/`` prefix of the links. Listed under ``hooks`` in mkdocs.yml.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

_INCLUDE = re.compile(r'^--8<-- "README\.md"$', re.M)
_DOCS_LINK = re.compile(r"\]\(docs/")


def on_page_markdown(markdown: str, page: Any, config: Any, **_: Any) -> str:
    """The home page: README.md in place of its include line, its ``](docs/x.md)`` links as ``](x.md)``."""
    if page.file.src_uri != "index.md":
        return markdown
    readme = (Path(config.config_file_path).parent / "README.md").read_text()
    return _INCLUDE.sub(lambda _: _DOCS_LINK.sub("](", readme), markdown)
