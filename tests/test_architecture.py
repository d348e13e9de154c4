"""The import rules of ``docs/architecture.md``, read from the source with ``ast`` (nothing is imported).

Layers, from the bottom: ``polyloss._backend`` (dispatch, the generic core, one
module per framework), ``polyloss._core`` (input layer, checks, reductions,
typing), the private kernels of each family (``segmentation/_*.py``,
``detection/_*.py``), the public family modules, and ``polyloss/__init__.py``.

(a) imports only go down (or sideways within a layer): ``_backend`` imports
    nothing of polyloss above it, ``_core`` only ``_backend`` and itself;
(b) a private module never imports a public one;
(c) only ``polyloss/_backend/`` names a framework (an import, or a
    ``sys.modules`` lookup), with the exceptions listed below and their reasons;
(d) at most 20 modules sit directly in ``polyloss/``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "polyloss"
FRAMEWORKS = {"torch", "jax", "cupy", "cupyx", "scipy", "numpy"}

# (module, framework) -> why the module may name the framework outside ``_backend``
FRAMEWORK_EXCEPTIONS = {
    ("polyloss.segmentation.topology", "numpy"): "tubed_skeleton is a host-side dataset tool (scikit-image's "
    "skeletonize on NumPy label maps, run once per label map): it never sees a framework tensor or a trace",
    ("polyloss.segmentation.topology", "scipy"): "tubed_skeleton dilates the skeleton with scipy.ndimage (as above)",
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _layer(module: str) -> int:
    """0 ``_backend``, 1 ``_core``, 2 a family's private kernels, 3 a public module, 4 the package's ``__init__``."""
    parts = module.split(".")
    if module == "polyloss":
        return 4
    if parts[1] == "_backend":
        return 0
    if parts[1] == "_core":
        return 1
    return 2 if _is_private(module) else 3


def _is_private(module: str) -> bool:
    """An underscore name anywhere below ``polyloss`` (``segmentation._edt``, anything under ``_core``/``_backend``)."""
    return any(part.startswith("_") for part in module.split(".")[1:])


def _resolve(module: str, node: ast.ImportFrom) -> list[str]:
    """The polyloss modules an ``ImportFrom`` loads: ``from X import name`` is ``X.name`` when that is a module."""
    if node.level:
        package = module if MODULES[module].name == "__init__.py" else module.rsplit(".", 1)[0]
        parts = package.split(".")
        base = ".".join(parts[: len(parts) - node.level + 1])
        source = f"{base}.{node.module}" if node.module else base
    else:
        source = node.module or ""
    if source.split(".")[0] != "polyloss":
        return []
    return [f"{source}.{a.name}" if f"{source}.{a.name}" in MODULES else source for a in node.names]


def _imports(module: str) -> list[tuple[int, str]]:
    """``(line, imported polyloss module)`` for every import of ``module``, at any depth (lazy ones too)."""
    tree = ast.parse(MODULES[module].read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            found += [(node.lineno, target) for target in _resolve(module, node)]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "polyloss"]
    return found


def _frameworks(module: str) -> list[tuple[int, str]]:
    """``(line, framework)`` for every import of a framework and every ``sys.modules[...]`` / ``.get(...)`` of one."""
    tree = ast.parse(MODULES[module].read_text())
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names = [node.module]
        elif isinstance(node, ast.Subscript | ast.Call) and "sys.modules" in ast.unparse(node):
            key = node.slice if isinstance(node, ast.Subscript) else (node.args[0] if node.args else None)
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                names = [key.value]
        found += [(node.lineno, n.split(".")[0]) for n in names if n.split(".")[0] in FRAMEWORKS]
    return found


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_only_go_down(module):
    """(a): no import reaches a higher layer; ``_core`` imports only ``_backend``; ``_backend`` only itself."""
    here = _layer(module)
    upward = [f"line {line}: {target}" for line, target in _imports(module) if _layer(target) > here]
    assert not upward, f"{module} (layer {here}) imports upward: {upward}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _is_private(m)))
def test_private_never_imports_public(module):
    """(b): a kernel, ``_core`` or ``_backend`` module imports only private modules (and the packages holding them)."""
    public = [f"line {line}: {target}" for line, target in _imports(module)
              if not _is_private(target) and MODULES[target].name != "__init__.py"]
    assert not public, f"{module} is private and imports public modules: {public}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _layer(m) > 0))
def test_only_the_backend_names_a_framework(module):
    """(c): framework names live in ``polyloss/_backend/``; elsewhere only the listed, reasoned exceptions."""
    named = [f"line {line}: {fw}" for line, fw in _frameworks(module) if (module, fw) not in FRAMEWORK_EXCEPTIONS]
    assert not named, f"{module} names a framework outside polyloss/_backend: {named}"


def test_framework_exceptions_are_real_modules():
    """Each exception names a module of the package (a renamed module must take its exception along)."""
    assert {module for module, _ in FRAMEWORK_EXCEPTIONS} <= set(MODULES)


def test_few_modules_directly_in_the_package():
    """(d): the families live in folders; at most 20 modules directly in ``polyloss/``."""
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= 20, top


def test_the_rules_see_imports():
    """The reader itself: it resolves relative imports (``from . import x``, ``from ..y import z``) to modules."""
    imports = dict((target, line) for line, target in _imports("polyloss.detection.ssd"))
    assert "polyloss.detection._ssd" in imports  # from . import _ssd as ssd
    assert "polyloss._core.reduce" in imports  # from .._core.reduce import ...
    assert "polyloss._backend" in imports  # from .._backend import Array, ...
    assert _layer("polyloss._backend.torch") == 0 and _layer("polyloss.segmentation._edt") == 2
    assert _frameworks("polyloss._backend.torch")  # sys.modules["torch"]
