"""What each cluster is: its figures, its profile (cluster value / population value = propensity index), the
level of every cell and an automatic label from its top variables.

The profile reads the untransformed unit values, so an index of 2 means "twice the population's share of
orders with this value" whatever transformation the clustering used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from pleasepoint_cli.config import LevelThresholds
    from pleasepoint_cli.persona.features import FeatureMatrix

    FloatMatrix = npt.NDArray[np.float64]
    IntArray = npt.NDArray[np.int64]

LABEL_VARIABLES = 3
"""At most this many variables make a label."""
NO_PREFERENCE_LABEL = "Mixed"
"""The label of a cluster with no variable at the high level."""
LEVELS = ("high", "medium", "low", "zero")


@dataclass(frozen=True)
class ClusterSummary:
    """One cluster's figures: size, revenue, habits and its place in the clustering space."""

    cluster: int
    label: str
    customers: int
    share_customers: float
    share_revenue: float
    orders_per_customer: float
    avg_ticket: float
    mean_recency_days: float
    centroid: tuple[float, ...]


@dataclass(frozen=True)
class ProfileCell:
    """One (cluster, variable) cell: the cluster's mean, the population's, their ratio and its level."""

    cluster: int
    variable: str
    position: int
    cluster_value: float
    population_value: float
    propensity: float | None
    level: str
    support: float = 1.0
    """Share of the cluster's customers with a non-zero value of the variable (1.0 for RFM figures)."""


@dataclass(frozen=True)
class Profile:
    """The clusters (in id order) and their cells (in cluster, then variable order)."""

    clusters: list[ClusterSummary]
    cells: list[ProfileCell]
    variables: list[str]
    warnings: list[str] = field(default_factory=list)


def level_of(
    cluster_value: float, propensity: float | None, levels: LevelThresholds, support: float = 1.0
) -> str:
    """zero when the cluster never has the value; else high / medium / low by the propensity index, where
    high and medium also need `support` (the share of the cluster's customers who bought it) of at least
    `levels.min_support`."""
    if cluster_value == 0 or propensity is None:
        return "zero"
    if support < levels.min_support:
        return "low"
    if propensity >= levels.high:
        return "high"
    if propensity >= levels.medium:
        return "medium"
    return "low"


def label_score(cell: ProfileCell) -> float:
    """How much a variable says what a cluster is known for: lift (propensity index) times share (support,
    the share of the cluster's customers who bought it). A variable bought by 74% of the cluster at index 1.3
    (0.96) outranks one bought by 6% at index 8 (0.48)."""
    return (cell.propensity or 0.0) * cell.support


def cluster_label(cells: list[ProfileCell], label_variables: set[str]) -> str:
    """The cluster's high-level variables (enough support, see level_of) ranked by label_score, largest
    first, at most three, joined by ' + '."""
    high = [
        c for c in cells if c.level == "high" and c.variable in label_variables and c.propensity is not None
    ]
    high.sort(key=lambda c: (-label_score(c), c.position))
    if not high:
        return NO_PREFERENCE_LABEL
    return " + ".join(c.variable for c in high[:LABEL_VARIABLES])


def _unique(labels: list[str]) -> list[str]:
    """Repeated labels get ' (2)', ' (3)'... in cluster order, so a label names one cluster of a run."""
    seen: dict[str, int] = {}
    result = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        result.append(label if seen[label] == 1 else f"{label} ({seen[label]})")
    return result


def build_profile(
    features: FeatureMatrix,
    labels: IntArray,
    centers: FloatMatrix,
    levels: LevelThresholds,
    rfm: bool,
) -> Profile:
    """Per-cluster figures and the cluster x variable profile of a fitted run (labels 0-based, by size)."""
    import numpy as np

    from pleasepoint_cli.persona.features import RFM_VARIABLES

    k = centers.shape[0]
    n = features.n_customers
    names = [v.name for v in features.variables]
    matrix = features.values
    if rfm:
        names = [*names, *RFM_VARIABLES]
        matrix = np.hstack([matrix, features.rfm()])
    sizes = np.bincount(labels, minlength=k)
    population = matrix.mean(axis=0)
    sums = np.vstack(
        [np.bincount(labels, weights=matrix[:, j], minlength=k) for j in range(matrix.shape[1])]
    ).T
    means = sums / sizes[:, None]
    attribute_names = {v.name for v in features.variables}
    n_attributes = len(features.variables)
    bought = features.values > 0
    buyers = np.vstack(
        [
            np.bincount(labels, weights=bought[:, j].astype(np.float64), minlength=k)
            for j in range(n_attributes)
        ]
    ).T

    cells: list[ProfileCell] = []
    for c in range(k):
        for j, name in enumerate(names):
            value = float(means[c, j])
            pop = float(population[j])
            propensity = value / pop if pop > 0 else None
            support = float(buyers[c, j] / sizes[c]) if j < n_attributes and sizes[c] else 1.0
            level = level_of(value, propensity, levels, support)
            cells.append(ProfileCell(c + 1, name, j, value, pop, propensity, level, support))

    raw_labels = [
        cluster_label(cells[c * len(names) : (c + 1) * len(names)], attribute_names) for c in range(k)
    ]
    orders = np.bincount(labels, weights=features.orders.astype(np.float64), minlength=k)
    revenue = np.bincount(labels, weights=features.net_spend, minlength=k)
    recency = np.bincount(labels, weights=features.recency_days.astype(np.float64), minlength=k)
    total_revenue = float(features.net_spend.sum())
    clusters = [
        ClusterSummary(
            cluster=c + 1,
            label=label,
            customers=int(sizes[c]),
            share_customers=float(sizes[c] / n),
            share_revenue=float(revenue[c] / total_revenue) if total_revenue > 0 else 0.0,
            orders_per_customer=float(orders[c] / sizes[c]),
            avg_ticket=float(revenue[c] / orders[c]) if orders[c] > 0 else 0.0,
            mean_recency_days=float(recency[c] / sizes[c]),
            centroid=tuple(float(x) for x in centers[c]),
        )
        for c, label in enumerate(_unique(raw_labels))
    ]
    warnings = [
        f"cluster {s.cluster} ({s.label}) holds {s.customers:,} customers, {s.share_customers:.1%} of "
        f"{n:,}: below levels.tiny_cluster ({levels.tiny_cluster:.0%}); its profile rests on few customers. "
        "Try fewer clusters (-k) or more data."
        for s in clusters
        if s.share_customers < levels.tiny_cluster
    ]
    total_buyers = bought.sum(axis=0)
    rare = [
        v.name
        for j, v in enumerate(features.variables)
        if total_buyers[j] > 0 and total_buyers[j] / n < levels.tiny_cluster
    ]
    if rare:
        warnings.append(
            f"{len(rare)} variable(s) bought by under {levels.tiny_cluster:.0%} of the customers ({', '.join(rare[:5])}"
            f"{', ...' if len(rare) > 5 else ''}): they take part in the clustering but can neither be high "
            "nor name a cluster unless enough of its customers bought them (levels.min_support)."
        )
    return Profile(clusters, cells, names, warnings)
