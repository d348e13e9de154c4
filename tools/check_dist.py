"""Build the wheel and sdist into a temporary folder and check what a package index would see.

    python tools/check_dist.py            # what `nox -s build` runs (needs `build` and `twine` installed)

Checks: ``python -m build`` succeeds; ``twine check --strict`` accepts both files (metadata, README
rendering); the wheel holds ``polyloss/py.typed`` and its metadata names the distribution, the version of
``polyloss/__init__.py``, the extras, the license and the project URLs; the sdist holds the license and
``py.typed``. Exit status 1 with the reasons otherwise.
"""

from __future__ import annotations

import email.parser
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def check(dist: Path) -> list[str]:
    """Problems with the built files in ``dist`` (empty when all is well)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    version = re.search(r'^__version__ = "([^"]+)"', (ROOT / "polyloss" / "__init__.py").read_text(), re.M)[1]
    wheels, sdists = sorted(dist.glob("*.whl")), sorted(dist.glob("*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        return [f"expected one wheel and one sdist in {dist}, found {[p.name for p in dist.iterdir()]}"]
    problems = []
    with zipfile.ZipFile(wheels[0]) as whl:
        names = whl.namelist()
        meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        meta = email.parser.Parser().parsestr(whl.read(meta_name).decode())
    if "polyloss/py.typed" not in names:
        problems.append("the wheel lacks polyloss/py.typed")
    if not any(n.endswith(".dist-info/licenses/LICENSE") for n in names):
        problems.append("the wheel lacks its LICENSE file")
    wanted = {"Name": project["name"], "Version": version, "License-Expression": project["license"]}
    problems += [f"wheel METADATA {k}: expected {v!r}, found {meta[k]!r}" for k, v in wanted.items() if meta[k] != v]
    extras, declared = set(meta.get_all("Provides-Extra") or []), set(project["optional-dependencies"])
    if extras != declared:
        problems.append(f"wheel extras {sorted(extras)} differ from pyproject's {sorted(declared)}")
    urls = {u.split(",")[0].strip() for u in meta.get_all("Project-URL") or []}
    if urls != set(project["urls"]):
        problems.append(f"wheel Project-URLs {sorted(urls)} differ from pyproject's {sorted(project['urls'])}")
    if not meta.get_all("Classifier"):
        problems.append("the wheel has no classifiers")
    with tarfile.open(sdists[0]) as sdist:
        members = {m.name.split("/", 1)[-1] for m in sdist.getmembers()}
    problems += [f"the sdist lacks {f}" for f in ("LICENSE", "README.md", "polyloss/py.typed") if f not in members]
    return problems


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        dist = Path(tmp)
        subprocess.run([sys.executable, "-m", "build", "--outdir", str(dist), str(ROOT)], check=True)
        subprocess.run([sys.executable, "-m", "twine", "check", "--strict", *map(str, sorted(dist.iterdir()))],
                       check=True)
        problems = check(dist)
        for p in problems:
            print(f"check_dist: {p}", file=sys.stderr)
        if not problems:
            print(f"check_dist: {', '.join(p.name for p in sorted(dist.iterdir()))} pass twine check and hold "
                  "py.typed, LICENSE, the version, extras and URLs")
        return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
