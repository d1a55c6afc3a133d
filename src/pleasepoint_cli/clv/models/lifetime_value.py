"""The discounted customer lifetime value from a purchase model and the Gamma-Gamma spend model."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from pleasepoint_cli.clv.models.base import (
    FloatArray,
    TransactionModel,
)
from pleasepoint_cli.clv.models.gamma_gamma_fitter import GammaGammaFitter
from pleasepoint_cli.errors import AnalysisError


def customer_lifetime_value(
    transaction_model: TransactionModel,
    gg_model: GammaGammaFitter,
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,
    monetary: ArrayLike,
    horizon_periods: int,
    discount_rate_per_period: float,
    step: float = 1.0,
) -> FloatArray:
    """Discounted expected spend over the next horizon_periods periods of `step` model time units each:
    sum over i of E[purchases in period i] * E[spend per purchase] / (1 + d)^i, as in `lifetimes`."""
    if horizon_periods < 0 or step <= 0 or discount_rate_per_period <= -1:
        raise AnalysisError("need horizon_periods >= 0, step > 0 and discount_rate_per_period > -1")
    spend = gg_model.conditional_expected_average_profit(x, monetary)
    value = np.zeros_like(spend)
    previous = np.zeros_like(spend)
    for period in range(1, horizon_periods + 1):
        purchases = transaction_model.conditional_expected_number_of_purchases_up_to_time(
            period * step, x, t_x, T
        )
        value = value + (purchases - previous) * spend / (1.0 + discount_rate_per_period) ** period
        previous = purchases
    return value
