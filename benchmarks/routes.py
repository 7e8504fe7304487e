"""The route of ``fit`` and ``sample`` through skabi's modules, up to the first tensor.

Traces a tiny :class:`~skabi.AmortizedPosterior` (and, with ``--all``, each estimator of
``benchmarks/contract_losses.py``) with ``sys.setprofile`` and prints, for ``fit`` and
for ``sample``:

- the route: each call from the estimator's own code into another skabi module
  (``estimator -> module.function``), in order, until torch makes its first tensor
  (``torch.as_tensor``, ``torch.empty``, ...);
- ``revisited``: the modules the estimator entered twice or more on that route (leaf
  helpers aside: :data:`HELPERS`, argument checks that any layer calls);
- ``climbs``: calls, at any depth, up the layers ``estimators > training > networks`` (a
  network calling the engine, the engine calling back into an estimator), which the
  design forbids;
- ``calls``: all calls from one skabi module into another before the first tensor.

Run it on two commits and compare::

    python benchmarks/routes.py            # posterior fit and sample
    python benchmarks/routes.py --all      # every estimator
"""

import argparse
import collections
import sys
import warnings

import torch

#: Layers, top first: a call from a lower into a higher one is a climb.
LAYERS = {"estimators": 0, "training": 1, "networks": 2}
#: The old estimator modules (before issue 30) belong to the estimator layer.
OLD_ESTIMATORS = {"skabi.estimator", "skabi.likelihood", "skabi.point_estimator",
                  "skabi.model_comparison", "skabi.multilevel", "skabi.joint",
                  "skabi._estimators"}
#: Leaf helpers (argument checks, errors, the BayesFlow spellings) that every layer may
#: call: listed on the route, not counted as its steps.
HELPERS = {"skabi._validation", "skabi.exceptions", "skabi._bayesflow"}
TENSOR_MAKERS = {"as_tensor", "tensor", "from_numpy", "empty", "zeros", "ones", "full",
                 "randn", "rand", "arange", "stack", "cat", "empty_like", "zeros_like"}


def _layer(module):
    if module in OLD_ESTIMATORS or module.startswith("skabi.estimators"):
        return LAYERS["estimators"]
    part = module.split(".")[1] if module.count(".") else ""
    return LAYERS.get(part)


class Route:
    """The skabi module calls of one call of ``fn``, until the first tensor."""

    def __init__(self):
        self.steps, self.done = [], False

    def _profile(self, frame, event, arg):
        if self.done:
            return
        if event == "c_call":
            if getattr(arg, "__module__", None) == "torch" and \
                    getattr(arg, "__name__", "") in TENSOR_MAKERS:
                self.done = True
            return
        if event != "call":
            return
        callee = frame.f_globals.get("__name__", "")
        caller_frame = frame.f_back
        caller = caller_frame.f_globals.get("__name__", "") if caller_frame else ""
        if callee.startswith("skabi") and caller != callee and \
                (caller.startswith("skabi") or not self.steps):
            self.steps.append((caller if caller.startswith("skabi") else "(user)", callee,
                               frame.f_code.co_name))

    def run(self, fn):
        sys.setprofile(self._profile)
        try:
            fn()
        finally:
            sys.setprofile(None)
        return self

    def route(self):
        """The calls from the estimator layer into other modules."""
        return [(caller, callee, name) for caller, callee, name in self.steps
                if _layer(caller) == 0 and _layer(callee) != 0]

    def visits(self):
        return collections.Counter(callee for _, callee, _ in self.route()
                                   if callee not in HELPERS)

    def climbs(self):
        out = []
        for caller, callee, name in self.steps:
            a, b = _layer(caller), _layer(callee)
            if a is not None and b is not None and b < a:
                out.append(f"{caller} -> {callee}.{name}")
        return out

    def report(self, title, verbose=False):
        visits = self.visits()
        again = {m: n for m, n in visits.items() if n > 1}
        print(f"== {title}: the estimator enters {len(visits)} modules "
              f"({sum(visits.values())} calls; helpers aside), {len(again)} twice or more; "
              f"{len(self.climbs())} "
              f"climbs; {len(self.steps)} calls between modules in all"
              + ("" if self.done else " (no tensor made)"))
        for caller, callee, name in (self.steps if verbose else self.route()):
            print(f"   {caller} -> {callee}.{name}")
        print(f"   revisited: {again}")
        print(f"   climbs: {self.climbs()}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--all", action="store_true", help="every estimator, not only the "
                        "posterior")
    parser.add_argument("--verbose", action="store_true", help="list every call between "
                        "modules, not only the estimator's")
    args = parser.parse_args(argv)
    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    import contract_losses as cl

    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    names = ["posterior-online"] if not args.all else [
        n for n in cl.estimators() if n.endswith("online") or n.endswith("arrays")]
    sim, ml = cl.simulator(), cl.multilevel_simulator()
    for name in names:
        est, data = cl.estimators()[name]
        fit = (lambda: est.fit(*data)) if isinstance(data, tuple) else (lambda: est.fit(data))
        Route().run(fit).report(f"{name} fit", args.verbose)
        # the datasets are simulated inside the call: not the estimator's route
        Route().run(lambda: cl._draws(name, est, sim, ml)).report(f"{name} sample",
                                                                   args.verbose)


if __name__ == "__main__":
    main()
