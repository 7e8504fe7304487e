"""Networks written outside skabi save and load by name once registered (no pickle)."""

import numpy as np
import pytest
from torch import nn

from skabi import AmortizedPosterior, make_simulator
from skabi.adapters import Rename, make_adapter
from skabi.exceptions import LoadError
from skabi.networks import CouplingFlow, SummaryModule, SummaryNetwork, register_network
from skabi.networks.registry import _REGISTRY, network_name


class _MeanModule(SummaryModule):
    def __init__(self, feature_dim, summary_dim):
        super().__init__(feature_dim, summary_dim)
        self.linear = nn.Linear(feature_dim, summary_dim)

    def forward(self, x, mask=None):
        mask = self._check_input(x, mask)
        if mask is None:
            return self.linear(x.mean(dim=1))
        weights = mask.to(x.dtype).unsqueeze(-1)
        return self.linear((x * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1))


class MeanSummary(SummaryNetwork):
    """A user's summary network: a linear map of the set's mean."""

    def __init__(self, summary_dim=2):
        self.summary_dim = summary_dim

    def build(self, feature_dim):
        params = self._validate_params()
        return _MeanModule(feature_dim, params["summary_dim"])


def _fit(summary):
    def prior(rng):
        return dict(theta=rng.normal(size=2))

    def likelihood(theta, rng):
        return dict(x=theta + rng.normal(size=(6, 2)))

    sim = make_simulator([prior, likelihood])
    est = AmortizedPosterior(
        adapter=make_adapter(Rename("theta", "inference_variables"),
                             Rename("x", "summary_variables")),
        inference_network=CouplingFlow(depth=1, subnet_width=8), summary_network=summary,
        epochs=1, batches_per_epoch=3, batch_size=8, pilot_size=16, random_state=0)
    return est.fit(sim), sim


@pytest.fixture
def registry():
    """The registry as it was before the test (the test's classes leave with it)."""
    before = dict(_REGISTRY)
    yield
    _REGISTRY.clear()
    _REGISTRY.update(before)


def test_a_registered_network_saves_and_loads_by_name(registry, tmp_path, one_torch_thread):
    register_network(MeanSummary)
    est, sim = _fit(MeanSummary(summary_dim=3))
    est.save(tmp_path / "mean.skabi")
    loaded = AmortizedPosterior.load(tmp_path / "mean.skabi")
    assert type(loaded.summary_network) is MeanSummary
    assert loaded.summary_network.summary_dim == 3
    data = sim.sample(2, random_state=1)
    a = est.sample(data, 5, random_state=2, return_type="numpy")["theta"]
    b = loaded.sample(data, 5, random_state=2, return_type="numpy")["theta"]
    np.testing.assert_array_equal(a, b)
    # the file names the class, not its code: unregistered, it does not load
    del _REGISTRY["MeanSummary"]
    with pytest.raises(LoadError, match="'MeanSummary'.*register_network"):
        AmortizedPosterior.load(tmp_path / "mean.skabi")


def test_an_unregistered_network_is_refused_at_save_naming_the_fix(registry, tmp_path,
                                                                   one_torch_thread):
    est, _ = _fit(MeanSummary())
    with pytest.raises(ValueError, match="not registered.*register_network"):
        est.save(tmp_path / "mean.skabi")
    assert not (tmp_path / "mean.skabi").exists()


def test_names_are_unique_and_checked(registry):
    from skabi.networks import DeepSet

    assert network_name(DeepSet) == "DeepSet"

    class DeepSet2(SummaryNetwork):
        def build(self, feature_dim):
            raise NotImplementedError

    with pytest.raises(ValueError, match="'DeepSet' is taken"):
        register_network(name="DeepSet")(DeepSet2)
    assert register_network(name="Other")(DeepSet2) is DeepSet2
    assert network_name(DeepSet2) == "Other"
    with pytest.raises(TypeError, match="network holder"):
        register_network(int)
    with pytest.raises(ValueError, match="identifier"):
        register_network(name="a b")(DeepSet2)


def test_a_checkpointed_fit_refuses_an_unregistered_network_before_training(
        registry, tmp_path, one_torch_thread):
    est = AmortizedPosterior(
        adapter=make_adapter(Rename("theta", "inference_variables"),
                             Rename("x", "summary_variables")),
        summary_network=MeanSummary(), epochs=1, batches_per_epoch=3, batch_size=8,
        checkpoint_path=tmp_path / "run.skabi", random_state=0)
    calls = []

    def prior(rng):
        calls.append(1)   # a simulation would mean training had begun
        return dict(theta=rng.normal(size=2))

    sim = make_simulator([prior, lambda theta, rng: dict(x=theta + rng.normal(size=(6, 2)))])
    with pytest.raises(ValueError, match="MeanSummary is not registered.*register_network"):
        est.fit(sim)
    assert not calls and not (tmp_path / "run.skabi").exists()
    register_network(MeanSummary)
    est.fit(sim)   # registered, the same fit checkpoints
    assert (tmp_path / "run.skabi").exists()
