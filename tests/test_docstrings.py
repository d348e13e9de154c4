"""Every public name documents itself, in its source: ``help(polyloss.<name>)``, an IDE hover and the API
page show Args for every parameter of the signature, Returns, Raises, an Example and References (Google
style, as ``mkdocs.yml`` and the house style ask).

A parameter that several functions of one family take (``mode``, ``reduction``, ``eps``, ...) is described
by one paragraph, repeated word for word in each docstring; ``test_shared_parameters_read_alike`` keeps the
copies in step. The examples run here with nothing but what they import themselves, and again with their
module's globals in ``tests/test_snippets.py::test_docstring_examples_run``.
"""

from __future__ import annotations

import doctest
import inspect
import re
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest

import polyloss
from polyloss.segmentation._confusion import RegionOptions

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("Args", "Returns", "Raises", "Example", "References")
PUBLIC = {name: getattr(polyloss, name) for name in polyloss.__all__}
FUNCTIONS = {name: obj for name, obj in PUBLIC.items() if inspect.isfunction(obj)}

_REGION = ("y_pred", "y_true", *RegionOptions._fields)
# Families of functions whose shared parameters mean the same thing, and those parameters: each has one
# paragraph, repeated word for word in every member that takes it.
FAMILIES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "region losses": (("soft_confusion", "dice_loss", "jaccard_loss", "tversky_loss", "focal_tversky_loss",
                       "log_cosh_dice_loss", "mcc_loss", "generalized_dice_loss"), _REGION),
    "compound losses": (("dice_cross_entropy_loss", "dice_focal_loss", "combo_loss", "bce_jaccard_loss"), _REGION),
    "sigmoid pixel-wise losses": (
        ("binary_cross_entropy", "balanced_binary_cross_entropy", "sigmoid_focal_loss", "poly1_focal_loss"),
        ("y_pred", "y_true", "from_logits", "weight", "ignore_index", "class_axis", "reduction", "alpha", "gamma")),
    "softmax pixel-wise losses": (
        ("cross_entropy", "poly1_cross_entropy", "softmax_focal_loss"),
        ("y_pred", "y_true", "class_axis", "from_logits", "weight", "ignore_index", "label_smoothing", "reduction")),
    "lovasz losses": (("lovasz_hinge_loss", "lovasz_softmax_loss"), ("ignore_index",)),
    "boundary losses": (("boundary_loss", "hausdorff_dt_loss", "boundary_iou_loss", "soft_cldice_loss"),
                        ("y_pred", "mode", "class_axis", "from_logits", "ignore_index", "mask")),
    "topology losses": (("skeleton_recall_loss", "cl_cross_entropy_loss", "boundary_dou_loss"),
                        ("y_pred", "mode", "class_axis", "from_logits", "ignore_index", "per_image", "all_reduce")),
    "distance maps": (("distance_transform", "signed_distance_map", "unet_weight_map"),
                      ("mask", "sampling", "native")),
    "surface metrics": (("hausdorff_distance", "average_surface_distance", "surface_dice"),
                        ("pred_mask", "true_mask", "sampling", "spatial_ndim")),
    "overlap metrics": (("dice_score", "iou_score"),
                        ("pred", "true", "num_classes", "class_axis", "ignore_index", "include_background",
                         "per_image", "reduction")),
    "box losses": (("iou_loss", "giou_loss", "diou_loss", "ciou_loss", "eiou_loss"),
                   ("y_pred", "y_true", "box_format", "eps", "reduction")),
    "box regression losses": (("smooth_l1_loss", "huber_loss", "balanced_l1_loss"), ("y_pred", "y_true", "reduction")),
    "SSD": (("encode_boxes", "decode_boxes", "match_priors", "multibox_loss"),
            ("gt_boxes", "gt_labels", "gt_valid", "variances", "prior_format")),
    "rotated box losses": (("gwd_loss", "kld_loss", "probiou_loss", "kfiou_loss"),
                           ("y_pred", "y_true", "box_format", "weight", "reduction", "avg_factor")),
    "generalized focal losses": (("quality_focal_loss", "varifocal_loss", "distribution_focal_loss"), ("reduction",)),
}
# Where one member of a family gives a shared parameter its own text, and why.
OWN_TEXT = {
    ("generalized_dice_loss", "weight"): "the weights multiply Sudre's w_c instead of weighing a mean over classes",
    ("generalized_dice_loss", "reduction"): "one value per sample or per batch, not per class",
}


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


def documented_args(doc: str | None) -> dict[str, str]:
    """The ``Args:`` section of a Google-style docstring: each name (``**kwargs`` keeps its stars) with its
    paragraph, whitespace collapsed. A name is a line at the section's indentation; deeper lines continue it."""
    lines = inspect.cleandoc(doc or "").splitlines()
    try:
        start = lines.index("Args:") + 1
    except ValueError:
        return {}
    args: dict[str, list[str]] = {}
    indent = None
    for line in lines[start:]:
        if line.strip() and not line.startswith(" "):
            break  # the next section
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip())
        indent = depth if indent is None else indent
        m = re.match(r"(\**\w+):\s*(.*)", line.strip())
        if depth == indent and m:
            args[m[1]] = [m[2]]
        elif args and depth > indent:
            args[next(reversed(args))].append(line.strip())
        else:
            raise AssertionError(f"cannot read the Args line {line!r}")
    return {name: " ".join(" ".join(words).split()) for name, words in args.items()}


def parameters(fn: Callable[..., object]) -> list[str]:
    """The signature's parameter names, ``*args`` and ``**kwargs`` with their stars."""
    star = {inspect.Parameter.VAR_POSITIONAL: "*", inspect.Parameter.VAR_KEYWORD: "**"}
    return [star.get(p.kind, "") + p.name for p in inspect.signature(fn).parameters.values()]


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


def test_documented_args_reads_paragraphs() -> None:
    doc = '''Summary.

    Args:
        x: an array,
            of any shape.
        **options: passed on.

    Returns:
        An array.
    '''
    assert documented_args(doc) == {"x": "an array, of any shape.", "**options": "passed on."}
    assert documented_args("Summary.") == {}


@pytest.mark.parametrize("name", polyloss.__all__)
def test_public_docstring_has_every_section(name: str) -> None:
    missing = missing_sections(PUBLIC[name].__doc__)
    assert not missing, f"polyloss.{name}'s docstring lacks {', '.join(missing)}"


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_args_document_the_signature(name: str) -> None:
    """Args lists every parameter of the signature, in its order, and nothing else."""
    fn = FUNCTIONS[name]
    assert list(documented_args(fn.__doc__)) == parameters(fn), f"polyloss.{name}: Args and signature differ"


def test_families_name_shared_parameters() -> None:
    """Each family names public functions, and each parameter it lists is taken by two of them at least."""
    for family, (members, shared) in FAMILIES.items():
        assert set(members) <= set(FUNCTIONS), (family, set(members) - set(FUNCTIONS))
        for arg in shared:
            takers = [m for m in members if arg in parameters(FUNCTIONS[m])]
            assert len(takers) >= 2, f"{family}: {arg} is taken by {takers} only"
    assert all(fn in FUNCTIONS and arg in parameters(FUNCTIONS[fn]) for fn, arg in OWN_TEXT)


@pytest.mark.parametrize("family", FAMILIES)
def test_shared_parameters_read_alike(family: str) -> None:
    """A parameter shared in a family has one paragraph, the same in every member that takes it."""
    members, shared = FAMILIES[family]
    texts: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for name in members:
        for arg, text in documented_args(FUNCTIONS[name].__doc__).items():
            if arg in shared and (name, arg) not in OWN_TEXT:
                texts[arg][text].append(name)
    differ = {arg: dict(versions) for arg, versions in texts.items() if len(versions) > 1}
    assert not differ, "\n".join(
        f"{family}: {arg} reads differently:\n" + "\n".join(f"  {names}: {text}" for text, names in versions.items())
        for arg, versions in differ.items()
    )


def test_region_options_are_explicit_with_their_defaults() -> None:
    """Every loss that takes the region options shows each in its signature, in the record's order, with its
    default; the loss builds ``RegionOptions`` from them positionally, so the order matters."""
    fields = list(RegionOptions._fields)
    takers = [n for n, fn in FUNCTIONS.items() if set(fields) <= set(inspect.signature(fn).parameters)]
    assert len(takers) >= 11, takers  # seven region losses and four compounds
    for name in takers:
        params = inspect.signature(FUNCTIONS[name]).parameters
        assert [p for p in params if p in fields] == fields, name
        for field in fields:
            assert params[field].kind is inspect.Parameter.KEYWORD_ONLY, (name, field)
            assert params[field].default == RegionOptions._field_defaults[field], (name, field)


def test_no_function_hides_its_options() -> None:
    """Only a forwarder takes ``**kwargs``: the Keras adapter, which passes them on to the loss it wraps."""
    hiding = {n for n, fn in FUNCTIONS.items() if any(p.startswith("**") for p in parameters(fn))}
    assert hiding == {"keras_loss"}


def test_no_placeholder_in_the_sources() -> None:
    """Docstrings are written whole: no ``{{name}}`` template line is left in the package."""
    templated = [f"{path.relative_to(ROOT)}:{i}" for path in sorted((ROOT / "polyloss").rglob("*.py"))
                 for i, line in enumerate(path.read_text().splitlines(), 1) if "{{" in line]
    assert not templated, templated


@pytest.mark.parametrize("name", polyloss.__all__)
def test_example_is_self_contained(name: str) -> None:
    """The Example runs with empty globals: its setup lines are in the docstring, not in another file."""
    test = doctest.DocTestParser().get_doctest(PUBLIC[name].__doc__ or "", {}, name, None, 0)
    assert test.examples, f"polyloss.{name} has no >>> example"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    out: list[str] = []
    runner.run(test, out=out.append, clear_globs=True)
    assert runner.summarize(verbose=False).failed == 0, "".join(out)
