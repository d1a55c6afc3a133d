"""Predictive CLV models in numpy and scipy, one estimator per module as lifetimes lays them out.

The likelihoods follow the papers (Fader, Hardie & Lee 2005; Fader & Hardie's notes on the Pareto/NBD and on
the Gamma-Gamma model) and are checked against their CDNOW figures in tests/test_clv_models.py.
"""

from pleasepoint_cli.clv.models.base import TransactionModel, group_rfm
from pleasepoint_cli.clv.models.beta_geo_fitter import BetaGeoFitter
from pleasepoint_cli.clv.models.gamma_gamma_fitter import GammaGammaFitter
from pleasepoint_cli.clv.models.lifetime_value import customer_lifetime_value
from pleasepoint_cli.clv.models.pareto_nbd_fitter import ParetoNBDFitter
from pleasepoint_cli.errors import NotFittedError

__all__ = [
    "BetaGeoFitter",
    "GammaGammaFitter",
    "NotFittedError",
    "ParetoNBDFitter",
    "TransactionModel",
    "customer_lifetime_value",
    "group_rfm",
]
