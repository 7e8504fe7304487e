"""Every Python code block of ``doc/*.rst`` runs.

The blocks of one page run in order in one namespace, as a reader would paste them. Pages
show fragments of the regression tutorial (``est``, ``simulator``, ``observed`` ...):
:data:`CONTEXT` defines those names once, and :data:`PAGE_SETUP` what a page takes as
the reader's own (a second model, a likelihood, a multilevel estimator). Training budgets
are cut for the test by :func:`small_budgets` (one epoch of two batches), and the few
large counts of simulations on the pages by :data:`SUBSTITUTIONS`, so the file runs in
about a minute and a half on two shared cores (marked slow).

A literal block that is not Python (a shell command, printed output, a diagram) must be
listed in :data:`NOT_PYTHON`; any other block that does not compile fails, so a
SyntaxError on a page is caught here.
"""

import os
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

DOC = Path(__file__).resolve().parents[1] / "doc"

_CODE_BLOCK = re.compile(r"^(\s*)\.\.\s+code-block::\s*(\S*)\s*$")
_LITERAL = re.compile(r"^(\s*)(.*)::\s*$")


def code_blocks(path):
    """``(line, language, source)`` of the code and literal blocks of an rst file.

    ``language`` is the ``code-block`` argument, or ``"literal"`` for a ``::`` block.
    """
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    out, i = [], 0
    while i < len(lines):
        line = lines[i]
        code = _CODE_BLOCK.match(line)
        literal = None if line.lstrip().startswith("..") else _LITERAL.match(line)
        if not (code or literal):
            i += 1
            continue
        indent = len((code or literal).group(1))
        i += 1
        while i < len(lines) and (not lines[i].strip()
                                  or (code and lines[i].strip().startswith(":"))):
            i += 1   # blank lines and the directive's options
        start, body = i, []
        while i < len(lines) and (not lines[i].strip()
                                  or len(lines[i]) - len(lines[i].lstrip()) > indent):
            body.append(lines[i])
            i += 1
        while body and not body[-1].strip():
            body.pop()
        if body:
            cut = min(len(b) - len(b.lstrip()) for b in body if b.strip())
            out.append((start + 1, code.group(2) if code else "literal",
                        "\n".join(b[cut:] for b in body)))
    return out


#: Blocks that are not Python, by page and first line.
NOT_PYTHON = {
    ("design.rst", "simulator --dict of arrays--> adapter --network inputs--> networks"),
    ("install.rst", "python examples/quickstart.py"),
    ("scale.rst", 'pip install "skabi[scale]"'),
    ("scale.rst", "<xarray.Dataset>"),
    ("scale.rst", "<xarray.DataTree>"),
}

#: Blocks that cannot run here, by page and first line, and why.
SKIP = {
    ("scale.rst", "from dask.distributed import Client"):
        "needs a running dask scheduler at tcp://scheduler:8786",
}

#: (page, old, new): large counts of simulations cut for the test.
SUBSTITUTIONS = [
    ("scale.rst", "1_000_000", "3000"),   # reader.take(slice(0, 200)): one group
    ("networks.rst", "slcp.sample(10_000", "slcp.sample(300"),
    ("networks.rst", "slcp_flat.sample(10_000", "slcp_flat.sample(300"),
    ("scale.rst", "10_000", "300"),
    ("sklearn.rst", "6000", "300"),
    ("model_comparison.rst", "3000", "120"),
    ("model_comparison.rst", "2000", "60"),
    ("checking.rst", "simulator.sample(500,", "simulator.sample(60,"),
    ("multilevel.rst", "simulator.sample(500,", "simulator.sample(20,"),
    ("gpu.rst", 'device="cuda"', 'device="cpu"'),   # the same code without a GPU
    ("adapter.rst", "size=(3000, 1)", "size=(300, 1)"),
]

#: The regression tutorial, the context of most pages.
CONTEXT = '''
import numpy as np
import pandas as pd
from skabi import AmortizedPosterior, make_adapter, make_simulator
from skabi.adapters import AsSet, Broadcast, Concatenate, Constrain, Rename, Sqrt
from skabi.networks import CouplingFlow, DeepSet


def prior(rng):
    return dict(beta=rng.normal([2.0, 0.0], [3.0, 1.0]), sigma=rng.gamma(1.0, 1.0))


def likelihood(beta, sigma, N, rng):
    x = rng.normal(0.0, 1.0, size=N)
    return dict(x=x, y=rng.normal(beta[0] + beta[1] * x, sigma))


def meta(rng):
    return dict(N=int(rng.integers(5, 15)))


simulator = make_simulator([prior, likelihood], meta_fn=meta)
adapter = make_adapter(
    Broadcast("N", to="x"), AsSet(["x", "y"]), Constrain("sigma", lower=0), Sqrt("N"),
    Concatenate(["beta", "sigma"], into="inference_variables"),
    Concatenate(["x", "y"], into="summary_variables"),
    Rename("N", "inference_conditions"))
est = AmortizedPosterior(adapter=adapter, inference_network=CouplingFlow(),
                         summary_network=DeepSet(summary_dim=4), random_state=0).fit(simulator)
val_sims = simulator.sample(20, random_state=1)
truths = {"beta": val_sims["beta"], "sigma": val_sims["sigma"]}
observed = simulator.sample(2, random_state=2)
held_out = simulator.sample(20, random_state=3)
data = observed
rng = np.random.default_rng(4)
x1, x2 = rng.normal(size=5), rng.normal(size=12)
y1, y2 = 1.0 + 0.5 * x1, 2.0 - x2
df = pd.DataFrame({"x": x2, "y": y2})
'''

#: What a page takes as the reader's own, run after :data:`CONTEXT`.
PAGE_SETUP = {
    "checking.rst": '''
def joint_log_likelihood(draws, data):
    return -0.5 * (draws["sigma"][..., 0] ** 2)
''',
    "likelihood.rst": '''
from scipy import stats
from skabi import AmortizedLikelihood
from skabi.adapters import AsObservations

beta, sigma = val_sims["beta"][:3], val_sims["sigma"][:3]
posterior = est
posterior_adapter = adapter
likelihood_adapter = make_adapter(
    AsObservations(["x", "y"]), Constrain("sigma", lower=0),
    Concatenate(["x", "y"], into="inference_variables"),
    Concatenate(["beta", "sigma"], into="inference_conditions"))


def prior_a(draws):
    return (stats.norm([2.0, 0.0], [3.0, 1.0]).logpdf(draws["beta"]).sum(-1)
            + stats.gamma(1.0).logpdf(draws["sigma"][..., 0]))


prior_b = prior = prior_a
post = post_a = post_b = est
observed = simulator.sample(1, random_state=5)
''',
    "likelihood.rst#compare": '''
from skabi import add_log_likelihood

idata_a = idata_b = add_log_likelihood(posterior.sample(observed, num_samples=200), lik)
lik_a = lik_b = lik
''',
    "index.rst": '''
def prior(rng):
    return dict(theta=rng.normal(0.0, 1.0, size=2))


def likelihood(theta, rng):
    return dict(x=rng.normal(theta, 1.0, size=(10, 2)))


observed = {"x": rng.normal(size=(3, 10, 2))}
''',
    "model_comparison.rst": '''
def no_effect(N, rng):
    return dict(x=rng.normal(0.0, 1.0, size=N))


def effect(mu, N, rng):
    return dict(x=rng.normal(mu, 1.0, size=N))


def prior(rng):
    return dict(mu=rng.normal(0.0, 1.0))
''',
    "multilevel.rst": '''
from skabi import AmortizedMultilevelPosterior, make_multilevel_simulator
from skabi.adapters import MultilevelAdapter

simulator = make_multilevel_simulator(
    lambda rng: dict(mu=rng.normal(0, 5), tau=abs(rng.normal(0, 5))),
    lambda mu, tau, rng: dict(theta=rng.normal(mu, tau)),
    lambda theta, N, rng: dict(y=rng.normal(theta, 1, size=N)),
    meta_fn=lambda rng: dict(J=int(rng.integers(2, 6)), N=int(rng.integers(1, 6))))
est = AmortizedMultilevelPosterior(
    adapter=MultilevelAdapter(
        make_adapter(Constrain("tau", lower=0),
                     Concatenate(["mu", "tau"], into="inference_variables")),
        make_adapter(AsSet("y"), Rename("y", "summary_variables"),
                     Rename("theta", "inference_variables"))),
    summary_network=DeepSet(summary_dim=4), global_summary_network=DeepSet(summary_dim=4),
    random_state=0).fit(simulator)
''',
    "sklearn.rst": '''
X = rng.normal(size=(200, 10))
y = rng.normal(size=(200, 2))
x_obs = rng.normal(size=(1, 10))
''',
    "training.rst": '''
X = rng.normal(size=(200, 4))
y = np.column_stack([rng.uniform(-1, 1, 200), rng.uniform(0, 10, 200)])
x_observed = rng.normal(size=4)
''',
}

#: Setups that run right before the block starting with the given line.
BLOCK_SETUP = {
    ("likelihood.rst", "import arviz as az"): PAGE_SETUP.pop("likelihood.rst#compare"),
}


def _arviz_major():
    import arviz

    return int(arviz.__version__.split(".")[0])


def _version_skip(page, lines, index):
    """The arviz page shows both arviz 0.x and >= 1.0 code: run the installed one's."""
    if page != "arviz.rst":
        return None
    paragraph = "\n".join(lines[:index]).rstrip().split("\n\n")[-1].strip()
    heading = paragraph
    if heading.startswith("arviz >= 1.0") and _arviz_major() < 1:
        return "arviz >= 1.0 code, arviz 0.x installed"
    if heading.startswith("arviz 0.x") and _arviz_major() >= 1:
        return "arviz 0.x code, arviz >= 1.0 installed"
    return None


def _runs(page, source):
    first = source.splitlines()[0].rstrip()
    return (page, first) not in SKIP and not any(
        p == page and first.startswith(f) for p, f in NOT_PYTHON)


PAGES = sorted(p.name for p in DOC.glob("*.rst")
               if any(kind in ("python", "literal") and _runs(p.name, source)
                      for _, kind, source in code_blocks(p)))


#: Pages whose checks need a posterior better than an untrained one (LOO-PIT of an
#: untrained network puts every observation at 0 or 1, which ArviZ's KDE cannot plot).
PAGE_BUDGET = {
    "checking.rst": {"epochs": 2, "batches_per_epoch": 40, "batch_size": 64},
}


@pytest.fixture
def small_budgets(monkeypatch, request):
    """One epoch of two batches of 16 for every fit, whatever the page sets."""
    from skabi.training import fitting

    original = fitting.settings_and_source
    page = request.node.callspec.params.get("page")
    cut = {"epochs": 1, "batches_per_epoch": 2, "pilot_size": 64, "batch_size": 16,
           **PAGE_BUDGET.get(page, {})}

    def small(params, X, y=None, **how):
        params = dict(params)
        params.update({k: v for k, v in cut.items() if k in params})
        if isinstance(params.get("validation_sims"), int):
            params["validation_sims"] = min(params["validation_sims"], 16)
        return original(params, X, y, **how)

    monkeypatch.setattr(fitting, "settings_and_source", small)


def test_parser_finds_the_blocks():
    blocks = code_blocks(DOC / "arviz.rst")
    assert blocks[0][1] == "python" and blocks[0][2].startswith("idata = est.sample(")
    assert any(kind == "literal" and src.startswith("import arviz as az")
               for _, kind, src in blocks)


def test_only_listed_blocks_are_not_python():
    """A block that does not compile is a listed non-Python block (or a page's bug)."""
    broken, seen = [], set()
    for page in sorted(p.name for p in DOC.glob("*.rst")):
        for line, kind, source in code_blocks(DOC / page):
            key = (page, source.splitlines()[0].rstrip())
            if kind not in ("python", "literal"):
                continue
            try:
                compile(source, f"{page}:{line}", "exec")
            except SyntaxError as exc:
                if not any(key[0] == p and key[1].startswith(first) for p, first in NOT_PYTHON):
                    broken.append(f"{page}:{line}: {exc.msg}")
                else:
                    seen.add(key)
    assert not broken, f"doc blocks with a SyntaxError: {broken}"
    assert len(seen) == len(NOT_PYTHON), "NOT_PYTHON lists a block that is gone"


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES)
def test_page_blocks_run(page, tmp_path, monkeypatch, small_budgets):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
    text = (DOC / page).read_text(encoding="utf-8")
    for name, old, new in SUBSTITUTIONS:
        if name == page:
            assert old in text, f"SUBSTITUTIONS: {old!r} is no longer on {page}"
    namespace = {"__name__": f"doc_{page[:-4]}"}
    ran = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(CONTEXT, "CONTEXT", "exec"), namespace)
        if page in PAGE_SETUP:
            exec(compile(PAGE_SETUP[page], f"PAGE_SETUP[{page}]", "exec"), namespace)
        lines = text.splitlines()
        for line, kind, source in code_blocks(DOC / page):
            first = source.splitlines()[0].rstrip()
            if kind not in ("python", "literal") or any(
                    p == page and first.startswith(f) for p, f in NOT_PYTHON):
                continue
            if (page, first) in SKIP or _version_skip(page, lines, line - 2):
                continue
            for name, old, new in SUBSTITUTIONS:
                if name == page:
                    source = source.replace(old, new)
            if (page, first) in BLOCK_SETUP:
                exec(compile(BLOCK_SETUP[page, first], "BLOCK_SETUP", "exec"), namespace)
            try:
                exec(compile(source, f"{page}:{line}", "exec"), namespace)
            except Exception as exc:
                raise AssertionError(f"doc/{page}, block at line {line} failed: "
                                     f"{type(exc).__name__}: {exc}") from exc
            finally:
                plt.close("all")
            ran += 1
    assert ran, f"no Python block of {page} ran"


_INLINE_DEF = re.compile(r"``(def \w+\([^`]*\)[^`]*)``")


def test_inline_signatures_compile():
    """``def f(...)`` written inline in a docstring or page is valid Python."""
    root = DOC.parent
    broken = []
    for path in [*sorted((root / "skabi").rglob("*.py")), *sorted(DOC.glob("*.rst"))]:
        text = " ".join(path.read_text(encoding="utf-8").split())
        for signature in _INLINE_DEF.findall(text):
            try:
                compile(signature.rstrip(":") + ": pass", str(path), "exec")
            except SyntaxError as exc:
                broken.append(f"{path.relative_to(root)}: {signature} ({exc.msg})")
    assert not broken, broken
