"""BG/NBD (Fader, Hardie & Lee 2005): purchases while alive, dropout after any purchase."""

from __future__ import annotations

from typing import Self

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import betainc, betaln, digamma, gammaln, hyp2f1

from pleasepoint_cli.clv.models.base import (
    FloatArray,
    _check,
    _Fitter,
    _float_array,
    _rfm_arrays,
    _weights_array,
)


def _bgnbd_log_likelihood(
    params: FloatArray, x: FloatArray, t_x: FloatArray, T: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Per-customer BG/NBD log-likelihood (FHL 2005, eq. 6) and its gradient in (r, alpha, a, b)."""
    r, alpha, a, b = params
    repeat = x > 0
    b_x_1 = np.where(repeat, b + x - 1, 1.0)
    log_alive = -(r + x) * np.log(alpha + T)
    log_dropped = np.where(repeat, np.log(a) - np.log(b_x_1) - (r + x) * np.log(alpha + t_x), -np.inf)
    log_mix = np.logaddexp(log_alive, log_dropped)
    ll = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + betaln(a, b + x) - betaln(a, b) + log_mix
    dropped = np.exp(log_dropped - log_mix)  # posterior weight of "dropped out right after t_x"
    alive = 1.0 - dropped
    ab = digamma(a + b) - digamma(a + b + x)
    grad = np.stack(
        [
            digamma(r + x)
            - digamma(r)
            + np.log(alpha)
            - alive * np.log(alpha + T)
            - dropped * np.log(alpha + t_x),
            r / alpha - (r + x) * (alive / (alpha + T) + dropped / (alpha + t_x)),
            ab + dropped / a,
            ab + digamma(b + x) - digamma(b) - dropped / b_x_1,
        ]
    )
    return ll, grad


class BetaGeoFitter(_Fitter):
    """BG/NBD (Fader, Hardie & Lee 2005): Poisson purchases at a gamma(r, alpha) rate; after each purchase a
    customer drops out with a beta(a, b) probability."""

    param_names = ("r", "alpha", "a", "b")

    def fit(self, x: ArrayLike, t_x: ArrayLike, T: ArrayLike, weights: ArrayLike | None = None) -> Self:
        """Maximum-likelihood fit; weights are counts of identical customers (see `group_rfm`)."""
        xs, txs, Ts = _rfm_arrays(x, t_x, T, fitting=True)
        self._maximise(
            lambda p: _bgnbd_log_likelihood(p, xs, txs, Ts),
            _weights_array(weights, xs.size),
            analytic_gradient=True,
        )
        return self

    def _alive_odds(self, x: FloatArray, t_x: FloatArray, T: FloatArray) -> FloatArray:
        """P(dropped out after t_x) / P(still alive at T), given the purchase history."""
        r, alpha, a, b = self._fitted_params()
        repeat = x > 0
        odds = a / np.where(repeat, b + x - 1, 1.0) * np.exp((r + x) * np.log((alpha + T) / (alpha + t_x)))
        return np.where(repeat, odds, 0.0)

    def conditional_probability_alive(self, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> FloatArray:
        """P(customer still active at T | x, t_x, T), FHL 2005 note, eq. (1)."""
        xs, txs, Ts = _rfm_arrays(x, t_x, T, fitting=False)
        return 1.0 / (1.0 + self._alive_odds(xs, txs, Ts))

    def conditional_expected_number_of_purchases_up_to_time(
        self, t: ArrayLike, x: ArrayLike, t_x: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """E[purchases in (T, T + t] | x, t_x, T], FHL 2005 eq. (10)."""
        r, alpha, a, b = self._fitted_params()
        ts = _float_array("t", t)
        _check(ts >= 0, "t (prediction horizon) is negative", ts)
        xs, txs, Ts = _rfm_arrays(x, t_x, T, fitting=False)
        if abs(a - 1.0) < 1e-7:  # a removable 0/0 at a = 1: step beside it
            a = 1.0 + 1e-7
        z = ts / (alpha + Ts + ts)
        # ((alpha+T)/(alpha+T+t))^(r+x) * 2F1(r+x, b+x; a+b+x-1; z), through Euler's transformation so that
        # neither factor overflows for frequent buyers.
        survival = np.exp((a - 1) * np.log1p(-z)) * hyp2f1(a + b - 1 - r, a - 1, a + b + xs - 1, z)
        expected = (a + b + xs - 1) / (a - 1) * (1.0 - survival)
        return np.asarray(expected / (1.0 + self._alive_odds(xs, txs, Ts)), dtype=np.float64)

    def expected_number_of_purchases_up_to_time(self, t: ArrayLike) -> FloatArray:
        """E[X(t)] for a new customer (unconditional), FHL 2005 eq. (9)."""
        ts = _float_array("t", t)
        zeros = np.zeros_like(ts)
        return self.conditional_expected_number_of_purchases_up_to_time(ts, zeros, zeros, zeros)

    def probability_of_n_purchases_up_to_time(self, t: ArrayLike, n: ArrayLike) -> FloatArray:
        """P(X(t) = n) for a new customer, FHL 2005 eq. (8)."""
        r, alpha, a, b = self._fitted_params()
        ts, ns = np.broadcast_arrays(_float_array("t", t), _float_array("n", n))
        _check(ts >= 0, "t (prediction horizon) is negative", ts)
        _check((ns >= 0) & (ns == np.round(ns)), "n is not a whole number >= 0", ns)
        log_p = np.log(alpha / (alpha + ts))
        with np.errstate(divide="ignore"):
            log_q = np.where(ns > 0, np.log(ts / (alpha + ts)), 0.0)
        still_buying = np.exp(
            betaln(a, b + ns)
            - betaln(a, b)
            + gammaln(r + ns)
            - gammaln(r)
            - gammaln(ns + 1)
            + r * log_p
            + ns * log_q
        )
        # Dropped out right after the n-th purchase: the NBD made at least n purchases by t, i.e. one minus
        # its CDF at n - 1, which is a regularised incomplete beta function.
        dropped = np.where(
            ns > 0,
            np.exp(np.log(a) - np.log(np.maximum(b + ns - 1, 1e-300)) + betaln(a, b + ns) - betaln(a, b))
            * (1.0 - betainc(r, np.maximum(ns, 1.0), np.exp(log_p))),
            0.0,
        )
        return np.asarray(still_buying + dropped, dtype=np.float64)
