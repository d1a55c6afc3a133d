"""Rules that live in one module (issue 9): one NotFittedError, one estimator per module, one recency rule."""

from __future__ import annotations

import importlib


def test_one_not_fitted_error_class() -> None:
    from pleasepoint_cli.clv import models
    from pleasepoint_cli.errors import NotFittedError
    from pleasepoint_cli.persona import clustering

    assert models.NotFittedError is clustering.NotFittedError is NotFittedError


def test_one_estimator_per_module_as_lifetimes_lays_them_out() -> None:
    from pleasepoint_cli.clv import models

    for module, name in (
        ("beta_geo_fitter", "BetaGeoFitter"),
        ("pareto_nbd_fitter", "ParetoNBDFitter"),
        ("gamma_gamma_fitter", "GammaGammaFitter"),
    ):
        loaded = importlib.import_module(f"pleasepoint_cli.clv.models.{module}")
        assert getattr(models, name) is getattr(loaded, name)
        assert getattr(models, name).__module__ == loaded.__name__


def test_recency_states_have_one_rule_and_every_caller_agrees() -> None:
    from pleasepoint_cli.config import Settings, StateThresholds
    from pleasepoint_cli.content.context import recency_state
    from pleasepoint_cli.recency import STATES, state_of, state_params, state_ranges, state_sql
    from pleasepoint_cli.store.connection import memory_store

    limits = StateThresholds(active_below=10, inactive_below=20, hibernating_below=30)
    assert tuple(state_ranges(limits)) == STATES
    with memory_store() as store:
        for days in (0, 9, 10, 19, 20, 29, 30, 400):
            rows = store.con.execute(
                f"SELECT {state_sql('d')} FROM (SELECT {days} AS d)", state_params(limits)
            ).fetchall()
            assert rows[0][0] == state_of(days, limits) == recency_state(days, Settings(states=limits))
    import typing

    from pleasepoint_cli.audience.model import StateName

    assert typing.get_args(StateName) == STATES
