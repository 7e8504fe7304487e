"""Banks on disk that were killed, ran out of space or were damaged (issue 29): netCDF is
no longer a write target, Zarr blocks carry checksums, damaged commit records are named,
and on_nonfinite="drop" applies to banks on disk."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import xarray as xr

from skabi import Simulator
from skabi.exceptions import DamagedBankError
from skabi.storage import open_bank, simulate

from models import Gaussian, tiny_estimator

zarr = pytest.importorskip("zarr")
pytest.importorskip("h5netcdf")

HERE = os.path.dirname(os.path.abspath(__file__))


def _run_python(code, cwd):
    """Run ``code`` in a fresh interpreter (tests/ importable); its return code and output."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([HERE, *sys.path]),
           "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)
    return done.returncode, done.stdout + done.stderr


def _all_rows(reader):
    """Every simulation of a one-group reader, in order (every block read and checked)."""
    return reader.take(slice(0, reader.n_simulations))


# --------------------------------------------------------------------------- netCDF writes
def test_netcdf_is_refused_as_write_target_and_says_why(tmp_path):
    path = tmp_path / "bank.nc"
    with pytest.raises(ValueError, match=r"no longer writes netCDF.*unreadable.*full disk.*"
                                         r"path='bank\.zarr'.*to_netcdf"):
        simulate(Gaussian(n_obs=3), 20, batch_size=10, random_state=0, path=path)
    assert not path.exists()
    with pytest.raises(ValueError, match="no longer writes netCDF"):
        simulate(Gaussian(n_obs=3), 20, batch_size=10, path=tmp_path / "b.zarr",
                 format="netcdf")


def test_netcdf_banks_of_earlier_versions_still_read(tmp_path):
    """A complete netCDF bank opens read-only; an unfinished one is refused by simulate
    (it cannot be resumed safely) but open_bank reads its committed simulations."""
    zarr_path, nc_path = tmp_path / "bank.zarr", tmp_path / "bank.nc"

    class Stop(Gaussian):
        calls = 0

        def simulate(self, batch_size, rng):
            Stop.calls += 1
            if Stop.calls == 3:
                raise RuntimeError("interrupted")
            return super().simulate(batch_size, rng)

    with pytest.raises(RuntimeError, match="interrupted"):
        simulate(Stop(n_obs=3), 40, batch_size=10, random_state=0, path=zarr_path)
    tree = xr.open_datatree(zarr_path, engine="zarr", consolidated=False)
    tree.to_netcdf(nc_path, engine="h5netcdf")
    tree.close()
    with pytest.raises(ValueError, match=r"unfinished bank.*open_bank\('.*bank\.nc'\) still"):
        simulate(Gaussian(n_obs=3), 40, batch_size=10, random_state=0, path=nc_path)
    reader = open_bank(nc_path)
    assert reader.n_simulations == 20
    reader.close()


def test_netcdf_write_out_of_space_does_not_crash_the_interpreter(tmp_path):
    """Today a file-size limit (what a full disk does to a write) segfaults h5py at GC."""
    code = """
        import resource, signal
        from models import Gaussian
        from skabi.storage import simulate
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
        try:
            simulate(Gaussian(n_obs=50), 2000, batch_size=100, random_state=0, path="b.nc")
        except (OSError, ValueError) as exc:
            print("refused:", type(exc).__name__)
        import gc; gc.collect()
        print("clean exit")
    """
    rc, out = _run_python(code, tmp_path)
    assert rc == 0 and "clean exit" in out, out[-2000:]


def test_zarr_write_out_of_space_keeps_the_committed_batches(tmp_path):
    code = """
        import resource, signal
        from models import Gaussian
        from skabi.storage import simulate
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
        try:
            simulate(Gaussian(n_obs=50), 2000, batch_size=100, random_state=0, path="b.zarr")
        except OSError as exc:
            print("OSError", exc.errno)
        print("clean exit")
    """
    rc, out = _run_python(code, tmp_path)
    assert rc == 0 and "OSError" in out and "clean exit" in out, out[-2000:]
    reader = open_bank(tmp_path / "b.zarr")   # the committed batches, checked
    assert 0 < reader.n_simulations < 2000 and reader.n_simulations % 100 == 0
    np.testing.assert_array_equal(
        _all_rows(reader)["x"],
        simulate(Gaussian(n_obs=50), reader.n_simulations, batch_size=100,
                 random_state=0)["x"].values)


class KillAt(Simulator):
    """A Gaussian whose process is killed (SIGKILL) when it draws batch ``k``."""

    def __init__(self, k):
        self.k, self.calls, self.inner = k, 0, Gaussian(n_obs=5)

    def simulate(self, batch_size, rng):
        if self.calls == self.k:
            os.kill(os.getpid(), signal.SIGKILL)
        self.calls += 1
        return self.inner.simulate(batch_size, rng)


def test_killed_zarr_writer_keeps_its_committed_batches(tmp_path):
    code = """
        from test_bank_integrity import KillAt
        from skabi.storage import simulate
        simulate(KillAt(4), 100, batch_size=10, random_state=7, path="bank.zarr")
    """
    rc, out = _run_python(code, tmp_path)
    assert rc == -signal.SIGKILL, out[-2000:]
    path = tmp_path / "bank.zarr"
    assert open_bank(path).n_simulations == 40
    resumed = simulate(Gaussian(n_obs=5), 100, batch_size=10, random_state=7, path=path)
    xr.testing.assert_identical(resumed.load(),
                                simulate(Gaussian(n_obs=5), 100, batch_size=10, random_state=7))
    assert _all_rows(open_bank(path))["x"].shape == (100, 5, 2)


# --------------------------------------------------------------------------- checksums
@pytest.fixture
def bank(tmp_path):
    """A Zarr bank of 60 simulations; its x rows take 2 chunks (block_rows 32)."""
    path = tmp_path / "bank.zarr"
    simulate(Big(), 60, batch_size=8, random_state=0, path=path).close()
    return path


class Big(Simulator):
    """32 kB per simulation: one disk chunk (1 MiB) holds 32 of them."""

    def simulate(self, batch_size, rng):
        return {"theta": rng.normal(size=(batch_size, 2)),
                "x": rng.normal(size=(batch_size, 4000))}


def _chunk_files(path, key):
    root = path / key / "c"
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_checksums_are_recorded_per_block(bank):
    state = json.loads(zarr.open_group(str(bank), mode="r").attrs["skabi_state"])
    entry = state["checksums"][""]
    assert entry["block_rows"] == 32
    assert sorted(entry["sha256"]) == ["theta", "x"]
    assert [len(v) for v in entry["sha256"].values()] == [2, 2]
    reader = open_bank(bank)
    assert len(list(reader.batches(16, rng=0))) == 4    # intact: reads as before


def test_deleted_chunk_is_named_not_read_as_zeros(bank):
    files = _chunk_files(bank, "x")
    assert len(files) == 2
    files[1].unlink()
    reader = open_bank(bank)
    with pytest.raises(DamagedBankError, match=r"Variable 'x' of the bank '.*bank\.zarr', "
                                               r"rows 32-59: checksum .* commit record"):
        list(reader.batches(16, rng=0))
    with pytest.raises(DamagedBankError, match="rows 32-59"):
        open_bank(bank).take([40])
    np.testing.assert_array_equal(open_bank(bank).take([0, 1])["theta"].shape, (2, 2))


def test_changed_value_is_named_not_returned(bank):
    zarr.open_array(str(bank / "theta"), mode="a")[3, 1] = 123.0   # a valid chunk, other data
    with pytest.raises(DamagedBankError, match=r"Variable 'theta'.*rows 0-31"):
        list(open_bank(bank).batches(16, rng=0))
    with pytest.raises(DamagedBankError, match="'theta'"):
        open_bank(bank).pilot(5, rng=0)


def test_flipped_bit_in_a_chunk_file_is_named(bank):
    chunk = _chunk_files(bank, "x")[0]
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0x10
    chunk.write_bytes(bytes(data))
    with pytest.raises(DamagedBankError, match=r"Variable 'x'.*rows 0-31"):
        _all_rows(open_bank(bank))


def test_resumed_bank_has_the_checksums_of_an_uninterrupted_one(tmp_path):
    class Stop(Simulator):
        def __init__(self):
            self.calls, self.inner = 0, Big()

        def simulate(self, batch_size, rng):
            if self.calls == 5:   # in the middle of the first 32-row block
                raise RuntimeError("interrupted")
            self.calls += 1
            return self.inner.simulate(batch_size, rng)

    path, whole = tmp_path / "bank.zarr", tmp_path / "whole.zarr"
    with pytest.raises(RuntimeError, match="interrupted"):
        simulate(Stop(), 60, batch_size=6, random_state=1, path=path)
    simulate(Big(), 60, batch_size=6, random_state=1, path=path).close()
    simulate(Big(), 60, batch_size=6, random_state=1, path=whole).close()
    records = [zarr.open_group(str(p), mode="r").attrs["skabi_state"] for p in (path, whole)]
    assert records[0] == records[1]
    assert _all_rows(open_bank(path))["x"].shape == (60, 4000)


def test_damaged_unfinished_block_stops_a_resume(tmp_path):
    path = tmp_path / "bank.zarr"

    class Stop(Big):
        calls = 0

        def simulate(self, batch_size, rng):
            Stop.calls += 1
            if Stop.calls == 3:
                raise RuntimeError("interrupted")
            return super().simulate(batch_size, rng)

    with pytest.raises(RuntimeError, match="interrupted"):
        simulate(Stop(), 60, batch_size=6, random_state=1, path=path)
    zarr.open_array(str(path / "x"), mode="a")[2, 0] = 5.0
    with pytest.raises(DamagedBankError, match=r"'x'.*rows 0-11.*cannot be resumed"):
        simulate(Big(), 60, batch_size=6, random_state=1, path=path)


def test_bank_without_checksums_reads_as_before(bank):
    root = zarr.open_group(str(bank), mode="a")
    state = json.loads(root.attrs["skabi_state"])
    del state["checksums"]
    root.attrs["skabi_state"] = json.dumps(state)
    zarr.open_array(str(bank / "theta"), mode="a")[3, 1] = 123.0   # not checked: no record
    assert _all_rows(open_bank(bank))["theta"][3, 1] == 123.0


def test_changed_meta_variable_is_named(tmp_path):
    from models import likelihood, meta, prior
    from skabi import make_simulator

    path = tmp_path / "bank.zarr"
    simulate(make_simulator([prior, likelihood], meta_fn=meta), 60, batch_size=10,
             random_state=0, path=path).close()
    name = sorted(zarr.open_group(str(path), mode="r").group_keys())[0]
    zarr.open_array(str(path / name / "N"), mode="a")[...] = 99
    with pytest.raises(DamagedBankError, match=rf"Group '{name}' .* name group 'N=99'"):
        open_bank(path)


# --------------------------------------------------------------------------- records
def _state(**changes):
    state = {"completed_batches": 2, "group_rows": {"": 20}, "meta_variables": []}
    state.update(changes)
    return json.dumps(state)


DAMAGED_RECORDS = {
    "not JSON": ("skabi_state", '{"completed_batches": 2, "group_'),
    "empty": ("skabi_state", ""),
    "a list": ("skabi_state", "[2, 20]"),
    "null": ("skabi_state", "null"),
    "a number": ("skabi_state", 2),
    "an object, not text": ("skabi_state", {"completed_batches": 2}),
    "deeply nested": ("skabi_state", "[" * 100_000 + "]" * 100_000),
    "no group_rows": ("skabi_state", json.dumps({"completed_batches": 2})),
    "no completed_batches": ("skabi_state", json.dumps({"group_rows": {"": 20}})),
    "completed_batches text": ("skabi_state", _state(completed_batches="2")),
    "completed_batches negative": ("skabi_state", _state(completed_batches=-1)),
    "completed_batches bool": ("skabi_state", _state(completed_batches=True)),
    "too many batches": ("skabi_state", _state(completed_batches=9)),
    "group_rows a list": ("skabi_state", _state(group_rows=[20])),
    "rows text": ("skabi_state", _state(group_rows={"": "20"})),
    "rows float": ("skabi_state", _state(group_rows={"": 20.5})),
    "rows do not add up": ("skabi_state", _state(group_rows={"": 30})),
    "meta_variables a number": ("skabi_state", _state(meta_variables=5)),
    "checksums a list": ("skabi_state", _state(checksums=[])),
    "checksums of a group missing": ("skabi_state", _state(checksums={})),
    "block_rows zero": ("skabi_state",
                        _state(checksums={"": {"block_rows": 0, "sha256": {}}})),
    "too few digests": ("skabi_state",
                        _state(checksums={"": {"block_rows": 8, "sha256": {"x": ["ab"]}}})),
    "a group that is not there": ("skabi_state", _state(group_rows={"": 10, "N=5": 10})),
    "n missing": ("n", None),
    "n text": ("n", "twenty"),
    "batch_size zero": ("batch_size", 0),
    "seed_entropy missing": ("seed_entropy", None),
}


@pytest.fixture(scope="module")
def intact(tmp_path_factory):
    """A complete Zarr bank of 40 simulations in batches of 10 (2 committed in tests)."""
    path = tmp_path_factory.mktemp("intact") / "bank.zarr"
    simulate(Gaussian(n_obs=3), 40, batch_size=10, random_state=0, path=path).close()
    return path


def _damage(src, dst, key, value):
    import shutil

    shutil.copytree(src, dst)
    root = zarr.open_group(str(dst), mode="a")
    if key != "skabi_state":   # a valid record: 2 of 4 batches committed, no checksums
        root.attrs["skabi_state"] = _state()
    if value is None:
        del root.attrs[key]
    else:
        root.attrs[key] = value


@pytest.mark.parametrize("case", list(DAMAGED_RECORDS))
def test_damaged_record_is_named_by_reader_and_writer(intact, tmp_path, case):
    key, value = DAMAGED_RECORDS[case]
    path = tmp_path / "bank.zarr"
    _damage(intact, path, key, value)
    where = r"bank '.*bank\.zarr'"
    with pytest.raises(DamagedBankError, match=where) as info:
        open_bank(path)
    assert key in str(info.value) or "group" in str(info.value)
    with pytest.raises(DamagedBankError, match=where):
        simulate(Gaussian(n_obs=3), 40, batch_size=10, random_state=0, path=path)


def test_record_whose_rows_are_missing_is_named(intact, tmp_path):
    path = tmp_path / "bank.zarr"
    _damage(intact, path, "n", 40)
    zarr.open_array(str(path / "x"), mode="a").resize((15, 3, 2))
    with pytest.raises(DamagedBankError, match=r"holds 20 committed simulations.*'x': 15"):
        open_bank(path)
    with pytest.raises(DamagedBankError, match=r"'x': 15.*damaged"):
        simulate(Gaussian(n_obs=3), 40, batch_size=10, random_state=0, path=path)


def test_unreadable_zarr_metadata_is_named(intact, tmp_path):
    import shutil

    path = tmp_path / "bank.zarr"
    shutil.copytree(intact, path)
    (path / "zarr.json").write_text('{"zarr_format": 3, "node_type": "gr')
    with pytest.raises(DamagedBankError, match=r"zarr\.json"):
        open_bank(path)


# --------------------------------------------------------------------------- on_nonfinite
class WithNaN(Simulator):
    """A Gaussian whose rows 3, 7 and 41 hold NaN."""

    def __init__(self):
        self.inner, self.start = Gaussian(n_obs=5), 0

    def simulate(self, batch_size, rng):
        out = self.inner.simulate(batch_size, rng)
        rows = [r - self.start for r in (3, 7, 41) if 0 <= r - self.start < batch_size]
        out["x"][rows, 2, 0] = np.nan
        self.start += batch_size
        return out


def test_drop_nonfinite_reader(tmp_path):
    path = tmp_path / "bank.zarr"
    simulate(WithNaN(), 100, batch_size=20, random_state=0, path=path).close()
    with pytest.warns(UserWarning, match="3 of the bank's 100 simulations hold NaN"):
        reader = open_bank(path).without_nonfinite()
    assert reader.n_simulations == 97
    rows = np.concatenate([b["x"] for b in reader.batches(16, rng=0)])
    assert rows.shape == (97, 5, 2) and np.isfinite(rows).all()
    assert np.isfinite(reader.take(slice(0, 97))["x"]).all()


def test_on_nonfinite_drop_applies_to_a_bank_on_disk(tmp_path, one_torch_thread):
    path = tmp_path / "bank.zarr"
    simulate(WithNaN(), 100, batch_size=20, random_state=0, path=path).close()
    with pytest.warns(UserWarning, match="3 of the bank's 100 simulations hold NaN"):
        est = tiny_estimator(on_nonfinite="drop", epochs=1, validation_sims=None).fit(str(path))
    assert np.isfinite(est.history_["loss"]).all()
