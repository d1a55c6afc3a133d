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
