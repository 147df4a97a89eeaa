"""`wanlora evaluate` on the engine side: FVD, Inception Score, LPIPS, CLIP score and temporal consistency
of generated videos against reference clips, per category. docs/evaluate.md defines every metric."""

from .metrics import (  # noqa: F401
    clip_score,
    frechet_distance,
    gaussian_statistics,
    inception_score,
    temporal_consistency,
)
