"""What the CLV estimators share: input checks, grouping of identical customers, and maximum likelihood on
log-parameters. The estimators are one per module, as lifetimes lays them out: beta_geo_fitter (BG/NBD),
pareto_nbd_fitter (Pareto/NBD), gamma_gamma_fitter (Gamma-Gamma); lifetime_value has the discounted CLV.

Predictive CLV models in numpy and scipy: BG/NBD, Pareto/NBD, Gamma-Gamma and the discounted CLV.

The likelihoods follow the papers (Fader, Hardie & Lee 2005; Fader & Hardie's notes on the Pareto/NBD and on
the Gamma-Gamma model) and are checked against their CDNOW figures in tests/test_clv_models.py. Data are per
customer: x = repeat purchases, t_x = time of the last one, T = time since the first purchase, in one time
unit (weeks in the papers). Every fit takes ``weights``, so customers grouped by identical (x, t_x, T) with
`group_rfm` fit in the time the number of distinct groups needs, not the number of customers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Protocol, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize

from pleasepoint_cli.errors import AnalysisError, NotFittedError

FloatArray = NDArray[np.float64]
ParamVector = FloatArray | tuple[float, ...]
# Per-customer log-likelihood and, when the model has one, its gradient (one row per parameter).
LogLikelihood = Callable[[FloatArray], tuple[FloatArray, FloatArray | None]]

_LOG_BOUND = 15.0  # parameters are optimised as log(value) within +-15; beyond +-14 a fit is refused


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
