"""Predictive CLV models in numpy and scipy: BG/NBD, Pareto/NBD, Gamma-Gamma and the discounted CLV.

The likelihoods follow the papers (Fader, Hardie & Lee 2005; Fader & Hardie's notes on the Pareto/NBD and on
the Gamma-Gamma model) and are checked against their CDNOW figures in tests/test_clv_models.py. Data are per
customer: x = repeat purchases, t_x = time of the last one, T = time since the first purchase, in one time
unit (weeks in the papers). Every fit takes ``weights``, so customers grouped by identical (x, t_x, T) with
`group_rfm` fit in the time the number of distinct groups needs, not the number of customers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, NamedTuple, Protocol, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize
from scipy.special import betainc, betaln, digamma, expit, gammaln, hyp2f1

from pleasepoint_cli.errors import AnalysisError

FloatArray = NDArray[np.float64]
ParamVector = FloatArray | tuple[float, ...]
# Per-customer log-likelihood and, when the model has one, its gradient (one row per parameter).
LogLikelihood = Callable[[FloatArray], tuple[FloatArray, FloatArray | None]]

_LOG_BOUND = 15.0  # parameters are optimised as log(value) within +-15; beyond +-14 a fit is refused


class NotFittedError(AnalysisError):
    """A model was asked to predict before `fit` or `from_params` gave it parameters."""


class TransactionModel(Protocol):
    """What `customer_lifetime_value` needs from a purchase-count model (BG/NBD or Pareto/NBD)."""

    def conditional_expected_number_of_purchases_up_to_time(
        self, t: ArrayLike, x: ArrayLike, t_x: ArrayLike, T: ArrayLike
    ) -> FloatArray: ...


# --- input checks -------------------------------------------------------------------------------------------


def _float_array(name: str, values: ArrayLike) -> FloatArray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise AnalysisError(f"{name} must be numeric: {e}") from e
    if not np.all(np.isfinite(array)):
        raise AnalysisError(f"{name} has {int(np.sum(~np.isfinite(array)))} missing or infinite values")
    return array


def _check(condition: NDArray[np.bool_], message: str, values: FloatArray) -> None:
    """Raise if any element breaks `condition`, naming how many and the first offender."""
    bad = ~condition
    if np.any(bad):
        first = int(np.flatnonzero(bad.ravel())[0])
        raise AnalysisError(
            f"{message} for {int(bad.sum())} customers (first at index {first}: {values.ravel()[first]!r})"
        )


def _rfm_arrays(
    x: ArrayLike, t_x: ArrayLike, T: ArrayLike, *, fitting: bool
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Validate (x, t_x, T) and broadcast them together; fitting also needs non-empty 1-D arrays."""
    xs, txs, Ts = (_float_array(n, v) for n, v in (("x", x), ("t_x", t_x), ("T", T)))
    if fitting and (xs.ndim != 1 or xs.shape != txs.shape or xs.shape != Ts.shape):
        raise AnalysisError(
            f"x, t_x and T must be 1-D arrays of one length, got {xs.shape, txs.shape, Ts.shape}"
        )
    if fitting and xs.size == 0:
        raise AnalysisError("cannot fit a model on no customers")
    if fitting and not np.any(xs > 0):
        raise AnalysisError("no customer made a repeat purchase (all x are 0): nothing to fit a model on")
    try:
        xs, txs, Ts = np.broadcast_arrays(xs, txs, Ts)
    except ValueError as e:
        raise AnalysisError(f"x, t_x and T do not have compatible shapes: {e}") from e
    _check(xs >= 0, "x (repeat purchases) is negative", xs)
    _check(xs == np.round(xs), "x (repeat purchases) is not a whole number", xs)
    _check(txs >= 0, "t_x (time of last purchase) is negative", txs)
    _check(txs <= Ts, "t_x is after T (the end of the observation)", txs - Ts)
    return xs, txs, Ts


def _weights_array(weights: ArrayLike | None, size: int) -> FloatArray:
    if weights is None:
        return np.ones(size)
    w = _float_array("weights", weights)
    if w.shape != (size,):
        raise AnalysisError(f"weights must have one value per customer ({size}), got shape {w.shape}")
    _check(w >= 0, "weight is negative", w)
    if w.sum() <= 0:
        raise AnalysisError("weights sum to zero: there is no customer to fit")
    return w


def _unique_rows(*columns: FloatArray) -> tuple[list[FloatArray], NDArray[np.intp], FloatArray]:
    """Distinct rows of the columns (sorted), each row's index among them, and how often each occurs."""
    order = np.lexsort(columns[::-1])
    ordered = [column[order] for column in columns]
    starts_group = np.zeros(order.size, dtype=bool)
    starts_group[:1] = True
    for column in ordered:
        starts_group[1:] |= column[1:] != column[:-1]
    starts = np.flatnonzero(starts_group)
    inverse = np.empty(order.size, dtype=np.intp)
    inverse[order] = np.cumsum(starts_group) - 1
    counts = np.diff(np.append(starts, order.size)).astype(np.float64)
    return [column[starts] for column in ordered], inverse, counts


def group_rfm(
    x: ArrayLike, t_x: ArrayLike, T: ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Collapse customers with identical (x, t_x, T) into one row each; returns (x, t_x, T, counts)."""
    columns = [np.asarray(v, dtype=np.float64).ravel() for v in (x, t_x, T)]
    if not columns[0].shape == columns[1].shape == columns[2].shape:
        raise AnalysisError("x, t_x and T must have one value per customer")
    (xs, txs, Ts), _, counts = _unique_rows(*columns)
    return xs, txs, Ts, counts


# --- shared estimator machinery -----------------------------------------------------------------------------


class _Fitter:
    """Maximum likelihood on log-parameters with L-BFGS-B; subclasses give the per-customer likelihood."""

    param_names: ClassVar[tuple[str, ...]] = ()
    params_: dict[str, float]
    log_likelihood_: float
    standard_errors_: dict[str, float | None]

    def __init__(self, penalizer_coef: float = 0.0, maxiter: int = 1000, tol: float = 1e-12) -> None:
        """penalizer_coef adds coef * sum(log(param)**2) to the mean negative log-likelihood (small data)."""
        self.penalizer_coef = penalizer_coef
        self.maxiter = maxiter
        self.tol = tol

    @classmethod
    def from_params(cls, **params: float) -> Self:
        """A model with given (e.g. published) parameters, ready to predict; its log_likelihood_ is NaN."""
        if set(params) != set(cls.param_names):
            raise AnalysisError(f"{cls.__name__} needs exactly the parameters {', '.join(cls.param_names)}")
        for name, value in params.items():
            if not (np.isfinite(value) and value > 0):
                raise AnalysisError(f"{cls.__name__} parameter {name} must be positive, got {value!r}")
        model = cls()
        model.params_ = {name: float(params[name]) for name in cls.param_names}
        model.log_likelihood_ = float("nan")
        model.standard_errors_ = dict.fromkeys(cls.param_names)
        return model

    def _fitted_params(self) -> tuple[float, ...]:
        params = getattr(self, "params_", None)
        if params is None:
            raise NotFittedError(
                f"{type(self).__name__} is not fitted: call fit(...) or from_params(...) first"
            )
        return tuple(params[name] for name in self.param_names)

    def _maximise(
        self, log_likelihood: LogLikelihood, weights: FloatArray, *, analytic_gradient: bool
    ) -> None:
        """Find the parameters maximising sum(weights * log-likelihood); set params_ and log_likelihood_."""
        total = float(weights.sum())

        def objective(theta: FloatArray) -> tuple[float, FloatArray]:
            params = np.exp(theta)
            ll, grad = log_likelihood(params)
            value = -float(weights @ ll) / total + self.penalizer_coef * float(theta @ theta)
            if not np.isfinite(value):
                return np.inf, np.zeros_like(theta)
            if grad is None:  # only the value is used: scipy differentiates numerically
                return value, np.zeros_like(theta)
            return value, -(grad @ weights) / total * params + 2 * self.penalizer_coef * theta

        name = type(self).__name__
        with np.errstate(all="ignore"):  # the line search may probe parameters where terms overflow
            result = minimize(
                objective if analytic_gradient else (lambda theta: objective(theta)[0]),
                np.zeros(len(self.param_names)),
                jac=analytic_gradient,
                method="L-BFGS-B",
                bounds=[(-_LOG_BOUND, _LOG_BOUND)] * len(self.param_names),
                options={
                    "maxiter": self.maxiter,
                    "ftol": self.tol,
                    "gtol": 1e-9 if analytic_gradient else 1e-7,
                },
            )
            # status 2 is a line search that cannot improve further; at a flat gradient that is the optimum.
            flat = result.status == 2 and float(np.max(np.abs(result.jac))) < 1e-6
            if not (result.success or flat) or not np.isfinite(result.fun):
                raise AnalysisError(
                    f"{name} fit did not converge ({result.message}); the data may not suit the model"
                )
            extreme = [p for p, t in zip(self.param_names, result.x, strict=True) if abs(t) > _LOG_BOUND - 1]
            if extreme:
                raise AnalysisError(
                    f"{name} fit ran off to extreme values of {', '.join(extreme)}: the data do not "
                    "identify the model; use more customers or a penalizer_coef > 0"
                )
            params = np.exp(result.x)
            ll, _ = log_likelihood(params)
        self.params_ = {p: float(v) for p, v in zip(self.param_names, params, strict=True)}
        self.log_likelihood_ = float(weights @ ll)
        self.standard_errors_ = _standard_errors(log_likelihood, weights, result.x, self.param_names)


def _standard_errors(
    log_likelihood: LogLikelihood, weights: FloatArray, theta: FloatArray, names: tuple[str, ...]
) -> dict[str, float | None]:
    """Asymptotic standard errors of the (unpenalised) maximum-likelihood estimates from the observed
    information: the Hessian of the total log-likelihood in log-parameters by central differences (of the
    analytic gradient when the model has one, else of the values), inverted, then mapped to the parameters by
    the delta method (se(p) = p * se(log p)). None for a parameter when the Hessian is not invertible."""
    k = theta.size

    def total(t: FloatArray) -> tuple[float, FloatArray | None]:
        ll, grad = log_likelihood(np.exp(t))
        return float(weights @ ll), None if grad is None else (grad @ weights) * np.exp(t)

    hessian = np.empty((k, k))
    with np.errstate(all="ignore"):
        if total(theta)[1] is not None:
            step = 1e-5
            for i in range(k):
                shift = np.zeros(k)
                shift[i] = step
                up, down = total(theta + shift)[1], total(theta - shift)[1]
                assert up is not None and down is not None
                hessian[i] = (up - down) / (2 * step)
            hessian = (hessian + hessian.T) / 2
        else:
            step = 1e-4
            centre = total(theta)[0]
            for i in range(k):
                for j in range(i, k):
                    ei, ej = np.eye(k)[i] * step, np.eye(k)[j] * step
                    if i == j:
                        value = (total(theta + ei)[0] - 2 * centre + total(theta - ei)[0]) / step**2
                    else:
                        value = (
                            total(theta + ei + ej)[0]
                            - total(theta + ei - ej)[0]
                            - total(theta - ei + ej)[0]
                            + total(theta - ei - ej)[0]
                        ) / (4 * step**2)
                    hessian[i, j] = hessian[j, i] = value
        try:
            variance = np.diag(np.linalg.inv(-hessian))
        except np.linalg.LinAlgError:
            return dict.fromkeys(names)
    return {
        name: float(np.exp(t) * np.sqrt(v)) if np.isfinite(v) and v > 0 else None
        for name, t, v in zip(names, theta, variance, strict=True)
    }


# --- BG/NBD ---------------------------------------------------------------------------------------------


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


# --- Pareto/NBD -----------------------------------------------------------------------------------------


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


# --- Gamma-Gamma spend ----------------------------------------------------------------------------------


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


# --- customer lifetime value ----------------------------------------------------------------------------


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
