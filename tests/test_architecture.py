"""The import graph of speechprune runs one way: every package imports only packages below it in
`LAYERS`, no modules or packages import each other in a cycle, inference never reaches up into
training or reports, and the `predict` command not into training (docs/architecture.md draws the
order).

Every module under speechprune/ is parsed with `ast`, so nothing is imported to build the graph,
and every import statement counts: at the top, inside functions, under `if TYPE_CHECKING:`.
Imports by computed name (cli.py's `importlib.import_module`) are not seen.

Seen to fail: `from speechprune.training import loop` added to speechprune/inference/evaluation.py
failed all four graph tests (the module cycle inference.evaluation -> training.loop ->
inference.evaluation, the package cycle inference <-> training, inference importing the training
layer above it, and the forbidden inference -> training import); `from speechprune.report import
table` inside a function of speechprune/training/loop.py failed the package-cycle, order and
training -> report tests.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "speechprune"

# The allowed order, bottom first. A package (a folder under speechprune/, or a top-level module)
# may import its own modules and packages on lower layers, never its own layer's or higher ones.
# "speechprune" is the package's own __init__.py.
LAYERS: list[tuple[str, ...]] = [
    ("speechprune", "atomic_write", "config", "config_paths"),
    ("data",),       # manifests, text, audio, features, augmentation, batching
    ("corpus",),     # building the offline default corpora
    ("lm",),         # n-gram language models: building them, their files
    ("model",),      # DeepSpeech2, its checkpoints, the CTC loss, the device it runs on
    ("pruning",),
    ("decoding",),   # greedy and beam search, WER/CER, decoder-weight tuning
    ("deploy",),     # export formats and the sparse/int8 kernels
    ("inference",),  # load any model file; recognizer; evaluation over a data set
    ("training",),
    ("report",),
    ("commands",),
    ("cli",),
]

# Imports that the order already rules out, named because they are the ones most tempting to
# add: (importing package, imported package).
FORBIDDEN = [("inference", "training"), ("inference", "report"),
             ("decoding", "training"), ("decoding", "report"),
             ("training", "report"), ("training", "commands")]

# Modules kept off a package that their layer would allow: (module, package). `predict` replays
# a pruning schedule without training, so it sets up the run from speechprune.model.run_setup.
FORBIDDEN_FOR_MODULES = [("speechprune.commands.predict", "training")]


def module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(SOURCE.rglob("*.py"))}


def package_of(module: str) -> str:
    """The package a module belongs to: its folder under speechprune/, or the top-level
    module itself ("config"), or "speechprune" for the package's __init__.py."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def imported_modules(module: str) -> set[str]:
    """The speechprune modules that `module`'s import statements name (a package's name
    stands for its __init__.py; `from package import module` for that module)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names.extend(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                         for alias in node.names)
    found = set()
    for name in names:
        while name and name not in MODULES:  # `import speechprune.data.text.Alphabet`-like
            name = name.rpartition(".")[0]
        if name and name != module:
            found.add(name)
    return found


MODULE_GRAPH = {module: imported_modules(module) for module in MODULES}


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for module, targets in MODULE_GRAPH.items():
        graph[package_of(module)]  # every package is a node, even one that imports nothing
        for target in targets:
            if package_of(target) != package_of(module):
                graph[package_of(module)].add(package_of(target))
    return dict(graph)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    lowlink: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = lowlink[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                lowlink[node] = min(lowlink[node], lowlink[target])
            elif target in on_stack:
                lowlink[node] = min(lowlink[node], index[target])
        if lowlink[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def describe(component: list[str], graph: dict[str, set[str]]) -> str:
    members = set(component)
    edges = [f"{a} -> {b}" for a in component for b in sorted(graph[a]) if b in members]
    return "; ".join(edges)


LAYER_OF = {package: level for level, layer in enumerate(LAYERS) for package in layer}


def test_the_graph_sees_every_module_and_the_imports_inside_functions():
    assert {"speechprune.inference.recognizer", "speechprune.training.loop",
            "speechprune.cli"} <= set(MODULES)
    # commands import the library inside their Hydra mains, so that --help stays fast
    assert "speechprune.inference.evaluation" in MODULE_GRAPH["speechprune.commands.evaluate"]


def test_every_package_has_a_place_in_the_order():
    unplaced = sorted(set(package_graph()) - set(LAYER_OF))
    assert not unplaced, f"add {unplaced} to LAYERS in {Path(__file__).name}"
    stale = sorted(set(LAYER_OF) - set(package_graph()))
    assert not stale, f"LAYERS names packages that no longer exist: {stale}"


def test_no_modules_import_each_other_in_a_cycle():
    found = cycles(MODULE_GRAPH)
    assert not found, "module cycles: " + " | ".join(describe(c, MODULE_GRAPH) for c in found)


def test_no_packages_import_each_other_in_a_cycle():
    graph = package_graph()
    found = cycles(graph)
    assert not found, "package cycles: " + " | ".join(describe(c, graph) for c in found)


def test_every_package_imports_only_packages_below_it_in_the_order():
    upward = [f"{module} -> {target}" for module, targets in sorted(MODULE_GRAPH.items())
              for target in sorted(targets)
              if package_of(module) != package_of(target)
              and LAYER_OF.get(package_of(target), -1) >= LAYER_OF.get(package_of(module), -1)]
    assert not upward, ("imports up or across the layers of LAYERS (move the shared code below "
                        "both): " + "; ".join(upward))


@pytest.mark.parametrize("importer,imported", FORBIDDEN)
def test_forbidden_imports_are_absent(importer, imported):
    offending = [f"{module} -> {target}" for module, targets in sorted(MODULE_GRAPH.items())
                 if package_of(module) == importer
                 for target in sorted(targets) if package_of(target) == imported]
    assert not offending, f"{importer} must not import {imported}: " + "; ".join(offending)


@pytest.mark.parametrize("importer,imported", FORBIDDEN_FOR_MODULES)
def test_modules_kept_off_a_package_do_not_import_it(importer, imported):
    """Seen to fail: `from speechprune.training.loop import seed_everything` inside
    speechprune/commands/predict.py's main."""
    offending = sorted(target for target in MODULE_GRAPH[importer]
                       if package_of(target) == imported)
    assert not offending, f"{importer} must not import {imported}: " + ", ".join(offending)
