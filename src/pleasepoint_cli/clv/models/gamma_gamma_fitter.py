"""Gamma-Gamma spend model (Fader & Hardie's note): expected spend per purchase of a customer."""

from __future__ import annotations

from typing import Self

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import digamma, gammaln

from pleasepoint_cli.clv.models.base import (
    FloatArray,
    _check,
    _Fitter,
    _float_array,
    _weights_array,
)
from pleasepoint_cli.errors import AnalysisError


def _gamma_gamma_log_likelihood(
    params: FloatArray, x: FloatArray, mean_spend: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Log density of a repeater's mean spend given x purchases (Fader & Hardie's note), with its gradient."""
    p, q, gamma = params
    px = p * x
    total = x * mean_spend
    ll = (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(gamma)
        + (px - 1) * np.log(total)
        + np.log(x)
        - (px + q) * np.log(gamma + total)
    )
    grad = np.stack(
        [
            x * (digamma(px + q) - digamma(px) + np.log(total) - np.log(gamma + total)),
            digamma(px + q) - digamma(q) + np.log(gamma) - np.log(gamma + total),
            q / gamma - (px + q) / (gamma + total),
        ]
    )
    return ll, grad


class GammaGammaFitter(_Fitter):
    """Gamma-Gamma spend model (Fader & Hardie): purchase values are gamma(p, nu) with nu ~ gamma(q, gamma);
    gamma is the scale the note calls v."""

    param_names = ("p", "q", "gamma")

    def fit(self, frequency: ArrayLike, monetary_value: ArrayLike, weights: ArrayLike | None = None) -> Self:
        """Fit on repeaters only: frequency = repeat purchases (> 0), monetary_value = their mean (> 0)."""
        x = _float_array("frequency", frequency)
        m = _float_array("monetary_value", monetary_value)
        if x.ndim != 1 or x.shape != m.shape:
            raise AnalysisError(
                f"frequency and monetary_value must be 1-D of one length, got {x.shape, m.shape}"
            )
        if x.size == 0:
            raise AnalysisError("cannot fit the spend model on no customers")
        _check(x > 0, "frequency is not > 0 (fit the spend model on repeat customers only)", x)
        _check(x == np.round(x), "frequency is not a whole number", x)
        _check(m > 0, "monetary_value is not > 0", m)
        self._maximise(
            lambda p: _gamma_gamma_log_likelihood(p, x, m),
            _weights_array(weights, x.size),
            analytic_gradient=True,
        )
        return self

    def conditional_expected_average_profit(
        self, frequency: ArrayLike, monetary_value: ArrayLike
    ) -> FloatArray:
        """E[spend per purchase | x, mean spend]: a weighted mean of the population's mean and the
        customer's own; customers with no repeat purchase get the population mean."""
        p, q, gamma = self._fitted_params()
        x, m = np.broadcast_arrays(
            _float_array("frequency", frequency), _float_array("monetary_value", monetary_value)
        )
        _check(x >= 0, "frequency is negative", x)
        _check(m >= 0, "monetary_value is negative", m)
        return np.asarray(p * (gamma + x * m) / (p * x + q - 1), dtype=np.float64)

    def expected_average_profit(self) -> float:
        """The population mean spend per purchase, E(M) = p * gamma / (q - 1); finite only when q > 1."""
        p, q, gamma = self._fitted_params()
        if q <= 1:
            raise AnalysisError(f"the mean spend is infinite for q = {q:.3g} <= 1: spend is too heavy-tailed")
        return p * gamma / (q - 1)
