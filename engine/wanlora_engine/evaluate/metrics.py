"""The metric formulas, on plain arrays: no networks, no files, so tests can check them exactly.

Every function computes in float64 (numpy), whatever the dtype of the features it is given.

    gaussian_statistics   mean and unbiased covariance of a feature set
    frechet_distance      d² between two Gaussians (FVD on I3D logits)
    inception_score       exp(E[KL(p(y|x) || p(y))]) over splits
    clip_score            100·max(cos, 0) between a text embedding and each frame's image embedding
    cosine_similarities   of consecutive rows (temporal consistency)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GaussianStatistics:
    mean: np.ndarray  # [D] float64
    covariance: np.ndarray  # [D, D] float64, unbiased (divides by n-1)
    count: int


def gaussian_statistics(features: np.ndarray) -> GaussianStatistics:
    """Mean and unbiased covariance of `features` [N, D]; needs N >= 2."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"features must be [N, D], got shape {x.shape}")
    if x.shape[0] < 2:
        raise ValueError(f"a covariance needs at least 2 samples, got {x.shape[0]}")
    mean = x.mean(axis=0)
    centred = x - mean
    covariance = centred.T @ centred / (x.shape[0] - 1)
    return GaussianStatistics(mean=mean, covariance=covariance, count=int(x.shape[0]))


def _resolved(values: np.ndarray) -> np.ndarray:
    """Eigenvalues of a PSD matrix with those below its numerical resolution set to 0.

    A rank-deficient covariance (fewer samples than dimensions: FVD of a few hundred videos has 400 features)
    has eigenvalues that are exactly 0 in exact arithmetic and ±1e-16·λmax after rounding; their square roots
    (1e-8·√λmax each, hundreds of them) would add up to a visible error. The cut is numpy's matrix_rank
    tolerance, λmax · n · ε.
    """
    tolerance = max(float(np.abs(values).max(initial=0.0)) * values.size * np.finfo(np.float64).eps, 0.0)
    return np.where(values > tolerance, values, 0.0)


def _symmetric_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix by its eigen-decomposition."""
    symmetric = (matrix + matrix.T) / 2
    values, vectors = np.linalg.eigh(symmetric)
    return (vectors * np.sqrt(_resolved(values))) @ vectors.T


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """tr((Σ1 Σ2)^½), computed as tr((Σ1^½ Σ2 Σ1^½)^½).

    Σ1 Σ2 is not symmetric, but it is similar to the symmetric PSD matrix Σ1^½ Σ2 Σ1^½ (same eigenvalues),
    whose square root's trace is the sum of the square roots of its eigenvalues. This needs no inverse and no
    complex arithmetic, so near-singular covariances (N < D) stay finite, unlike scipy's sqrtm of the product,
    which FID code then has to patch with an ε·I offset.
    """
    root1 = _symmetric_sqrt(np.asarray(sigma1, dtype=np.float64))
    product = root1 @ np.asarray(sigma2, dtype=np.float64) @ root1
    values = np.linalg.eigvalsh((product + product.T) / 2)
    return float(np.sqrt(_resolved(values)).sum())


def frechet_distance(mean1: np.ndarray, sigma1: np.ndarray, mean2: np.ndarray, sigma2: np.ndarray) -> float:
    """d² = |μ1 − μ2|² + tr(Σ1 + Σ2 − 2 (Σ1 Σ2)^½): the squared 2-Wasserstein distance of two Gaussians.

    This is what FID and FVD report (no square root). Clipped at 0 against rounding.
    """
    mu1, mu2 = np.asarray(mean1, dtype=np.float64), np.asarray(mean2, dtype=np.float64)
    s1, s2 = np.asarray(sigma1, dtype=np.float64), np.asarray(sigma2, dtype=np.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise ValueError(f"shapes do not match: means {mu1.shape} {mu2.shape}, covariances {s1.shape} {s2.shape}")
    difference = mu1 - mu2
    value = float(difference @ difference + np.trace(s1) + np.trace(s2) - 2.0 * trace_sqrt_product(s1, s2))
    return max(value, 0.0)


def frechet_distance_of_features(features1: np.ndarray, features2: np.ndarray) -> float:
    a, b = gaussian_statistics(features1), gaussian_statistics(features2)
    return frechet_distance(a.mean, a.covariance, b.mean, b.covariance)


@dataclass(frozen=True)
class InceptionScore:
    mean: float
    std: float  # unbiased standard deviation over the splits (torchmetrics' InceptionScore reports that)
    splits: int
    samples: int


def inception_score(probabilities: np.ndarray, splits: int = 10) -> InceptionScore:
    """IS = exp(mean_x KL(p(y|x) || p(y))), p(y) the mean prediction of the split, averaged over splits.

    `probabilities` [N, K] are softmax outputs (rows sum to 1). The samples are cut into contiguous parts as
    torchmetrics' InceptionScore cuts them (torch.chunk: parts of ⌈N / splits⌉ samples, the last one shorter,
    so there may be fewer parts than `splits`), and `std` is the unbiased standard deviation over the parts, as
    torchmetrics reports it (0 for one part). A split of one sample always scores 1, so with fewer than
    2·splits samples the number of splits asked for drops to N // 2 (1 below 4 samples). 0·log 0 counts as 0.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] == 0:
        raise ValueError(f"probabilities must be [N, K] with N >= 1, got shape {p.shape}")
    if splits < 1:
        raise ValueError("splits must be >= 1")
    splits = max(1, min(splits, p.shape[0] // 2))
    size = -(-p.shape[0] // splits)
    scores = []
    for part in (p[start:start + size] for start in range(0, p.shape[0], size)):
        marginal = part.mean(axis=0, keepdims=True)
        # p(y|x) > 0 with p(y) = 0 happens only when p(y|x) underflows in the mean (≤ 1e-308·N); its term
        # p·log(p/p(y)) ≤ p·log N is then 0 in double precision as well.
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            terms = np.where((part > 0) & (marginal > 0), part * (np.log(part) - np.log(marginal)), 0.0)
        scores.append(float(np.exp(terms.sum(axis=1).mean())))
    values = np.asarray(scores)
    return InceptionScore(mean=float(values.mean()), std=float(values.std(ddof=1)) if len(values) > 1 else 0.0,
                          splits=len(values), samples=int(p.shape[0]))


def softmax(logits: np.ndarray) -> np.ndarray:
    x = np.asarray(logits, dtype=np.float64)
    shifted = x - x.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


def _unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError("an embedding is all zeros: its direction (and so its cosine) is undefined")
    return x / norms


def clip_score(text_embedding: np.ndarray, frame_embeddings: np.ndarray) -> float:
    """100·max(cos(t, f), 0) for each frame f, averaged over the frames.

    CLIPScore of Hessel et al. uses the weight 2.5; text-to-video papers (and torchmetrics' CLIPScore) use 100,
    so a perfectly aligned frame scores 100 and an unrelated or opposed one 0.
    """
    t = _unit_rows(np.asarray(text_embedding).reshape(1, -1))
    f = _unit_rows(np.atleast_2d(frame_embeddings))
    cosines = (f @ t.T)[:, 0]
    return float(np.mean(100.0 * np.clip(cosines, 0.0, None)))


def cosine_similarities(frame_features: np.ndarray) -> np.ndarray:
    """cos(f_i, f_{i+1}) for consecutive rows of [F, D]; F-1 values (empty for one frame)."""
    f = _unit_rows(np.atleast_2d(frame_features))
    return np.sum(f[:-1] * f[1:], axis=1)


def temporal_consistency(frame_features: np.ndarray) -> float | None:
    """Mean cosine similarity of consecutive frames' features; None for a single frame."""
    values = cosine_similarities(frame_features)
    return float(values.mean()) if values.size else None
