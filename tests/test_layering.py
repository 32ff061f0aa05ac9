"""The package's layering, checked on the source: which part of ``course_utils`` may import which.

Every module of the package is read with :mod:`ast` (nothing is imported or run) and placed in one layer of
:data:`LAYERS`; :data:`RULES` say which layers, and which third-party packages, a layer must not import:

* metrics imports no torch and nothing of the package (its numbers depend on nothing but its inputs);
* learning imports neither vision nor data (classifiers and normalisers work on arrays, whatever made them);
* data imports neither vision, learning nor search (a dataset is files and labels, whatever is done with
  them);
* nothing in the core imports plotting, widgets or commands (the library runs headless; the command line, the
  notebooks and the figures are built on it, never the other way round).

Every import statement counts, wherever it is: at the top of a module, inside a function (a lazy import is
still a dependency, merely a deferred one: when the function runs, the import happens) or in an
``if TYPE_CHECKING:`` block (an annotation names a dependency too). The rules are checked on direct imports,
so a rule's forbidden list also names the layers that would bring the forbidden ones in (``pipelines`` imports
vision, so data may not import ``pipelines`` either).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = "course_utils"
PACKAGE_DIR = Path(__file__).resolve().parents[1] / PACKAGE

# Each module's layer, by its name inside the package ("__init__" is course_utils/__init__.py itself). A name
# ending in ".*" places a package and everything under it, for packages whose files all do one kind of work;
# other names place one module. A module no entry places fails test_every_module_has_a_layer: add it where it
# belongs.
LAYERS: dict[str, tuple[str, ...]] = {
    # the evaluation measures: numpy and scikit-learn only, so every number can be checked by hand
    "metrics": ("metrics",),
    # settings and facts everything may read: paths, device and seeds, the paper's published numbers
    "foundation": ("__init__", "config", "paper"),
    # datasets: files, splits, labels and ground truth, loaders, downloads, the demo sets, subsets
    "data": ("datasets.*",),
    # pixels to features: image decoding, the paper's views, networks, inference engines, the feature store, pooling
    "vision": ("imageio", "augment", "backbones", "engines", "features", "feature_store", "pooling"),
    # learning on feature arrays: the linear SVMs and C selection, feature normalisation
    "learning": ("classify", "normalize"),
    # instance search on feature arrays: nearest neighbours, whitening, patches, the retrieval protocols
    "search": ("retrieval.search", "retrieval.postprocess", "retrieval.patches", "retrieval.evaluate"),
    # compositions of data + vision + learning/search: experiments, the retrieval pipeline, scaled-out runs
    "pipelines": ("experiments", "retrieval", "retrieval.pipeline", "scale.*"),
    # figures (matplotlib, seaborn)
    "plotting": ("viz",),
    # a run's records and what is read from them: results.json, report.md and its figures, the paper's claims
    "reports": ("report", "claims"),
    # interactive notebook controls (ipywidgets)
    "widgets": ("widgets", "quiz"),
    # the notebooks' set-up facade, the checked exercises, the slide export
    "teaching": ("notebook", "exercises.*", "slides"),
    # programs run from a shell: `python -m course_utils ...`, benchmarks, notebook and cache tooling
    "commands": (
        "__main__", "cli", "reproduce", "demo", "predict", "photo_search", "warm", "student", "bench.*",
    ),
}
CORE = ("metrics", "foundation", "data", "vision", "learning", "search", "pipelines")
PLOTTING_PACKAGES = ("matplotlib", "seaborn")
WIDGET_PACKAGES = ("ipywidgets", "IPython")
TORCH_PACKAGES = ("torch", "torchvision", "timm")


@dataclass(frozen=True)
class Rule:
    """``layers`` import no module of the ``forbidden`` layers (``"*"``: any) nor third-party ``packages``."""

    text: str
    layers: tuple[str, ...]
    forbidden: tuple[str, ...]
    packages: tuple[str, ...] = ()


RULES = (
    Rule("metrics imports no torch and nothing of the package", ("metrics",), ("*",), TORCH_PACKAGES),
    Rule("learning imports neither vision nor data", ("learning",), ("vision", "data", "pipelines")),
    Rule("data imports neither vision, learning nor search", ("data",),
         ("vision", "learning", "search", "pipelines")),
    # reports and teaching count as plotting here: report.py draws its figures, notebook.py shows widgets
    Rule("nothing in the core imports plotting, widgets or commands", CORE,
         ("plotting", "reports", "widgets", "teaching", "commands"), PLOTTING_PACKAGES + WIDGET_PACKAGES),
)

# Imports that break a rule for a stated reason: (module, imported name) -> why. Each must still exist.
EXCEPTIONS: dict[tuple[str, str], str] = {
    ("course_utils.datasets.demo", "matplotlib.cbook"):
        "the demo sets cut photographs out of the sample images shipped inside matplotlib's wheel "
        "(cbook.get_sample_data); it reads files, it draws nothing",
}


@dataclass(frozen=True)
class Module:
    name: str  # dotted, e.g. "course_utils.datasets.base"
    path: str  # for messages, e.g. "course_utils/datasets/base.py"
    source: str
    is_package: bool


@dataclass(frozen=True)
class Import:
    target: str  # a module of the package, or "package.name" for a third-party ``from package import name``
    line: int


def read_package(directory: Path = PACKAGE_DIR) -> list[Module]:
    """Every ``.py`` file under ``directory`` as a :class:`Module`."""
    modules = []
    for path in sorted(directory.rglob("*.py")):
        parts = path.relative_to(directory.parent).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        shown = path.relative_to(directory.parent).as_posix()
        modules.append(Module(name, shown, path.read_text(encoding="utf-8"), is_package))
    return modules


def imports_of(module: Module, known: set[str]) -> list[Import]:
    """Every import in ``module``'s source, at any depth, relative ones resolved against ``known`` modules.

    ``from x import y`` is an import of module ``x.y`` when that is a module of the package, else of ``x``.
    """
    package = module.name.split(".") if module.is_package else module.name.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(module.source, filename=module.path)):
        if isinstance(node, ast.Import):
            found += [Import(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if node.level - 1 >= len(package):
                    raise ValueError(f"{module.path}:{node.lineno}: relative import goes above {PACKAGE}")
                parent = package[: len(package) - (node.level - 1)]
                base = ".".join(parent + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                qualified = f"{base}.{alias.name}"
                internal = base == PACKAGE or base.startswith(PACKAGE + ".")
                found.append(Import(qualified if qualified in known or not internal else base, node.lineno))
    return found


def table_name(name: str) -> str:
    """Module ``name`` as :data:`LAYERS` writes it (``course_utils.datasets.base`` -> ``datasets.base``)."""
    return "__init__" if name == PACKAGE else name.removeprefix(PACKAGE + ".")


def layer_of(name: str) -> str | None:
    """The layer :data:`LAYERS` places module ``name`` in (the most specific entry wins), or None."""
    relative = table_name(name)
    best, best_length = None, -1
    for layer, entries in LAYERS.items():
        for entry in entries:
            stem = entry.removesuffix(".*")
            covers = relative == stem or (entry.endswith(".*") and relative.startswith(stem + "."))
            if covers and len(stem) > best_length:
                best, best_length = layer, len(stem)
    return best


def _module_of(target: str, known: set[str]) -> str:
    """The package module an import target names (``course_utils.x.attr`` -> ``course_utils.x``)."""
    while target not in known and "." in target:
        target = target.rsplit(".", 1)[0]
    return target


def unplaced(modules: Iterable[Module]) -> list[str]:
    """A message for each module no entry of :data:`LAYERS` places."""
    return [
        f"{m.path}: module {m.name} is in no layer of LAYERS in tests/test_layering.py; place it: add its "
        "name to the layer whose rules it keeps (see the comment above each layer)"
        for m in modules
        if layer_of(m.name) is None
    ]


def violations(modules: Sequence[Module]) -> list[str]:
    """A message for each import that breaks one of :data:`RULES` (unplaced modules are skipped here)."""
    known = {m.name for m in modules}
    messages = []
    for module in modules:
        layer = layer_of(module.name)
        rules = [rule for rule in RULES if layer in rule.layers]
        for imp in imports_of(module, known) if rules else []:
            internal = imp.target == PACKAGE or imp.target.startswith(PACKAGE + ".")
            target = _module_of(imp.target, known) if internal else imp.target
            target_layer = layer_of(target) if internal else None
            for rule in rules:
                if internal:
                    broken = "*" in rule.forbidden or target_layer in rule.forbidden
                    what = f"{target} (layer {target_layer})"
                else:
                    broken = target.split(".")[0] in rule.packages
                    what = target
                if broken and (module.name, target) not in EXCEPTIONS:
                    messages.append(f"{module.path}:{imp.line}: {module.name} (layer {layer}) imports "
                                    f"{what}, which breaks the rule '{rule.text}'")
    return messages


# ------------------------------------------------------------------------------------------------ the package
def test_every_module_has_a_layer():
    assert unplaced(read_package()) == []


def test_every_layer_entry_names_a_module():
    names = {table_name(m.name) for m in read_package()}
    stale = [f"{entry} ({layer})" for layer, entries in LAYERS.items() for entry in entries
             if entry.removesuffix(".*") not in names]
    assert stale == [], f"LAYERS places modules that do not exist (moved or removed?); fix {stale}"


def test_the_package_keeps_its_layering():
    problems = violations(read_package())
    assert problems == [], "\n".join(["imports that break the layering (move the code or the import):",
                                      *problems])


def test_every_exception_is_still_needed():
    modules = read_package()
    known = {m.name for m in modules}
    present = {(m.name, imp.target) for m in modules for imp in imports_of(m, known)}
    stale = sorted(set(EXCEPTIONS) - present)
    assert stale == [], f"EXCEPTIONS lists imports that no longer exist; remove them: {stale}"


# ------------------------------------------------------------------------------------------------ the checker
def _violations_in(name: str, source: str) -> list[str]:
    """What :func:`violations` says about module ``name`` once its source is ``source``."""
    modules = read_package()
    old = next(m for m in modules if m.name == name)
    replaced = [*(m for m in modules if m.name != name), Module(name, old.path, source, old.is_package)]
    return [message for message in violations(replaced) if message.startswith(old.path + ":")]


def test_the_checker_catches_a_lazy_import_of_vision_in_learning():
    source = "import numpy as np\n\n\ndef fit(X):\n    from .features import extract\n    return extract\n"
    found = _violations_in("course_utils.classify", source)
    assert found == [
        "course_utils/classify.py:5: course_utils.classify (layer learning) imports course_utils.features "
        "(layer vision), which breaks the rule 'learning imports neither vision nor data'"
    ]


def test_the_checker_catches_torch_and_package_imports_in_metrics():
    found = _violations_in("course_utils.metrics", "import torch.nn\nfrom . import config\n")
    assert found == [
        "course_utils/metrics.py:1: course_utils.metrics (layer metrics) imports torch.nn, which breaks the "
        "rule 'metrics imports no torch and nothing of the package'",
        "course_utils/metrics.py:2: course_utils.metrics (layer metrics) imports course_utils.config (layer "
        "foundation), which breaks the rule 'metrics imports no torch and nothing of the package'",
    ]


def test_the_checker_catches_data_importing_search_and_the_core_importing_plots_and_commands():
    source = "from ..retrieval.search import knn\nimport seaborn\nfrom course_utils import cli\n"
    found = _violations_in("course_utils.datasets.base", source)
    assert found == [
        "course_utils/datasets/base.py:1: course_utils.datasets.base (layer data) imports "
        "course_utils.retrieval.search (layer search), which breaks the rule "
        "'data imports neither vision, learning nor search'",
        "course_utils/datasets/base.py:2: course_utils.datasets.base (layer data) imports seaborn, which "
        "breaks the rule 'nothing in the core imports plotting, widgets or commands'",
        "course_utils/datasets/base.py:3: course_utils.datasets.base (layer data) imports course_utils.cli "
        "(layer commands), which breaks the rule 'nothing in the core imports plotting, widgets or commands'",
    ]


def test_an_excepted_import_is_allowed_only_where_it_is_excepted():
    found = _violations_in("course_utils.datasets.folder", "from matplotlib import cbook\n")
    assert found == [
        "course_utils/datasets/folder.py:1: course_utils.datasets.folder (layer data) imports "
        "matplotlib.cbook, which breaks the rule 'nothing in the core imports plotting, widgets or commands'"
    ]


def test_a_new_module_must_be_placed():
    new = Module("course_utils.shortcuts", "course_utils/shortcuts.py", "from . import viz\n", False)
    assert unplaced([new]) == [
        "course_utils/shortcuts.py: module course_utils.shortcuts is in no layer of LAYERS in "
        "tests/test_layering.py; place it: add its name to the layer whose rules it keeps (see the comment "
        "above each layer)"
    ]
    # a new file inside a package placed as a whole takes that package's layer
    assert layer_of("course_utils.datasets.new_loader") == "data"
    assert layer_of("course_utils.retrieval.new") is None  # retrieval's modules are placed one by one


@pytest.mark.parametrize(("importer", "source", "target"), [
    ("course_utils.classify", "from . import config", "course_utils.config"),
    ("course_utils.datasets.base", "from .. import paper", "course_utils.paper"),
    ("course_utils.datasets.base", "from .images import file_digest", "course_utils.datasets.images"),
    ("course_utils.datasets", "from . import base", "course_utils.datasets.base"),
    ("course_utils.__main__", "from . import __version__", "course_utils"),
    ("course_utils.viz", "import course_utils.metrics as m", "course_utils.metrics"),
    ("course_utils.viz", "from sklearn.metrics import roc_auc_score", "sklearn.metrics.roc_auc_score"),
])
def test_imports_are_resolved_to_package_modules(importer, source, target):
    module = next(m for m in read_package() if m.name == importer)
    known = {m.name for m in read_package()}
    replaced = Module(module.name, module.path, source, module.is_package)
    assert [imp.target for imp in imports_of(replaced, known)] == [target]
