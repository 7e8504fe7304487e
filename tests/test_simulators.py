import numpy as np
import pytest

from skabi import Simulator, make_simulator
from skabi.exceptions import SimulatorError


def test_regression_shapes(regression_functions):
    prior, likelihood, meta = regression_functions
    sims = make_simulator([prior, likelihood], meta_fn=meta).sample(500, random_state=0)
    n = sims["N"]
    assert isinstance(n, int) and 5 <= n < 15
    assert sims["beta"].shape == (500, 2)
    assert sims["sigma"].shape == (500, 1)
    assert sims["x"].shape == (500, n) and sims["y"].shape == (500, n)
    assert (sims["sigma"] > 0).all()


def test_meta_constant_within_and_varies_between_batches(regression_functions):
    prior, likelihood, meta = regression_functions
    sim = make_simulator([prior, likelihood], meta_fn=meta, random_state=3)
    sizes = {sim.sample(4)["x"].shape[1] for _ in range(30)}
    assert len(sizes) > 3


def test_same_seed_same_batch_and_streams_advance(regression_functions):
    prior, likelihood, meta = regression_functions
    sim = make_simulator([prior, likelihood], meta_fn=meta)
    a, b = sim.sample(16, random_state=7), sim.sample(16, random_state=7)
    for key in ("beta", "sigma", "x", "y"):
        np.testing.assert_array_equal(a[key], b[key])
    c = sim.sample(16, random_state=8)
    assert not np.array_equal(a["beta"], c["beta"])
    seeded = make_simulator([prior, likelihood], meta_fn=meta, random_state=5)
    first, second = seeded.sample(8), seeded.sample(8)
    assert not np.array_equal(first["beta"], second["beta"])
    again = make_simulator([prior, likelihood], meta_fn=meta, random_state=5).sample(8)
    np.testing.assert_array_equal(first["beta"], again["beta"])


def test_global_numpy_random_is_seeded_and_restored():
    def prior():
        return dict(theta=np.random.normal(size=3))

    sim = make_simulator(prior)
    np.random.seed(123)
    expected_next = np.random.random()
    np.random.seed(123)
    a = sim.sample(5, random_state=1)
    assert np.random.random() == expected_next  # global stream untouched
    b = sim.sample(5, random_state=1)
    np.testing.assert_array_equal(a["theta"], b["theta"])
    assert a["theta"].shape == (5, 3)


def test_optional_arguments_use_defaults_and_drawn_values():
    def prior(rng):
        return dict(mu=rng.normal())

    def likelihood(mu, rng, scale=1.0, n=4):
        return dict(x=rng.normal(mu, scale, size=n))

    sims = make_simulator([prior, likelihood]).sample(3, random_state=0)
    assert sims["x"].shape == (3, 4) and sims["mu"].shape == (3, 1)


class _Noise(Simulator):
    def simulate(self, batch_size, rng, theta):
        return {"x": theta[:, None, :] + rng.normal(size=(batch_size, 10, theta.shape[1]))}


def test_batched_simulator_and_composition():
    class Prior(Simulator):
        def simulate(self, batch_size, rng):
            return {"theta": rng.normal(size=(batch_size, 2))}

    batch = Prior().sample(32, random_state=0)
    assert batch["theta"].shape == (32, 2)
    np.testing.assert_array_equal(batch["theta"], Prior().sample(32, random_state=0)["theta"])

    def prior(rng):
        return dict(theta=rng.normal(size=2))

    sims = make_simulator([prior, _Noise()]).sample(6, random_state=1)
    assert sims["x"].shape == (6, 10, 2)
    np.testing.assert_allclose(sims["x"].mean(axis=1), sims["theta"], atol=1.5)


def test_non_dict_return_names_function():
    def prior():
        return np.zeros(2)

    with pytest.raises(SimulatorError, match="'test_non_dict_return_names_function.<locals>.prior'.*dict.*ndarray"):
        make_simulator(prior).sample(2)


def test_missing_argument_names_function_argument_and_keys():
    def prior():
        return dict(beta=0.0)

    def likelihood(beta, sigma):
        return dict(x=beta + sigma)

    with pytest.raises(SimulatorError) as info:
        make_simulator([prior, likelihood]).sample(2)
    message = str(info.value)
    assert "likelihood" in message and "'sigma'" in message and "['beta']" in message


def test_shape_mismatch_within_batch_names_variable_and_shapes():
    def prior(rng):
        return dict(x=np.zeros(int(rng.integers(2, 100))))

    with pytest.raises(SimulatorError, match=r"'x'.*different shapes.*\(\d+,\).*\(\d+,\)"):
        make_simulator(prior).sample(20, random_state=0)


def test_same_variable_from_two_functions_is_an_error():
    def a():
        return dict(theta=1.0)

    with pytest.raises(SimulatorError, match="'theta'.*already drawn"):
        make_simulator([a, a]).sample(2)


def test_batched_simulator_with_wrong_leading_axis():
    class Bad(Simulator):
        def simulate(self, batch_size, rng):
            return {"theta": np.zeros((batch_size + 1, 2))}

    with pytest.raises(SimulatorError, match=r"'theta' with shape \(5, 2\).*batch_size=4"):
        Bad().sample(4)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "4"])
def test_bad_batch_size(bad):
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        make_simulator(lambda: dict(a=1.0)).sample(bad)


def _first(rng):
    return dict(a=rng.normal())


def _second(a, rng):
    return dict(b=a + rng.normal())


def _second_again(a):
    return dict(b=2 * a)


def test_signature_cache_follows_functions_and_is_not_pickled():
    import pickle

    sim = make_simulator([_first, _second])
    sim.sample(4, random_state=0)
    assert set(sim._calls) == {_first, _second}
    # replacing a function (as when a notebook cell redefines it) starts the cache over
    sim.functions = [_first, _second_again]
    out = sim.sample(3, random_state=0)
    np.testing.assert_allclose(out["b"], 2 * out["a"])
    assert set(sim._calls) == {_first, _second_again}
    back = pickle.loads(pickle.dumps(sim))
    assert "_calls" not in back.__dict__
    np.testing.assert_allclose(back.sample(3, random_state=0)["b"], out["b"])


def test_draws_of_array_subclasses_stack_as_plain_arrays():
    sim = make_simulator([lambda: dict(m=np.ma.masked_array([1.0, 2.0]))])
    out = sim.sample(3, random_state=0)
    assert type(out["m"]) is np.ndarray and out["m"].shape == (3, 2)
