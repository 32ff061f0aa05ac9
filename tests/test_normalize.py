"""L2, signed power and PCA-whitening: hand-checked values, view-shaped input, scikit-learn compatibility, errors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from course_utils.normalize import (
    L2Normalizer,
    PCAWhitening,
    SignedPower,
    l2_rows,
    make_normalizer,
    normalize_features,
)


def correlated_data(n: int, d: int, seed: int = 0) -> np.ndarray:
    """Gaussian vectors with very unequal variances and correlations (a random linear mix), plus an offset."""
    rng = np.random.default_rng(seed)
    mix = rng.standard_normal((d, d)) * np.linspace(3, 0.1, d)[:, None]
    return rng.standard_normal((n, d)) @ mix + rng.standard_normal(d) * 5


# ---------------------------------------------------------------------------- L2
def test_l2_of_3_4_is_point6_point8_and_zero_vectors_stay_zero():
    out = L2Normalizer().fit_transform(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])


def test_l2_normalises_each_view_separately_and_keeps_the_3d_shape():
    views = np.array([[[3.0, 4.0], [0.0, 2.0]], [[-5.0, 12.0], [1.0, 1.0]]])  # (2 images, 2 views, 2 dims)
    out = L2Normalizer().transform(views)
    assert out.shape == (2, 2, 2)
    expected = [[[0.6, 0.8], [0.0, 1.0]], [[-5 / 13, 12 / 13], [2**-0.5, 2**-0.5]]]
    np.testing.assert_allclose(out, expected)


def test_float32_stays_float32_and_integers_become_float64():
    assert L2Normalizer().transform(np.ones((2, 3), dtype=np.float32)).dtype == np.float32
    assert SignedPower().transform(np.array([[4, 9]])).dtype == np.float64


# ---------------------------------------------------------------------------- signed power
def test_signed_power_half_of_minus4_and_9_is_minus2_and_3():
    np.testing.assert_allclose(SignedPower(alpha=0.5).transform(np.array([[-4.0, 9.0]])), [[-2.0, 3.0]])


def test_signed_power_two_squares_magnitudes_keeps_signs_and_3d_shape():
    out = SignedPower(alpha=2).transform(np.array([[[-3.0, 0.5, 0.0]], [[2.0, -0.1, 1.0]]]))
    assert out.shape == (2, 1, 3)
    np.testing.assert_allclose(out, [[[-9.0, 0.25, 0.0]], [[4.0, -0.01, 1.0]]])


@pytest.mark.parametrize("alpha", [0, -1, float("nan"), "2"])
def test_signed_power_rejects_non_positive_or_non_numeric_alpha(alpha):
    with pytest.raises(ValueError, match="SignedPower: alpha must be a finite number > 0"):
        SignedPower(alpha=alpha).fit(np.ones((2, 2)))


def test_l2_rejects_non_positive_eps():
    with pytest.raises(ValueError, match="L2Normalizer: eps must be > 0"):
        L2Normalizer(eps=0).transform(np.ones((1, 2)))


# ---------------------------------------------------------------------------- PCA-whitening
def test_whitening_gives_identity_covariance_and_zero_mean_on_its_fit_set():
    X = correlated_data(400, 12)
    out = PCAWhitening(n_components=8).fit_transform(X)
    assert out.shape == (400, 8)
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-10)
    np.testing.assert_allclose(np.cov(out, rowvar=False), np.eye(8), atol=1e-8)


def test_pca_learns_on_one_set_and_applies_those_statistics_to_another():
    fit_set, other = correlated_data(300, 6, seed=1), correlated_data(50, 6, seed=2)
    pca = PCAWhitening(n_components=4).fit(fit_set)
    np.testing.assert_allclose(pca.mean_, fit_set.mean(axis=0))
    eigenvalues = np.sort(np.linalg.eigvalsh(np.cov(fit_set, rowvar=False)))[::-1][:4]
    np.testing.assert_allclose(pca.explained_variance_, eigenvalues, rtol=1e-10)
    np.testing.assert_allclose(pca.components_ @ pca.components_.T, np.eye(4), atol=1e-12)
    expected = (other - fit_set.mean(axis=0)) @ pca.components_.T / np.sqrt(eigenvalues)
    np.testing.assert_allclose(pca.transform(other), expected, rtol=1e-10)
    unwhitened = PCAWhitening(n_components=4, whiten=False).fit(fit_set).transform(other)
    np.testing.assert_allclose(unwhitened, (other - fit_set.mean(axis=0)) @ pca.components_.T, rtol=1e-10)


def test_fewer_vectors_than_dimensions_uses_the_gram_matrix_with_the_same_result():
    X = correlated_data(15, 40, seed=3)  # 15 vectors in 40 dims: at most 14 non-zero variance directions
    pca = PCAWhitening(n_components=None).fit(X)
    assert pca.n_components_ == 14
    eigenvalues = np.sort(np.linalg.eigvalsh(np.cov(X, rowvar=False)))[::-1][:14]
    np.testing.assert_allclose(pca.explained_variance_, eigenvalues, rtol=1e-8)
    np.testing.assert_allclose(np.cov(pca.transform(X), rowvar=False), np.eye(14), atol=1e-8)


def test_component_signs_are_fixed_largest_entry_positive():
    components = PCAWhitening(n_components=5).fit(correlated_data(200, 7)).components_
    largest = components[np.arange(5), np.abs(components).argmax(axis=1)]
    assert (largest > 0).all()


def test_views_are_pooled_for_fitting_and_kept_apart_for_transforming():
    X = correlated_data(60, 5).reshape(20, 3, 5)  # 20 images x 3 views
    by_view = PCAWhitening(n_components=3).fit(X)
    by_row = PCAWhitening(n_components=3).fit(X.reshape(60, 5))
    np.testing.assert_allclose(by_view.components_, by_row.components_)
    out = by_view.transform(X)
    assert out.shape == (20, 3, 3)
    np.testing.assert_allclose(out.reshape(60, 3), by_row.transform(X.reshape(60, 5)))


def test_tiny_eigenvalues_are_clamped_instead_of_exploding():
    rng = np.random.default_rng(4)
    flat = rng.standard_normal((100, 2)) @ np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])  # rank 2 in 3-D
    pca = PCAWhitening(n_components=3, eps=1e-6).fit(flat)
    assert pca.explained_variance_[2] < 1e-12 * pca.explained_variance_[0]
    out = pca.transform(flat + rng.standard_normal((100, 3)) * 1e-3)
    assert np.isfinite(out).all()
    # the degenerate direction is divided by sqrt(1e-6 * largest eigenvalue), not by ~0
    limit = 1e-3 * 5 / np.sqrt(1e-6 * pca.explained_variance_[0])
    assert np.abs(out[:, 2]).max() < limit


def test_pca_rejects_more_components_than_the_fit_set_supports():
    with pytest.raises(ValueError, match=r"n_components=500 must be an int between 1 and 9 .*10 vectors of 20 dims"):
        PCAWhitening().fit(correlated_data(10, 20))


def test_pca_rejects_constant_data_and_a_different_width_at_transform():
    with pytest.raises(ValueError, match="zero variance"):
        PCAWhitening(n_components=1).fit(np.ones((5, 3)))
    pca = PCAWhitening(n_components=2).fit(correlated_data(30, 4))
    with pytest.raises(ValueError, match="X has 5 features, but PCAWhitening is expecting 4 features as input"):
        pca.transform(np.ones((2, 5)))


# ---------------------------------------------------------------------------- input checks
@pytest.mark.parametrize("transformer", [L2Normalizer(), SignedPower(), PCAWhitening(n_components=1)])
def test_wrong_ndim_is_rejected_with_the_shape(transformer):
    with pytest.raises(ValueError, match=r"must be 2-D .* or 3-D .*got shape \(4,\)"):
        transformer.fit_transform(np.ones(4))


@pytest.mark.parametrize("transformer", [L2Normalizer(), SignedPower(), PCAWhitening(n_components=1)])
def test_nan_rows_are_rejected_naming_the_rows(transformer):
    X = np.ones((6, 3))
    X[4, 1] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinite values in 1 row\(s\) \(first: \[4\]\)"):
        transformer.fit_transform(X)


def test_non_numeric_input_is_rejected():
    with pytest.raises(ValueError, match="must hold numbers"):
        L2Normalizer().transform(np.array([["a", "b"]]))


# ---------------------------------------------------------------------------- pipelines
def test_make_normalizer_orders_power_and_l2_as_asked():
    x = np.array([[1.0, 2.0]])
    power_then_l2 = make_normalizer(power=2)
    assert [name for name, _ in power_then_l2.steps] == ["signed_power", "l2"]
    np.testing.assert_allclose(power_then_l2.fit_transform(x), [[1 / 17**0.5, 4 / 17**0.5]])
    l2_then_power = make_normalizer(power=2, order="l2_then_power")
    np.testing.assert_allclose(l2_then_power.fit_transform(x), [[0.2, 0.8]])  # (1,2)/sqrt(5), squared


def test_make_normalizer_builds_the_retrieval_chain_and_an_identity():
    chain = make_normalizer(power=2, order="l2_then_power", pca_components=3)
    assert [name for name, _ in chain.steps] == ["l2_before_pca", "pca_whitening", "l2", "signed_power"]
    out = chain.fit_transform(correlated_data(50, 6).reshape(25, 2, 6))
    assert out.shape == (25, 2, 3)
    np.testing.assert_allclose(np.abs(out).sum(axis=-1), 1.0)  # unit L2 vectors squared sum to 1 in L1
    identity = make_normalizer(l2=False)
    x = np.array([[3.0, -4.0]])
    np.testing.assert_array_equal(identity.fit_transform(x), x)
    with pytest.raises(ValueError, match="order must be one of"):
        make_normalizer(order="sideways")


def test_transformers_clone_and_set_params_inside_a_pipeline():
    pipe = Pipeline([("power", SignedPower(alpha=2)), ("pca", PCAWhitening(n_components=2, whiten=False))])
    copy = clone(pipe)
    assert copy.get_params()["power__alpha"] == 2 and copy.get_params()["pca__n_components"] == 2
    copy.set_params(power__alpha=0.5, pca__n_components=1)
    assert pipe.get_params()["power__alpha"] == 2  # the original is untouched
    assert copy.fit_transform(np.abs(correlated_data(20, 4))).shape == (20, 1)
    assert repr(SignedPower(alpha=2)) == "SignedPower(alpha=2)"


def test_l2_rows_is_the_one_l2_normalisation():
    rows = np.array([[3.0, 4.0], [0.0, 0.0]], dtype=np.float32)
    unit = l2_rows(rows)
    assert unit.dtype == np.float32
    np.testing.assert_allclose(unit, [[0.6, 0.8], [0.0, 0.0]], rtol=1e-6)
    assert np.array_equal(L2Normalizer().fit_transform(rows), unit)
    views = np.arange(1, 13, dtype=np.float64).reshape(2, 3, 2)  # (images, views, dims): each view on its own
    np.testing.assert_allclose(np.linalg.norm(l2_rows(views), axis=-1), np.ones((2, 3)))


def test_the_retrieval_order_ends_with_a_second_l2():
    chain = make_normalizer(power=2, order="l2_then_power_then_l2", pca_components=2)
    assert [name for name, _ in chain.steps] == ["l2_before_pca", "pca_whitening", "l2", "signed_power", "final_l2"]
    assert [name for name, _ in make_normalizer(order="l2_then_power_then_l2").steps] == ["l2"]  # no power: one L2


def test_input_errors_use_scikit_learns_words():
    with pytest.raises(TypeError, match="sparse input is not supported"):
        L2Normalizer().fit(scipy.sparse.csr_matrix(np.eye(3)))
    with pytest.raises(ValueError, match="Complex data not supported"):
        L2Normalizer().fit(np.ones((2, 3), dtype=complex))
    with pytest.raises(ValueError, match=r"0 feature\(s\) \(shape=\(4, 0\)\) while a minimum of 1 is required"):
        L2Normalizer().fit(np.ones((4, 0)))
    assert L2Normalizer().fit_transform(np.array([[3, 4]], dtype=object)).tolist() == [[0.6, 0.8]]


def test_normalize_features_is_l2_then_optionally_power_and_l2_again_in_float32():
    X = np.array([[[3.0, -4.0]], [[1.0, 0.0]]])
    np.testing.assert_allclose(normalize_features(X), [[[0.6, -0.8]], [[1.0, 0.0]]], rtol=1e-6)
    assert normalize_features(X).dtype == np.float32 and np.array_equal(normalize_features(X, 1), normalize_features(X))
    # power 2 on (0.6, -0.8): (0.36, -0.64), of length sqrt(0.36^2 + 0.64^2)
    length = np.hypot(0.36, 0.64)
    np.testing.assert_allclose(normalize_features(X, 2)[0, 0], [0.36 / length, -0.64 / length], rtol=1e-6)
