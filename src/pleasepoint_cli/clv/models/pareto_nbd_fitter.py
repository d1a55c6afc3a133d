"""Pareto/NBD (Schmittlein, Morrison & Colombo 1987; Fader & Hardie's note): dropout at any time."""

from __future__ import annotations

from typing import NamedTuple, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import expit, gammaln, hyp2f1

from pleasepoint_cli.clv.models.base import (
    FloatArray,
    ParamVector,
    _check,
    _Fitter,
    _float_array,
    _rfm_arrays,
    _unique_rows,
    _weights_array,
)


def _log_hyp2f1_c_is_a_plus_1(a: FloatArray, b: FloatArray, z: FloatArray) -> FloatArray:
    """log 2F1(a, b; a + 1; z) for 0 <= z < 1, via Euler's transformation: stays finite for large a and b."""
    return np.asarray((1.0 - b) * np.log1p(-z) + np.log(hyp2f1(1.0, a + 1.0 - b, a + 1.0, z)))


class _Pairs(NamedTuple):
    """Distinct (x, time) pairs and each customer's pair, so the costly 2F1 runs once per pair."""

    x: FloatArray
    time: FloatArray
    of_customer: NDArray[np.intp]

    @classmethod
    def of(cls, x: FloatArray, time: FloatArray) -> _Pairs:
        (xs, times), inverse, _ = _unique_rows(x.ravel(), time.ravel())
        return cls(xs, times, inverse.reshape(x.shape))


def _pareto_log_a0(params: ParamVector, at_t_x: _Pairs, at_T: _Pairs) -> FloatArray:
    """log A0 of Fader & Hardie's Pareto/NBD note (eq. 19/20): the 'dropped out in (t_x, T]' integral."""
    r, alpha, s, beta = params
    larger = max(alpha, beta)

    def log_term(pairs: _Pairs) -> FloatArray:
        rsx = r + s + pairs.x
        second = np.full_like(rsx, s + 1.0) if alpha >= beta else r + pairs.x
        z = abs(alpha - beta) / (larger + pairs.time)
        return (_log_hyp2f1_c_is_a_plus_1(rsx, second, z) - rsx * np.log(larger + pairs.time))[
            pairs.of_customer
        ]

    from_t_x, from_T = log_term(at_t_x), log_term(at_T)
    with np.errstate(divide="ignore"):  # t_x == T gives A0 = 0: log 0 = -inf is the right answer
        return np.asarray(from_t_x + np.log(-np.expm1(np.minimum(from_T - from_t_x, 0.0))))


def _pareto_log_odds_dropped(
    params: ParamVector, x: FloatArray, T: FloatArray, at_t_x: _Pairs, at_T: _Pairs
) -> FloatArray:
    """log of P(dropped out before T) / P(alive at T), the ratio of the two terms of the likelihood."""
    r, alpha, s, beta = params
    log_a0 = _pareto_log_a0(params, at_t_x, at_T)
    return np.asarray(
        np.log(s) - np.log(r + s + x) + log_a0 + (r + x) * np.log(alpha + T) + s * np.log(beta + T)
    )


def _pareto_log_likelihood(
    params: ParamVector, x: FloatArray, T: FloatArray, at_t_x: _Pairs, at_T: _Pairs
) -> FloatArray:
    """Per-customer Pareto/NBD log-likelihood, Fader & Hardie's note eq. (22)."""
    r, alpha, s, beta = params
    log_alive = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    log_mix = log_alive + np.logaddexp(0.0, _pareto_log_odds_dropped(params, x, T, at_t_x, at_T))
    return np.asarray(gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta) + log_mix)


class ParetoNBDFitter(_Fitter):
    """Pareto/NBD (Schmittlein, Morrison & Colombo 1987): Poisson purchases at a gamma(r, alpha) rate and an
    exponential lifetime at a gamma(s, beta) rate."""

    param_names = ("r", "alpha", "s", "beta")

    def fit(self, x: ArrayLike, t_x: ArrayLike, T: ArrayLike, weights: ArrayLike | None = None) -> Self:
        """Maximum-likelihood fit (numerical gradient); weights are counts of identical customers."""
        xs, txs, Ts = _rfm_arrays(x, t_x, T, fitting=True)
        at_t_x, at_T = _Pairs.of(xs, txs), _Pairs.of(xs, Ts)
        self._maximise(
            lambda p: (_pareto_log_likelihood(p, xs, Ts, at_t_x, at_T), None),
            _weights_array(weights, xs.size),
            analytic_gradient=False,
        )
        return self

    def conditional_probability_alive(self, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> FloatArray:
        """P(customer still active at T | x, t_x, T), Fader & Hardie's note eq. (24)."""
        params = self._fitted_params()
        xs, txs, Ts = _rfm_arrays(x, t_x, T, fitting=False)
        log_odds = _pareto_log_odds_dropped(params, xs, Ts, _Pairs.of(xs, txs), _Pairs.of(xs, Ts))
        return np.asarray(expit(-log_odds), dtype=np.float64)

    def conditional_expected_number_of_purchases_up_to_time(
        self, t: ArrayLike, x: ArrayLike, t_x: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """E[purchases in (T, T + t] | x, t_x, T] = E[rate] * E[time alive in (T, T + t]] * P(alive)."""
        r, alpha, s, beta = self._fitted_params()
        ts = _float_array("t", t)
        _check(ts >= 0, "t (prediction horizon) is negative", ts)
        xs, txs, Ts = _rfm_arrays(x, t_x, T, fitting=False)
        log_ratio = np.log1p(ts / (beta + Ts))  # log((beta + T + t) / (beta + T))
        if abs(s - 1.0) < 1e-9:
            alive_time = (beta + Ts) * log_ratio
        else:
            alive_time = (beta + Ts) * -np.expm1(-(s - 1.0) * log_ratio) / (s - 1.0)
        alive = self.conditional_probability_alive(xs, txs, Ts)
        return np.asarray((r + xs) / (alpha + Ts) * alive_time * alive, dtype=np.float64)

    def expected_number_of_purchases_up_to_time(self, t: ArrayLike) -> FloatArray:
        """E[X(t)] for a new customer: r beta / (alpha (s - 1)) * (1 - (beta / (beta + t))^(s - 1))."""
        ts = _float_array("t", t)
        zeros = np.zeros_like(ts)
        return self.conditional_expected_number_of_purchases_up_to_time(ts, zeros, zeros, zeros)
