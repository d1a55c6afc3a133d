"""The profile: propensity index, levels, labels and cluster figures, checked by hand."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from pleasepoint_cli.config import LevelThresholds
from pleasepoint_cli.persona.features import FeatureMatrix, Variable
from pleasepoint_cli.persona.profile import (
    NO_PREFERENCE_LABEL,
    ProfileCell,
    build_profile,
    cluster_label,
    level_of,
)

LEVELS = LevelThresholds()


def _features() -> FeatureMatrix:
    # Four customers, three variables; customers 0-1 buy Huerto and Plantas, 2-3 Supermercado (and some Huerto).
    values = np.array([[1.0, 0.5, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.5, 0.0, 1.0]])
    return FeatureMatrix(
        customer_ids=pa.array(["a", "b", "c", "d"]),
        variables=[Variable("category", n, n) for n in ("Huerto", "Plantas", "Super")],
        unit="freq",
        values=values,
        orders=np.array([2, 4, 1, 3]),
        spend=np.array([20.0, 40.0, 5.0, 15.0]),
        net_spend=np.array([20.0, 40.0, 5.0, 15.0]),
        recency_days=np.array([10, 30, 100, 300]),
    )


def test_levels_follow_the_thresholds() -> None:
    assert level_of(0.0, 0.0, LEVELS) == "zero"
    assert level_of(0.3, 1.25, LEVELS) == "high"
    assert level_of(0.3, 1.2499, LEVELS) == "medium"
    assert level_of(0.3, 0.75, LEVELS) == "medium"
    assert level_of(0.3, 0.7, LEVELS) == "low"
    assert level_of(0.0, None, LEVELS) == "zero"
    strict = LevelThresholds(high=2.0, medium=1.0)
    assert level_of(0.3, 1.5, strict) == "medium"


def test_profile_values_and_figures() -> None:
    features = _features()
    labels = np.array([0, 0, 1, 1])
    centers = np.array([[1.0, 0.75, 0.0], [0.25, 0.0, 1.0]])
    profile = build_profile(features, labels, centers, LEVELS, rfm=False)
    cell = {(c.cluster, c.variable): c for c in profile.cells}
    huerto = cell[(1, "Huerto")]
    assert huerto.cluster_value == 1.0
    assert huerto.population_value == pytest.approx(2.5 / 4)
    assert huerto.propensity == pytest.approx(1.6)
    assert huerto.level == "high"
    assert cell[(2, "Plantas")].level == "zero"
    assert cell[(2, "Huerto")].propensity == pytest.approx(0.4)
    assert cell[(2, "Huerto")].level == "low"
    assert [c.label for c in profile.clusters] == ["Plantas + Huerto", "Super"]
    first, second = profile.clusters
    assert (first.customers, first.share_customers) == (2, 0.5)
    assert first.share_revenue == pytest.approx(60 / 80)
    assert first.orders_per_customer == 3.0
    assert first.avg_ticket == pytest.approx(60 / 6)
    assert second.mean_recency_days == 200.0
    assert first.centroid == (1.0, 0.75, 0.0)


def test_rfm_variables_are_profiled_but_never_label() -> None:
    profile = build_profile(_features(), np.array([0, 0, 1, 1]), np.zeros((2, 6)), LEVELS, rfm=True)
    assert profile.variables[-3:] == ["recency_days", "frequency_orders", "monetary_spend"]
    recency = next(c for c in profile.cells if c.cluster == 2 and c.variable == "recency_days")
    assert recency.cluster_value == 200.0 and recency.level == "high"
    assert "recency_days" not in profile.clusters[1].label


def test_label_rule() -> None:
    def cell(variable: str, position: int, propensity: float, level: str) -> ProfileCell:
        return ProfileCell(1, variable, position, 0.5, 0.2, propensity, level)

    cells = [
        cell("A", 0, 1.3, "high"),
        cell("B", 1, 4.0, "high"),
        cell("C", 2, 2.0, "high"),
        cell("D", 3, 1.9, "high"),
        cell("E", 4, 1.0, "medium"),
    ]
    assert cluster_label(cells, {"A", "B", "C", "D", "E"}) == "B + C + D"
    assert cluster_label(cells[4:], {"E"}) == NO_PREFERENCE_LABEL


def test_repeated_labels_are_numbered() -> None:
    features = _features()
    features.values[:] = 1.0  # every cluster alike: nobody stands out
    profile = build_profile(features, np.array([0, 0, 1, 1]), np.zeros((2, 3)), LEVELS, rfm=False)
    assert [c.label for c in profile.clusters] == [NO_PREFERENCE_LABEL, f"{NO_PREFERENCE_LABEL} (2)"]
