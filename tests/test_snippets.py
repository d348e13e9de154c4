"""Every Python block of README.md and docs/*.md runs as written; the docstrings' examples run; the
measured numbers of README.md and docs/benchmarks.md equal the files the measuring scripts wrote.

Each ```python block runs alone in a fresh interpreter, from an empty folder, as a reader would paste
it. A block that imports a framework this session lacks is skipped with that reason;
``test_every_block_runs_in_some_cpu_session`` makes sure each block has a CPU nox session that runs it
(``NOX_CPU_SESSIONS`` mirrors the frameworks ``noxfile.py`` installs). Keras blocks set
``KERAS_BACKEND`` themselves, so that backend's framework is one of their requirements.
"""

from __future__ import annotations

import ast
import doctest
import importlib
import importlib.util
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import polyloss

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# The third-party frameworks each CPU session of noxfile.py installs beyond NumPy and the test tools.
NOX_CPU_SESSIONS = {
    "tests-numpy": {"array_api_strict"},
    "tests-torch": {"torch", "keras"},
    "tests-jax": {"jax", "optax", "flax", "keras"},
}
ALWAYS_THERE = {"polyloss", "numpy", "array_api_compat", *sys.stdlib_module_names}
_BLOCK = re.compile(r"^```python\n(.*?)^```\n", re.S | re.M)
# a ```text block after a code block, with at most one short paragraph of prose between them (no heading, no fence)
_OUTPUT = re.compile(r"\n*(?:(?!```|#)[^\n]+\n){0,4}\n*```text\n(.*?)^```", re.S | re.M)
_KERAS_BACKEND = re.compile(r"""KERAS_BACKEND["']\s*(?:\]\s*=|,)\s*["'](\w+)["']""")


def _blocks() -> list[tuple[str, str, str | None]]:
    """(id, code, output) of every ```python block, the id naming the file and the block's first line.

    ``output`` is a ```text block right after the code, or after one short paragraph (at most four
    lines, no heading, no other fence): what the block prints, which ``test_block_runs_as_written``
    compares with its stdout.
    """
    found = []
    for path in DOCUMENTS:
        text = path.read_text()
        for m in _BLOCK.finditer(text):
            line = text.count("\n", 0, m.start()) + 2
            out = _OUTPUT.match(text, m.end())
            found.append((f"{path.relative_to(ROOT)}:{line}", m.group(1), out.group(1) if out else None))
    return found


BLOCKS = _blocks()


def requirements(code: str) -> set[str]:
    """The top-level modules a block imports, plus the framework of the Keras backend it selects."""
    needed = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            needed |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            needed.add(node.module.split(".")[0])
    needed |= set(_KERAS_BACKEND.findall(code))
    return needed


def test_the_documents_have_blocks() -> None:
    assert len(BLOCKS) >= 5, [name for name, _, _ in BLOCKS]  # README's NumPy, torch, JAX, Keras; conventions.md


@pytest.mark.parametrize(("name", "code", "output"), BLOCKS, ids=[name for name, _, _ in BLOCKS])
def test_every_block_runs_in_some_cpu_session(name: str, code: str, output: str | None) -> None:
    frameworks = requirements(code) - ALWAYS_THERE
    sessions = [s for s, installed in NOX_CPU_SESSIONS.items() if frameworks <= installed]
    assert sessions, f"{name} needs {sorted(frameworks)}, which no CPU nox session installs together"


@pytest.mark.parametrize(("name", "code", "output"), BLOCKS, ids=[name for name, _, _ in BLOCKS])
def test_block_runs_as_written(name: str, code: str, output: str | None, tmp_path: Path) -> None:
    missing = sorted(m for m in requirements(code) if importlib.util.find_spec(m) is None)
    if missing:
        pytest.skip(f"{name} needs {', '.join(missing)}, not installed in this session")
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}  # the block chooses, as for a reader
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    assert proc.returncode == 0, f"{name} failed:\n{code}\n{proc.stderr[-3000:]}"
    if output is not None:  # the document shows what the block prints
        assert proc.stdout == output, f"{name} printed\n{proc.stdout}\nbut the document says\n{output}"


def test_printed_output_follows_its_block() -> None:
    """The ```text block after a code block is taken as its output; one after another fence is not."""
    doc = "```python\nprint(1)\n```\n\n`print` prints:\n\n```text\n1\n```\n```python\nx = 2\n```\n```bash\nls\n```\n"
    doc += "```text\nnot output\n```\n"
    found = [(m.group(1), (o := _OUTPUT.match(doc, m.end())) and o.group(1)) for m in _BLOCK.finditer(doc)]
    assert found == [("print(1)\n", "1\n"), ("x = 2\n", None)]


# --------------------------------------------------------------------------- #
# the docstrings' examples
# --------------------------------------------------------------------------- #

MODULES = sorted(m.name for m in pkgutil.walk_packages(polyloss.__path__, "polyloss."))
# private kernel modules that import their framework at import time (the package imports them lazily)
FRAMEWORK_MODULES = {"polyloss._backend.torch_fused": "torch"}


@pytest.mark.parametrize("module", ["polyloss", *MODULES])
def test_docstring_examples_run(module: str) -> None:
    """The ``>>>`` examples of every docstring of the module (public and private) print what they show."""
    if module in FRAMEWORK_MODULES:
        framework = FRAMEWORK_MODULES[module]
        pytest.importorskip(framework, reason=f"{module} imports {framework}, which this session lacks")
    mod = importlib.import_module(module)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = [t for t in finder.find(mod, module) if t.examples]  # none yet: nothing to run, nothing to fail
    out: list[str] = []
    for test in tests:
        runner.run(test, out=out.append)
    failed = runner.summarize(verbose=False).failed
    assert failed == 0, "".join(out)


# --------------------------------------------------------------------------- #
# the measured numbers of README.md and docs/benchmarks.md
# --------------------------------------------------------------------------- #


def test_readme_numbers_equal_their_sources() -> None:
    """Each marked region of README.md and docs/benchmarks.md is what tools/readme_numbers.py renders."""
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import readme_numbers
    finally:
        sys.path.remove(str(ROOT / "tools"))
    found = []
    for path, names in readme_numbers.DOCUMENTS.items():
        text = path.read_text()
        have = readme_numbers.regions(text)
        assert set(have) == set(names), f"{path.name} lost or gained a marked region"
        want = readme_numbers.regions(readme_numbers.rewrite(text))
        for name in have:
            assert have[name] == want[name], f"{path.name} region {name} is stale: run python tools/readme_numbers.py"
        found += names
    assert sorted(found) == sorted(readme_numbers.RENDERERS), "a region is rendered into no document, or twice"


def test_benchmark_rows_read_single_runs_and_ranges() -> None:
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import readme_numbers
    finally:
        sys.path.remove(str(ROOT / "tools"))
    text = """### Section
| case | backend | implementation | median ms | ours / this | peak extra MiB |
|---|---|---|---:|---:|---:|
| c1 | torch eager | polyloss | 1.0-1.1 |  | 3 |
| c1 | torch eager | peer | 1.0-1.1 | 1.04-1.05x | 3 |
| c2 | jax.jit | other | 2.0 | 0.50x | 3 |
"""
    assert readme_numbers._bench_rows(text) == [
        ("Section", "c1", "torch eager", "peer", 1.04, 1.05, "1.04-1.05x"),
        ("Section", "c2", "jax.jit", "other", 0.5, 0.5, "0.50x"),
    ]
