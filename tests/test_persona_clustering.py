"""Seeded k-means: ids by size, ties by centroid, reproducible, and k chosen by silhouette."""

from __future__ import annotations

import numpy as np
import pytest

from pleasepoint_cli.errors import AnalysisError
from pleasepoint_cli.persona.clustering import KScore, NotFittedError, PersonaKMeans, best_k, score_k_range


def _blobs(sizes: list[int], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Well separated groups in 3-D, group g centred at 10 * g on every axis."""
    rng = np.random.default_rng(seed)
    truth = np.repeat(np.arange(len(sizes)), sizes)
    matrix = truth[:, None] * 10.0 + rng.normal(0, 0.5, (truth.size, 3))
    order = rng.permutation(truth.size)
    return matrix[order], truth[order]


def test_cluster_ids_follow_size_largest_first() -> None:
    matrix, truth = _blobs([30, 120, 60])
    model = PersonaKMeans(3, seed=1).fit(matrix)
    assert np.bincount(model.labels_).tolist() == [120, 60, 30]
    # The largest group (truth 1) is cluster 0; centres follow the renumbering.
    assert (model.labels_[truth == 1] == 0).all()
    np.testing.assert_allclose(model.centers_[0], [10, 10, 10], atol=0.3)


def test_equal_sizes_are_ordered_by_centroid() -> None:
    matrix, _ = _blobs([50, 50, 50])
    for seed in (1, 2, 3):
        model = PersonaKMeans(3, seed=seed).fit(matrix)
        assert model.centers_[:, 0].tolist() == sorted(model.centers_[:, 0].tolist())


def test_same_seed_same_labels() -> None:
    matrix, _ = _blobs([40, 70, 90, 25])
    a = PersonaKMeans(4, seed=7).fit(matrix)
    b = PersonaKMeans(4, seed=7).fit(matrix)
    assert np.array_equal(a.labels_, b.labels_)
    assert np.array_equal(a.centers_, b.centers_)


def test_k_larger_than_the_customers_or_their_profiles() -> None:
    with pytest.raises(AnalysisError, match="k = 5 clusters but only 3 customers"):
        PersonaKMeans(5).fit(np.eye(3))
    with pytest.raises(AnalysisError, match="only 2 distinct profiles"):
        PersonaKMeans(3).fit(np.array([[0.0], [0.0], [1.0], [1.0]]))


def test_reading_before_fit_is_an_error() -> None:
    with pytest.raises(NotFittedError):
        _ = PersonaKMeans(3).labels_


def test_score_k_range_finds_the_planted_k() -> None:
    matrix, _ = _blobs([80, 60, 50, 40])
    scores, models = score_k_range(matrix, 2, 7, seed=3, sample_size=100)
    assert [s.k for s in scores] == [2, 3, 4, 5, 6, 7]
    assert best_k(scores) == 4
    assert set(models) == {2, 3, 4, 5, 6, 7}
    inertias = [s.inertia for s in scores]
    assert inertias == sorted(inertias, reverse=True)


def test_best_k_prefers_the_smaller_k_on_a_tie() -> None:
    assert best_k([KScore(3, 0.5, 10.0), KScore(4, 0.5, 8.0), KScore(5, 0.4, 7.0)]) == 3
