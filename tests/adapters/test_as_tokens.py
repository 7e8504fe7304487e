"""AsTokens: a flat vector read as tokens that carry their feature's identity."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from skabi import AmortizedPosterior, make_adapter
from skabi.adapters import Adapter, AsTokens, Rename, Standardize
from skabi.exceptions import ShapeError
from skabi.networks import CouplingFlow, SetTransformer

FINITE = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False, width=32)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_tokens_hold_the_values_and_the_feature_codes(data):
    b = data.draw(st.integers(1, 5))
    f = data.draw(st.integers(1, 7))
    x = data.draw(hnp.arrays(np.float64, (b, f), elements=FINITE))
    step = AsTokens("x").fit({"x": x})
    z = step.transform({"x": x})["x"]
    assert z.shape == (b, f, 1 + f)
    np.testing.assert_array_equal(z[..., 0], x)
    np.testing.assert_array_equal(z[..., 1:], np.broadcast_to(np.eye(f), (b, f, f)))
    np.testing.assert_array_equal(step.inverse_transform({"x": z})["x"], x)
    np.testing.assert_array_equal(step.log_det_jac({"x": x})["x"], np.zeros(b))


def test_inverse_takes_any_leading_shape():
    x = np.arange(6.0).reshape(2, 3)
    step = AsTokens("x").fit({"x": x})
    z = step.transform({"x": x})["x"]
    stacked = np.stack([z, 2 * z])                       # (2, B, F, 1 + F)
    np.testing.assert_array_equal(step.inverse_transform({"x": stacked})["x"],
                                  np.stack([x, 2 * x]))


@pytest.mark.parametrize("shape", [(4,), (4, 3, 2)])
def test_other_ranks_are_refused_naming_the_variable(shape):
    with pytest.raises(ShapeError, match=r"AsTokens expects 'x' of shape \(B, F\); got shape"):
        AsTokens("x").fit({"x": np.zeros(shape)})


def test_another_number_of_features_than_in_fit_is_refused():
    step = AsTokens("x").fit({"x": np.zeros((4, 3))})
    with pytest.raises(ShapeError, match=r"'x' of shape \(B, 3\).*got shape \(2, 5\)"):
        step.transform({"x": np.zeros((2, 5))})


def test_datasets_of_different_sizes_are_refused():
    with pytest.raises(ShapeError, match="AsTokens got 'x' as datasets of different sizes"):
        AsTokens("x").fit({"x": [np.zeros(3), np.zeros(4)]})


def test_fluent_spelling_and_config_round_trip():
    x = np.random.default_rng(0).normal(size=(5, 4))
    adapter = Adapter().standardize("x").as_tokens("x").rename("x", "summary_variables")
    out = adapter.fit_transform({"x": x})
    assert out["summary_variables"].shape == (5, 4, 5)
    rebuilt = Adapter.from_config(json.loads(json.dumps(adapter.get_config())))
    np.testing.assert_array_equal(rebuilt.transform({"x": x})["summary_variables"],
                                  out["summary_variables"])


def _bank(n, rng):
    """theta ~ N(0, 1); of the four features only the third carries theta (noise 0.1), the
    others are noise of the same spread: a summary must tell the features apart."""
    theta = rng.normal(size=(n, 1))
    x = rng.normal(size=(n, 4))
    x[:, 2] = theta[:, 0] + 0.1 * rng.normal(size=n)
    return {"theta": theta, "x": x}


@pytest.fixture(scope="module")
def fitted():
    adapter = make_adapter(Standardize(["x"]), AsTokens("x"),
                           Rename("theta", "inference_variables"),
                           Rename("x", "summary_variables"))
    est = AmortizedPosterior(adapter=adapter,
                             inference_network=CouplingFlow(depth=2, subnet_width=16),
                             summary_network=SetTransformer(summary_dim=4, embed_dim=16,
                                                            num_heads=2),
                             epochs=30, random_state=0)
    return est.fit(_bank(1000, np.random.default_rng(0)))


def test_a_set_transformer_finds_the_informative_feature(fitted):
    test = _bank(200, np.random.default_rng(1))
    draws = fitted.sample({"x": test["x"]}, 100, return_type="numpy", random_state=0)
    mean = draws["theta"].mean(axis=1)[:, 0]
    # a posterior mean that ignored which feature is which would explain nothing
    r2 = 1 - np.mean((mean - test["theta"][:, 0]) ** 2) / np.var(test["theta"][:, 0])
    assert r2 > 0.8, r2


def test_save_and_load_rebuild_the_tokens(fitted, tmp_path):
    x = _bank(3, np.random.default_rng(2))
    fitted.save(tmp_path / "tokens")
    loaded = AmortizedPosterior.load(tmp_path / "tokens")
    np.testing.assert_allclose(loaded.log_prob(x), fitted.log_prob(x), rtol=1e-5, atol=1e-5)
