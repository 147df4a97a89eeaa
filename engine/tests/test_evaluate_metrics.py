"""Exact math of the evaluation metrics (docs/evaluate.md): closed forms, hand-computed values, edge cases."""

import math

import numpy as np
import pytest

from wanlora_engine.evaluate.metrics import (
    clip_score,
    cosine_similarities,
    frechet_distance,
    frechet_distance_of_features,
    gaussian_statistics,
    inception_score,
    softmax,
    temporal_consistency,
    trace_sqrt_product,
)


def samples_with_exact_moments(mean, covariance, n, seed=0):
    """n samples whose empirical mean and unbiased covariance are exactly `mean` and `covariance`."""
    rng = np.random.default_rng(seed)
    d = len(mean)
    z = rng.normal(size=(n, d))
    z -= z.mean(axis=0)
    z = z @ np.linalg.inv(np.linalg.cholesky(z.T @ z / (n - 1))).T  # empirical covariance I
    return z @ np.linalg.cholesky(covariance).T + mean


def test_one_dimensional_gaussians_match_the_wasserstein_closed_form():
    # W2²(N(μ1, σ1²), N(μ2, σ2²)) = (μ1 − μ2)² + (σ1 − σ2)²
    value = frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([-2.0]), np.array([[9.0]]))
    assert value == pytest.approx(9.0 + 1.0, abs=1e-12)


def test_commuting_covariances_give_the_sum_of_squared_root_differences():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 4.0, 1.0])
    expected = 1.0 + 0.0 + 4.0 + (1 - 2) ** 2 + (2 - 2) ** 2 + (3 - 1) ** 2
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, abs=1e-12)


def test_non_commuting_2x2_covariances_match_the_closed_form():
    # For 2×2 PSD A, B: tr((AB)^½) = sqrt(tr(AB) + 2·sqrt(det A · det B)).
    s1 = np.array([[2.0, 0.6], [0.6, 1.0]])
    s2 = np.array([[1.0, -0.4], [-0.4, 3.0]])
    assert not np.allclose(s1 @ s2, s2 @ s1)
    tr_sqrt = math.sqrt(np.trace(s1 @ s2) + 2 * math.sqrt(np.linalg.det(s1) * np.linalg.det(s2)))
    assert trace_sqrt_product(s1, s2) == pytest.approx(tr_sqrt, rel=1e-12)
    mu1, mu2 = np.array([0.5, -1.0]), np.array([2.0, 1.0])
    expected = (1.5 ** 2 + 2.0 ** 2) + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-12)
    assert frechet_distance(mu2, s2, mu1, s1) == pytest.approx(expected, rel=1e-12)


def test_feature_sets_with_known_moments_give_the_closed_form():
    s1 = np.array([[2.0, 0.6], [0.6, 1.0]])
    s2 = np.array([[1.0, -0.4], [-0.4, 3.0]])
    x = samples_with_exact_moments(np.array([0.5, -1.0]), s1, 50, seed=1)
    y = samples_with_exact_moments(np.array([2.0, 1.0]), s2, 70, seed=2)
    stats = gaussian_statistics(x)
    assert stats.count == 50 and np.allclose(stats.covariance, s1, atol=1e-12)
    expected = frechet_distance(np.array([0.5, -1.0]), s1, np.array([2.0, 1.0]), s2)
    assert frechet_distance_of_features(x, y) == pytest.approx(expected, rel=1e-10)


def test_float32_features_are_computed_in_float64():
    x = samples_with_exact_moments(np.zeros(2), np.eye(2), 40, seed=3) * 1e3 + 1e4
    exact = frechet_distance_of_features(x, x + 1.0)
    assert exact == pytest.approx(2.0, rel=1e-9)
    single = x.astype(np.float32)
    assert frechet_distance_of_features(single, single + np.float32(1.0)) == pytest.approx(2.0, rel=1e-3)


def test_fewer_samples_than_dimensions_stays_finite_and_zero_for_identical_sets():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(12, 400))  # rank-11 covariance, like FVD with 12 videos
    assert frechet_distance_of_features(x, x) == pytest.approx(0.0, abs=1e-8)
    shifted = frechet_distance_of_features(x, x + 0.5)
    assert shifted == pytest.approx(400 * 0.25, rel=1e-8)  # same covariance: only |Δμ|² remains
    other = frechet_distance_of_features(x, rng.normal(size=(12, 400)))
    assert math.isfinite(other) and other > 0


def test_a_covariance_needs_two_samples():
    with pytest.raises(ValueError, match="at least 2"):
        gaussian_statistics(np.zeros((1, 3)))


def test_inception_score_of_uniform_predictions_is_one():
    score = inception_score(np.full((50, 1000), 1 / 1000), splits=10)
    assert score.mean == pytest.approx(1.0, abs=1e-12) and score.std == pytest.approx(0.0, abs=1e-12)
    assert score.splits == 10 and score.samples == 50


@pytest.mark.parametrize("k", [1, 2, 7, 1000])
def test_inception_score_of_confident_predictions_over_k_classes_is_k(k):
    # every split holds each of the k classes once, predicted with certainty
    probabilities = np.tile(np.eye(k), (10, 1))
    score = inception_score(probabilities, splits=10)
    assert score.mean == pytest.approx(k, rel=1e-12) and score.std == pytest.approx(0.0, abs=1e-9)


def test_inception_score_by_hand():
    p = np.array([[1.0, 0.0], [0.5, 0.5]])
    marginal = np.array([0.75, 0.25])
    kl1 = math.log(1 / 0.75)
    kl2 = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)
    assert inception_score(p, splits=1).mean == pytest.approx(math.exp((kl1 + kl2) / 2), rel=1e-12)
    assert marginal.sum() == 1.0
    # fewer than 2·splits samples: the splits drop to N // 2 (a one-sample split would always score 1)
    few = inception_score(p, splits=10)
    assert few.splits == 1 and few.mean == pytest.approx(math.exp((kl1 + kl2) / 2))
    six = inception_score(np.tile(np.eye(2), (3, 1)), splits=10)
    assert six.splits == 3 and six.mean == pytest.approx(2.0)


def test_inception_score_splits_are_contiguous_like_the_reference():
    # first half all class 0, second half all class 1: two splits are each certain of one class (IS 1);
    # one split sees both classes (IS 2)
    p = np.vstack([np.tile([1.0, 0.0], (4, 1)), np.tile([0.0, 1.0], (4, 1))])
    assert inception_score(p, splits=2).mean == pytest.approx(1.0)
    assert inception_score(p, splits=1).mean == pytest.approx(2.0)


def test_softmax_is_stable_for_large_logits():
    p = softmax(np.array([[1000.0, 1000.0], [0.0, -1e9]]))
    assert np.allclose(p, [[0.5, 0.5], [1.0, 0.0]])


def test_clip_score_identical_is_100_and_opposite_is_0():
    t = np.array([0.3, -1.2, 2.0, 0.1])
    assert clip_score(t, np.stack([t, 2 * t])) == pytest.approx(100.0, rel=1e-12)
    assert clip_score(t, -t[None]) == 0.0
    assert clip_score(t, np.stack([t, -t])) == pytest.approx(50.0, rel=1e-12)  # averaged over frames
    assert clip_score(np.array([1.0, 0.0]), np.array([[0.5, math.sqrt(3) / 2]])) == pytest.approx(50.0)  # 60°
    with pytest.raises(ValueError, match="all zeros"):
        clip_score(np.zeros(4), t[None])


def test_temporal_consistency_of_still_and_flickering_videos():
    f = np.array([1.0, 2.0, 3.0])
    assert temporal_consistency(np.stack([f, f, 3 * f])) == pytest.approx(1.0)
    assert temporal_consistency(np.stack([f, -f, f])) == pytest.approx(-1.0)
    assert np.allclose(cosine_similarities(np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 2.0]])), [0.0, 1.0])
    assert temporal_consistency(f[None]) is None
