"""`customers show ID`: a customer's profile, attributes with their source, clusters per run, and figures."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from pleasepoint_cli.errors import NotFoundError

if TYPE_CHECKING:
    from pleasepoint_cli.config import StateThresholds
    from pleasepoint_cli.store.connection import Store


@dataclass(frozen=True)
class CustomerProfile:
    """Everything `customers show` prints about one customer at an as-of date."""

    customer_id: str
    as_of: date
    profile: dict[str, Any]
    attributes: list[dict[str, Any]]
    clusters: list[dict[str, Any]]
    figures: dict[str, Any] | None

    def as_json(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "as_of": self.as_of.isoformat(),
            "profile": self.profile,
            "attributes": self.attributes,
            "clusters": self.clusters,
            "figures": self.figures,
        }


def customer_profile(
    store: Store, customer_id: str, as_of: date, thresholds: StateThresholds
) -> CustomerProfile:
    """Gather one customer's profile at `as_of`: figures count orders on or before that day; the RFM
    segment is given when at least five customers have purchases by then."""
    from pleasepoint_cli.clv.rfm import RFM_MIN_CUSTOMERS, RFM_SQL
    from pleasepoint_cli.clv.score import FIGURES_TABLE, STATE_SQL, materialize_figures
    from pleasepoint_cli.enrich.history import customer_exists
    from pleasepoint_cli.recency import state_params

    if not customer_exists(store, customer_id):
        raise NotFoundError(f"no customer {customer_id!r} in the store (check the id; ids are text).")
    params = {"id": customer_id}
    found = store.rows("SELECT * EXCLUDE (updated_at) FROM customers WHERE customer_id = $id", params)
    profile = found[0] if found else {"customer_id": customer_id}
    attributes = store.rows(
        "SELECT key, value, source, set_at, change_id FROM customer_attributes "
        "WHERE customer_id = $id ORDER BY key",
        params,
    )
    clusters = store.rows(
        """
        SELECT a.run_id, r.name AS run, r.created_at, a.cluster, c.label
        FROM persona_assignments a
        JOIN persona_runs r USING (run_id)
        LEFT JOIN persona_clusters c ON c.run_id = a.run_id AND c.cluster = a.cluster
        WHERE a.customer_id = $id
        ORDER BY r.created_at DESC, a.run_id DESC
        """,
        params,
    )
    population = materialize_figures(store, as_of)
    figures_rows = store.rows(
        f"""
        SELECT tickets AS orders, round(spend, 2) AS spend, round(spend / tickets, 2) AS avg_ticket,
               first_order, last_order, recency_days, {STATE_SQL} AS state
        FROM {FIGURES_TABLE} WHERE customer_id = $id
        """,
        {**params, **state_params(thresholds)},
    )
    figures: dict[str, Any] | None = figures_rows[0] if figures_rows else None
    if figures is not None:
        figures["rfm_segment"] = None
        if population >= RFM_MIN_CUSTOMERS:
            rfm = store.rows(
                f"{RFM_SQL} SELECT segment, r_score, f_score, m_score FROM rfm WHERE customer_id = $id",
                params,
            )
            if rfm:
                figures["rfm_segment"] = rfm[0]["segment"]
                figures["rfm_scores"] = f"{rfm[0]['r_score']}{rfm[0]['f_score']}{rfm[0]['m_score']}"
    return CustomerProfile(customer_id, as_of, profile, attributes, clusters, figures)
