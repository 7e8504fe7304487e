"""Data flows one way: simulator -> adapter -> networks -> estimator -> ArviZ/diagnostics.

Each rule names a package part and the modules it must not import (checked with ast, so
lazy imports inside functions count too).
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1] / "skabi"


def _module_name(path):
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path):
    tree = ast.parse(path.read_text())
    here = _module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def _files(part):
    target = ROOT / part
    if target.is_dir():
        return sorted(target.rglob("*.py"))
    path = target.with_suffix(".py")
    assert path.exists(), f"{path} is gone: update FORBIDDEN"
    return [path]


#: The estimator layer: the package of the estimators and their base.
ESTIMATORS = ["skabi.estimators"]

#: The old import paths of the estimators, re-exports kept for one release (issue 30).
SHIMS = ["skabi.estimator", "skabi.point_estimator", "skabi.model_comparison",
         "skabi.likelihood", "skabi.multilevel", "skabi.joint", "skabi._estimators"]

#: Modules outside the estimators that take an estimator as an argument and check its
#: class: they sit above the estimators (an estimator imports them inside a method).
ESTIMATOR_USERS = ["skabi.importance"]

FORBIDDEN = {
    # part: prefixes it must not import
    "networks": ["skabi.adapters", "skabi.estimator", "skabi.simulators", "skabi.diagnostics",
                 "skabi._arviz", "skabi.bank", "skabi.training", "skabi.storage", "arviz"],
    "adapters": ["torch", "skabi.networks", "skabi.estimator", "skabi.diagnostics",
                 "skabi.training", "skabi.storage", "arviz"],
    "simulators": ["torch", "skabi.adapters", "skabi.networks", "skabi.estimator",
                   "skabi.training", "skabi.storage", "arviz"],
    "multilevel_simulators": ["torch", "skabi.adapters", "skabi.networks", *ESTIMATORS,
                              "skabi.training", "skabi.storage", "arviz"],
    "training/multilevel": ["skabi.adapters.adapter", "skabi.adapters.multilevel",
                            "skabi.bank", "skabi.storage"],
    "bank": ["torch", "skabi.adapters", "skabi.networks", "skabi.estimator", "skabi.training",
             "skabi.storage", "skabi.diagnostics", "skabi.inputs", "arviz"],
    "model_mixture": ["torch", "skabi.adapters", "skabi.networks", "skabi.training",
                      "skabi.storage", "skabi.diagnostics", *ESTIMATORS, "arviz"],
    "inputs": ["torch", "skabi.adapters", "skabi.networks", "skabi.estimator",
               "skabi.training", "skabi.storage", "skabi.diagnostics", "arviz"],
    "diagnostics": ["torch", *ESTIMATORS, *SHIMS, "skabi.networks", "skabi.adapters",
                    "skabi.training"],
    "training": [*ESTIMATORS, *SHIMS, "skabi.adapters.defaults", "skabi.diagnostics",
                 "skabi._arviz", "arviz"],
    "estimators/base": [*(f"skabi.estimators.{m}" for m in ("posterior", "likelihood", "point",
                                                             "classifier", "multilevel",
                                                             "joint")),
                        *SHIMS, "skabi.diagnostics", "skabi._arviz", "arviz"],
    "training/loop": ["skabi.adapters", "skabi.networks", "skabi.bank", "skabi.storage"],
    "training/model": ["skabi.adapters.adapter", "skabi.bank", "skabi.storage"],
    "storage": ["torch", "skabi.training", "skabi.adapters", "skabi.networks",
                "skabi.estimator", "arviz"],
    "predictive": ["torch", "skabi.estimator", "skabi.networks", "skabi.adapters",
                   "skabi.training", "skabi.diagnostics"],
    "_arviz": ["torch", "skabi.estimator", "skabi.networks", "skabi.adapters",
               "skabi.training"],
}


@pytest.mark.parametrize("part", sorted(FORBIDDEN))
def test_no_upward_imports(part):
    offenders = []
    for path in _files(part):
        for module in _imports(path):
            if any(module == bad or module.startswith(bad + ".") for bad in FORBIDDEN[part]):
                offenders.append(f"{path.relative_to(ROOT.parent)} imports {module}")
    assert not offenders, "\n".join(offenders)


def test_only_arviz_module_imports_arviz():
    users = [str(p.relative_to(ROOT.parent)) for p in ROOT.rglob("*.py")
             if any(m == "arviz" or m.startswith("arviz.") for m in _imports(p))]
    assert users == ["skabi/_arviz.py"], users


def test_nothing_imports_an_estimator_but_the_package():
    """Only the estimators themselves (a joint estimator composes two), the old import
    paths and the modules of :data:`ESTIMATOR_USERS` import an estimator module; nothing
    in the package imports an old path."""
    users = []
    for path in ROOT.rglob("*.py"):
        name = _module_name(path)
        if name.startswith("skabi.estimators") or name in SHIMS + ESTIMATOR_USERS:
            continue
        users += [f"{name} imports {m}" for m in _imports(path)
                  if m.startswith("skabi.estimators")]
    for path in ROOT.rglob("*.py"):
        users += [f"{_module_name(path)} imports {m}" for m in _imports(path) if m in SHIMS]
    assert users == [], users


@pytest.mark.parametrize("name", ["AmortizedPosterior", "AmortizedPointEstimator",
                                  "AmortizedModelComparison", "AmortizedLikelihood",
                                  "AmortizedMultilevelPosterior", "AmortizedJoint"])
def test_every_estimator_stands_on_the_one_documented_base(name):
    import skabi
    import skabi.training
    from skabi.estimators.base import AmortizedEstimator

    assert hasattr(skabi.training, "__path__")
    cls = getattr(skabi, name)
    own = [c for c in cls.__mro__[1:] if c.__module__.startswith("skabi")]
    assert own == [AmortizedEstimator], own
    assert cls.__module__.startswith("skabi.estimators.")


def test_no_module_imports_the_public_package():
    """Inside skabi, a module imports what it uses from where it lives, never through
    ``import skabi`` (a hidden dependency on the whole package)."""
    offenders = []
    for path in ROOT.rglob("*.py"):
        tree = ast.parse(path.read_text())
        here = _module_name(path).split(".")
        package = here if path.name == "__init__.py" else here[:-1]
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                offenders += [f"{path.relative_to(ROOT.parent)}: import {a.name}"
                              for a in node.names if a.name == "skabi"]
            elif isinstance(node, ast.ImportFrom):
                module = (".".join(package[: len(package) - node.level + 1]
                                   + ([node.module] if node.module else []))
                          if node.level else node.module)
                if module == "skabi":
                    offenders += [f"{path.relative_to(ROOT.parent)}: from skabi import {a.name}"
                                  for a in node.names if not _is_module(a.name)]
    assert not offenders, "\n".join(offenders)


def _is_module(name):
    return (ROOT / name).is_dir() or (ROOT / f"{name}.py").exists()


def _import_graph():
    """``{module: modules it imports}`` over skabi, lazy imports included; importing a
    package from one of its own modules is left out (Python has it loaded already)."""
    modules = {_module_name(p): p for p in ROOT.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        found = set()
        for module in _imports(path):
            if module in modules:
                found.add(module)
            elif module.rsplit(".", 1)[0] in modules:
                found.add(module.rsplit(".", 1)[0])
        graph[name] = {m for m in found if m != name and not name.startswith(m + ".")}
    return graph


def _cycles(graph):
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, cycles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                on.discard(w)
                part.append(w)
                if w == v:
                    break
            if len(part) > 1:
                cycles.append(sorted(part))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


@pytest.mark.parametrize("name", ["is_ragged", "dataset", "posterior_adapter",
                                  "likelihood_adapter", "classifier_adapter", "torch_threads"])
def test_a_shared_helper_is_written_once(name):
    """One is_ragged, one dataset slicer, one chunk rule, one module of default adapters."""
    places = [str(p.relative_to(ROOT.parent)) for p in ROOT.rglob("*.py")
              for node in ast.walk(ast.parse(p.read_text()))
              if isinstance(node, ast.FunctionDef) and node.name.lstrip("_") == name]
    assert len(places) == 1, places


def test_the_engine_knows_no_estimator_default():
    """``skabi.training`` builds no model and no adapter by default: every estimator
    passes its own (``build`` and ``default`` have no default values there)."""
    import inspect

    from skabi.training import fitting

    for fn in (fitting.run_fit, fitting.initial_state, fitting.resumed_state):
        assert inspect.signature(fn).parameters["build"].default is inspect.Parameter.empty
    assert inspect.signature(fitting.initial_state).parameters["default"].default is None


def test_no_import_cycle_among_skabi_modules():
    assert _cycles(_import_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_storage_modules_use_no_private_names_of_each_other():
    offenders = []
    for path in _files("storage"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") \
                    and not node.attr.startswith("__") and isinstance(node.value, ast.Name) \
                    and node.value.id in {"_w", "write", "read"}:
                offenders.append(f"{path.name}: {node.value.id}.{node.attr}")
            if isinstance(node, ast.ImportFrom) and node.level and node.module in {"read", "write"}:
                offenders += [f"{path.name}: {a.name}" for a in node.names
                              if a.name.startswith("_")]
    assert not offenders, offenders


@pytest.mark.parametrize("module, name", [
    ("skabi.estimator", "AmortizedPosterior"), ("skabi.likelihood", "AmortizedLikelihood"),
    ("skabi.point_estimator", "AmortizedPointEstimator"),
    ("skabi.model_comparison", "AmortizedModelComparison"),
    ("skabi.multilevel", "AmortizedMultilevelPosterior"), ("skabi.joint", "AmortizedJoint"),
    ("skabi._estimators", "TRAINING_CONSTRAINTS")])
def test_old_import_paths_give_the_same_object_with_a_deprecation_warning(module, name):
    import importlib

    import skabi.estimators

    old = importlib.import_module(module)
    with pytest.warns(DeprecationWarning, match=rf"{module}\.{name} moved to skabi\.estimators"):
        value = getattr(old, name)
    assert value is getattr(importlib.import_module(old._MOVED[name]), name)
    if name.startswith("Amortized"):
        assert value is getattr(skabi.estimators, name)
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        old.nothing


def test_names_that_stay_in_model_comparison_do_not_warn():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        from skabi.model_comparison import ModelMixture, simulate_models  # noqa: F401
