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


#: The estimator layer: the public estimators and what they share.
ESTIMATORS = ["skabi.estimator", "skabi.point_estimator", "skabi.model_comparison",
              "skabi.likelihood", "skabi.multilevel", "skabi.joint"]

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
    "diagnostics": ["torch", *ESTIMATORS, "skabi._estimators", "skabi.networks",
                    "skabi.adapters", "skabi.training"],
    "training": [*ESTIMATORS, "skabi._estimators", "skabi.diagnostics", "skabi._arviz",
                 "arviz"],
    "_estimators": [*ESTIMATORS, "skabi.diagnostics", "skabi._arviz", "arviz"],
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


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_nothing_imports_an_estimator_but_the_package(estimator):
    users = [str(p.relative_to(ROOT.parent)) for p in ROOT.rglob("*.py")
             if estimator in _imports(p) and _module_name(p) != estimator]
    assert users == [], users


@pytest.mark.parametrize("name", ["AmortizedPosterior", "AmortizedPointEstimator",
                                  "AmortizedModelComparison", "AmortizedLikelihood",
                                  "AmortizedMultilevelPosterior", "AmortizedJoint"])
def test_training_is_a_package_and_the_estimators_hold_no_mixin(name):
    import skabi
    import skabi.training

    assert hasattr(skabi.training, "__path__")
    own = [c for c in getattr(skabi, name).__mro__[1:] if c.__module__.startswith("skabi")]
    assert own == [], own


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
