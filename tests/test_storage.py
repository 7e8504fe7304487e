"""Simulation banks at scale: skabi.storage.simulate and open_bank."""

import tracemalloc

import numpy as np
import pytest
import xarray as xr

from skabi import Simulator, make_simulator
from skabi.exceptions import SimulatorError
from skabi.storage import open_bank, simulate

from models import Gaussian, likelihood, meta, prior

zarr = pytest.importorskip("zarr")
pytest.importorskip("h5netcdf")


@pytest.fixture
def regression():
    return make_simulator([prior, likelihood], meta_fn=meta)


class Failing(Simulator):
    """Gaussian that raises on batch ``fail_at`` (counted per instance)."""

    def __init__(self, fail_at):
        self.fail_at = fail_at
        self.calls = 0
        self.inner = Gaussian(n_obs=5)

    def simulate(self, batch_size, rng):
        if self.calls == self.fail_at:
            raise RuntimeError("interrupted")
        self.calls += 1
        return self.inner.simulate(batch_size, rng)


def _assert_same(a, b):
    xr.testing.assert_identical(a.load() if hasattr(a, "load") else a, b)


def _simulate_to(path, *args, **kwargs):
    """simulate to ``path``; a ``.nc`` bank (no longer written by simulate) is written to
    Zarr and converted as the refusal message says, then opened by simulate read-only."""
    if str(path).endswith(".zarr"):
        return simulate(*args, path=path, **kwargs)
    staging = str(path) + ".zarr"
    simulate(*args, path=staging, **kwargs).close()
    tree = xr.open_datatree(staging, engine="zarr", consolidated=False)
    tree.to_netcdf(path, engine="h5netcdf")
    tree.close()
    return simulate(*args, path=path, **kwargs)


# --------------------------------------------------------------------------- layout
def test_fixed_shape_layout_is_a_dataset():
    ds = simulate(Gaussian(n_obs=7, dim=3), 100, batch_size=32, random_state=0)
    assert isinstance(ds, xr.Dataset)
    assert ds["theta"].dims == ("simulation", "theta_dim_0")
    assert ds["x"].dims == ("simulation", "x_dim_0", "x_dim_1")
    assert ds["x"].shape == (100, 7, 3)
    assert ds.attrs["n"] == 100 and ds.attrs["batch_size"] == 32
    assert ds.attrs["random_state"] == 0 and ds.attrs["completed_batches"] == 4
    assert "skabi_version" in ds.attrs
    # batch i is drawn with the i-th child seed of SeedSequence(random_state)
    last = Gaussian(n_obs=7, dim=3).sample(4, random_state=np.random.SeedSequence(0).spawn(4)[3])
    np.testing.assert_array_equal(ds["x"].values[96:], last["x"])


def test_meta_layout_is_a_tree_with_one_group_per_n(regression):
    tree = simulate(regression, 600, batch_size=50, random_state=1)
    assert isinstance(tree, xr.DataTree)
    assert len(tree.children) > 1
    total = 0
    for name, child in tree.children.items():
        ds = child.to_dataset()
        n_obs = int(ds["N"].values)
        assert name == f"N={n_obs}" and ds["N"].ndim == 0
        assert ds["x"].shape[1:] == (n_obs,) and ds["y"].shape[1:] == (n_obs,)
        assert ds["beta"].shape[1:] == (2,) and ds["sigma"].shape[1:] == (1,)
        assert ds.sizes["simulation"] % 50 == 0          # whole batches of 50 per group
        total += ds.sizes["simulation"]
    assert total == 600
    assert tree.attrs["meta_variables"] == "N"


def test_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="n must be a positive int"):
        simulate(Gaussian(), 0)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        simulate(Gaussian(), 10, batch_size=0)
    with pytest.raises(TypeError, match="sample"):
        simulate(lambda n: n, 10)
    with pytest.raises(ValueError, match="format"):
        simulate(Gaussian(), 10, path=tmp_path / "bank.bin")
    path = tmp_path / "bank.zarr"
    simulate(Gaussian(), 20, batch_size=8, path=path, random_state=0)
    with pytest.raises(ValueError, match=r"n \(bank: 20, given: 30\).*random_state"):
        simulate(Gaussian(), 30, batch_size=8, path=path, random_state=1)
    with pytest.raises(ValueError, match=r"batch_size \(bank: 8, given: 4\)"):
        simulate(Gaussian(), 20, batch_size=4, path=path, random_state=0)
    other = tmp_path / "other.zarr"
    zarr.open_group(str(other), mode="w")
    with pytest.raises(ValueError, match="not a simulation bank"):
        simulate(Gaussian(), 20, path=other)


class ChangingMeta(Simulator):
    def __init__(self):
        self.calls = 0

    def simulate(self, batch_size, rng):
        self.calls += 1
        return {"x": rng.normal(size=(batch_size, 2))}

    def sample(self, batch_size, *, random_state=None):
        batch = super().sample(batch_size, random_state=random_state)
        return {**batch, "N": 2} if self.calls == 1 else batch


def test_meta_variables_must_not_change():
    with pytest.raises(SimulatorError, match="meta variables"):
        simulate(ChangingMeta(), 20, batch_size=10)


# --------------------------------------------------------------------------- determinism
@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
        worker_dashboard_address=None,
    )
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.mark.slow
def test_same_bank_for_every_backend(regression, dask_client, tmp_path):
    reference = simulate(regression, 300, batch_size=16, random_state=3)
    joblib2 = simulate(regression, 300, batch_size=16, random_state=3, n_jobs=2)
    on_dask = simulate(regression, 300, batch_size=16, random_state=3, client=dask_client)
    xr.testing.assert_identical(joblib2, reference)
    xr.testing.assert_identical(on_dask, reference)
    dask_to_disk = simulate(regression, 300, batch_size=16, random_state=3, client=dask_client,
                            path=tmp_path / "bank.zarr", progress=True)
    _assert_same(dask_to_disk, reference)
    other = simulate(regression, 300, batch_size=16, random_state=4)
    assert not reference.identical(other)


@pytest.mark.slow
def test_local_functions_run_in_worker_processes():
    def local_prior(rng):  # not importable by name: needs cloudpickle
        return dict(mu=rng.normal())

    def local_likelihood(mu, rng):
        return dict(x=rng.normal(mu, 1.0, size=3))

    sim = make_simulator([local_prior, local_likelihood])
    a = simulate(sim, 40, batch_size=10, random_state=0)
    b = simulate(sim, 40, batch_size=10, random_state=0, n_jobs=2)
    xr.testing.assert_identical(a, b)


def test_random_state_none_is_recorded_and_resumable(tmp_path):
    path = tmp_path / "bank.zarr"
    with pytest.raises(RuntimeError, match="interrupted"):
        simulate(Failing(fail_at=2), 50, batch_size=10, path=path)
    resumed = simulate(Gaussian(n_obs=5), 50, batch_size=10, path=path)
    entropy = int(resumed.attrs["seed_entropy"])
    assert "random_state" not in resumed.attrs
    again = simulate(Gaussian(n_obs=5), 50, batch_size=10, random_state=entropy)
    xr.testing.assert_equal(resumed.load(), again)


# --------------------------------------------------------------------------- disk
@pytest.mark.parametrize("suffix", [".zarr", ".nc"])
def test_disk_round_trip(regression, tmp_path, suffix):
    memory = simulate(regression, 400, batch_size=32, random_state=5)
    on_disk = _simulate_to(tmp_path / f"b{suffix}", regression, 400, batch_size=32,
                           random_state=5)
    assert isinstance(on_disk, xr.DataTree)
    _assert_same(on_disk, memory)
    fixed = _simulate_to(tmp_path / f"g{suffix}", Gaussian(), 70, batch_size=32, random_state=5)
    assert isinstance(fixed, xr.Dataset)
    _assert_same(fixed, simulate(Gaussian(), 70, batch_size=32, random_state=5))


@pytest.mark.parametrize("suffix", [".zarr"])
def test_resume_after_interruption(tmp_path, suffix):
    path = tmp_path / f"bank{suffix}"
    with pytest.raises(RuntimeError, match="interrupted"):
        simulate(Failing(fail_at=4), 100, batch_size=10, path=path, random_state=7)
    partial = open_bank(path)
    assert partial.n_simulations == 40
    partial.close()
    resumed_sim = Failing(fail_at=-1)
    resumed = simulate(resumed_sim, 100, batch_size=10, path=path, random_state=7)
    assert resumed_sim.calls == 6  # only the missing batches
    full = simulate(Gaussian(n_obs=5), 100, batch_size=10, random_state=7)
    _assert_same(resumed, full)
    # complete: nothing more is drawn
    again = Failing(fail_at=0)
    _assert_same(simulate(again, 100, batch_size=10, path=path, random_state=7), full)


class FailAfter(Simulator):
    """Wraps a simulator; raises on its ``k``-th batch."""

    def __init__(self, simulator, k):
        self.simulator, self.k, self.calls = simulator, k, 0

    def sample(self, batch_size, *, random_state=None):
        if self.calls == self.k:
            raise RuntimeError("interrupted")
        self.calls += 1
        return self.simulator.sample(batch_size, random_state=random_state)


def _append_garbage(path):
    """What a crash in the middle of an append leaves: rows written, no commit."""
    root = zarr.open_group(str(path), mode="a")
    name = next(iter(root.group_keys()))
    for _, arr in root[name].arrays():
        if arr.ndim:
            arr.resize((arr.shape[0] + 5, *arr.shape[1:]))
            arr[-5:] = 99


def test_resume_discards_a_partially_written_batch(regression, tmp_path):
    path = tmp_path / "bank.zarr"
    full = simulate(regression, 160, batch_size=16, random_state=2)
    with pytest.raises(RuntimeError, match="interrupted"):
        simulate(FailAfter(regression, 4), 160, batch_size=16, random_state=2, path=path)
    _append_garbage(path)
    assert open_bank(path).n_simulations == 64  # the reader ignores uncommitted rows
    _assert_same(simulate(regression, 160, batch_size=16, random_state=2, path=path), full)
    _append_garbage(path)  # a complete bank opens without the uncommitted rows too
    _assert_same(simulate(regression, 160, batch_size=16, random_state=2, path=path), full)
    assert open_bank(path).n_simulations == 160


# --------------------------------------------------------------------------- reader
def _first_column(batch):
    return batch["x"][:, 0]


@pytest.mark.parametrize("where", ["memory", "zarr", "nc"])
def test_epoch_covers_every_simulation_once(regression, tmp_path, where):
    path = None if where == "memory" else tmp_path / f"bank.{where}"
    bank = simulate(regression, 500, batch_size=32, random_state=9) if path is None \
        else _simulate_to(path, regression, 500, batch_size=32, random_state=9)
    reader = open_bank(bank if path is None else path)
    assert reader.n_simulations == 500
    assert reader.keys() == ["beta", "sigma", "x", "y", "N"]  # the same for every backend
    seen, n_batches = [], 0
    for batch in reader.batches(20, rng=0):
        n_obs = batch["N"]
        assert isinstance(n_obs, int)
        assert batch["x"].shape[1:] == (n_obs,) and batch["y"].shape[1:] == (n_obs,)
        assert len(batch["beta"]) == len(batch["x"]) <= 20
        seen.append(_first_column(batch))
        n_batches += 1
    expected = np.concatenate([c["x"].values[:, 0] for c in bank.children.values()])
    np.testing.assert_array_equal(np.sort(np.concatenate(seen)), np.sort(expected))
    assert n_batches == sum(-(-n // 20) for _, _, n in reader.groups)
    # shuffled: a second epoch gives another order
    first = np.concatenate([_first_column(b) for b in reader.batches(20, rng=0)])
    other = np.concatenate([_first_column(b) for b in reader.batches(20, rng=1)])
    assert not np.array_equal(first, other)


def test_pilot_and_take(regression, tmp_path):
    path = tmp_path / "bank.zarr"
    simulate(regression, 300, batch_size=25, random_state=4, path=path)
    reader = open_bank(path)
    name, meta_values, size = max(reader.groups, key=lambda g: g[2])
    pilot = reader.pilot(1000, rng=0)
    assert pilot["N"] == meta_values["N"] and len(pilot["x"]) == size
    small = reader.pilot(5, rng=0)
    assert len(small["beta"]) == 5 and small["x"].shape[1] == meta_values["N"]
    first_name, first_meta, first_n = reader.groups[0]
    ds = xr.open_zarr(path, group=first_name, consolidated=False)
    taken = reader.take([2, 0, 1])
    np.testing.assert_array_equal(taken["beta"], ds["beta"].values[[2, 0, 1]])
    assert taken["N"] == first_meta["N"]
    np.testing.assert_array_equal(reader.take(slice(0, 3))["x"], ds["x"].values[:3])
    with pytest.raises(ValueError, match="span groups"):
        reader.take(slice(0, 300))
    with pytest.raises(IndexError):
        reader.take([300])


def test_user_dataset_without_meta():
    ds = xr.Dataset(
        {"theta": (("simulation", "p"), np.arange(20.0).reshape(10, 2)),
         "x": (("simulation",), np.arange(10.0))}
    )
    reader = open_bank(ds)
    assert reader.n_simulations == 10 and reader.keys() == ["theta", "x"]
    batches = list(reader.batches(4, rng=0))
    assert [len(b["x"]) for b in batches] == [4, 4, 2]
    assert batches[0]["x"].shape == (4, 1)
    rows = np.concatenate([b["theta"][:, 0] for b in batches])
    np.testing.assert_array_equal(np.sort(rows), np.arange(0.0, 20.0, 2))
    np.testing.assert_array_equal(reader.take(np.arange(10) == 3)["x"], [[3.0]])


class Heavy(Simulator):
    """About 8 kB per simulation."""

    def simulate(self, batch_size, rng):
        return {"theta": rng.normal(size=(batch_size, 4)),
                "x": rng.normal(size=(batch_size, 1000)).astype(np.float64)}


@pytest.mark.slow
def test_streaming_epoch_does_not_load_the_bank(tmp_path):
    path = tmp_path / "big.zarr"
    n = 25_000  # 25_000 * 8 kB = 200 MB
    simulate(Heavy(), n, batch_size=1000, random_state=0, path=path)
    bank_bytes = n * 1004 * 8
    reader = open_bank(path)
    tracemalloc.start()
    try:
        count = 0
        for batch in reader.batches(256, rng=0):
            count += len(batch["x"])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == n
    assert peak < 0.25 * bank_bytes, f"peak {peak / 1e6:.0f} MB for a {bank_bytes / 1e6:.0f} MB bank"
