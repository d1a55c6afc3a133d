"""The CLV estimators against the published CDNOW figures, numerical integration and simulated customers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
from scipy import integrate
from scipy.special import betaln, gammaln

from pleasepoint_cli.clv.models import (
    BetaGeoFitter,
    GammaGammaFitter,
    NotFittedError,
    ParetoNBDFitter,
    customer_lifetime_value,
    group_rfm,
)
from pleasepoint_cli.errors import AnalysisError

CDNOW_SUMMARY = Path(__file__).parent / "data" / "cdnow_summary.csv"
PUBLISHED_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PUBLISHED_PARETO = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}
PUBLISHED_GAMMA_GAMMA = {"p": 6.25, "q": 3.74, "gamma": 15.44}
# Unconditional E[X(t)] of Fader, Hardie & Lee (2005) at t = 1, 3, 32, 78 weeks.
PUBLISHED_EXPECTED_PURCHASES = {1.0: 0.0532, 3.0: 0.1506, 32.0: 1.0437, 78.0: 1.8576}


class Customers(NamedTuple):
    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray
    zbar: np.ndarray


@pytest.fixture(scope="module")
def cdnow() -> Customers:
    """The 2,357-customer CDNOW calibration summary of the papers (weeks)."""
    table = np.loadtxt(CDNOW_SUMMARY, delimiter=",", skiprows=1)
    data = Customers(table[:, 1], table[:, 2], table[:, 3], table[:, 4])
    assert len(data.x) == 2357 and data.x.sum() == 2457 and (data.x > 0).sum() == 946
    return data


@pytest.fixture(scope="module")
def bgnbd(cdnow: Customers) -> BetaGeoFitter:
    return BetaGeoFitter().fit(cdnow.x, cdnow.t_x, cdnow.T)


@pytest.fixture(scope="module")
def pareto(cdnow: Customers) -> ParetoNBDFitter:
    return ParetoNBDFitter().fit(cdnow.x, cdnow.t_x, cdnow.T)


@pytest.fixture(scope="module")
def gamma_gamma(cdnow: Customers) -> GammaGammaFitter:
    repeaters = cdnow.x > 0
    return GammaGammaFitter().fit(cdnow.x[repeaters], cdnow.zbar[repeaters])


# --- the published CDNOW figures --------------------------------------------------------------------------


def test_bgnbd_fit_matches_fader_hardie_lee(bgnbd: BetaGeoFitter) -> None:
    assert bgnbd.params_ == pytest.approx(PUBLISHED_BGNBD, rel=0.01)
    assert bgnbd.log_likelihood_ == pytest.approx(-9582.4, abs=0.5)


def test_pareto_nbd_fit_matches_fader_hardie_lee(pareto: ParetoNBDFitter) -> None:
    assert pareto.params_ == pytest.approx(PUBLISHED_PARETO, rel=0.01)
    assert pareto.log_likelihood_ == pytest.approx(-9595.0, abs=0.5)


def test_gamma_gamma_fit_matches_fader_hardie(gamma_gamma: GammaGammaFitter) -> None:
    assert gamma_gamma.params_ == pytest.approx(PUBLISHED_GAMMA_GAMMA, rel=0.01)
    assert gamma_gamma.expected_average_profit() == pytest.approx(35.17, abs=0.1)


def test_bgnbd_predictions_at_the_published_parameters() -> None:
    model = BetaGeoFitter.from_params(**PUBLISHED_BGNBD)
    expected = model.conditional_expected_number_of_purchases_up_to_time(39, 2, 30.43, 38.86)
    assert float(expected) == pytest.approx(1.226, abs=0.005)
    assert float(model.probability_of_n_purchases_up_to_time(39, 0)) == pytest.approx(0.5738, abs=5e-4)
    # The paper computed E[X(t)] at its unrounded estimates; at the 3-digit ones E[X(78)] moves by 0.15%.
    ts = list(PUBLISHED_EXPECTED_PURCHASES)
    assert model.expected_number_of_purchases_up_to_time(ts) == pytest.approx(
        list(PUBLISHED_EXPECTED_PURCHASES.values()), rel=2e-3
    )


def test_bgnbd_unconditional_expectation_at_our_estimates(bgnbd: BetaGeoFitter) -> None:
    ts = list(PUBLISHED_EXPECTED_PURCHASES)
    assert bgnbd.expected_number_of_purchases_up_to_time(ts) == pytest.approx(
        list(PUBLISHED_EXPECTED_PURCHASES.values()), abs=5e-4
    )


# --- internal consistency and independent checks ------------------------------------------------------------


def test_bgnbd_purchase_count_distribution_sums_to_one_with_the_right_mean() -> None:
    model = BetaGeoFitter.from_params(**PUBLISHED_BGNBD)
    n = np.arange(2000)
    for t in (1.0, 39.0, 78.0):
        pmf = model.probability_of_n_purchases_up_to_time(t, n)
        assert np.all(pmf >= 0)
        assert pmf.sum() == pytest.approx(1.0, abs=1e-9)
        assert (n * pmf).sum() == pytest.approx(
            float(model.expected_number_of_purchases_up_to_time(t)), rel=1e-3
        )


@pytest.mark.parametrize(
    "params",
    [
        {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669},  # alpha < beta
        {"r": 1.5, "alpha": 8.0, "s": 1.3, "beta": 5.0},  # alpha > beta: the other 2F1 branch
        {"r": 2.0, "alpha": 6.0, "s": 0.7, "beta": 6.0},  # alpha = beta
    ],
)
def test_pareto_nbd_predictions_match_numerical_integration(params: dict[str, float]) -> None:
    """The 2F1 closed forms against the integrals they solve: dropping out at tau in (t_x, T] has density
    E[lambda^x e^(-lambda tau)] * E[mu e^(-mu tau)] over the gamma-distributed rates."""
    r, alpha, s, beta = params.values()
    model = ParetoNBDFitter.from_params(**params)
    horizon = 20.0
    for x, t_x, T in [(0, 0.0, 30.0), (3, 10.0, 30.0), (40, 25.0, 35.0)]:

        def buying(tau: float, x: int = x) -> float:  # E[lambda^x exp(-lambda tau)] / E[...] at tau = T
            return float(
                np.exp(gammaln(r + x) - gammaln(r) + r * np.log(alpha) - (r + x) * np.log(alpha + tau))
            )

        alive = buying(T) * (beta / (beta + T)) ** s
        dropped = integrate.quad(
            lambda tau: buying(tau) * s * beta**s / (beta + tau) ** (s + 1), t_x, T, epsabs=0, epsrel=1e-12
        )[0]
        p_alive = alive / (alive + dropped)
        assert float(model.conditional_probability_alive(x, t_x, T)) == pytest.approx(p_alive, rel=1e-8)

        # If alive: purchases at the posterior mean rate for the part of the horizon still alive.
        def still_alive(u: float, T: float = T) -> float:  # E[exp(-mu u)] for mu given alive at T
            return float(((beta + T) / (beta + T + u)) ** s)

        alive_time = integrate.quad(still_alive, 0, horizon, epsrel=1e-12)[0]
        expected = p_alive * (r + x) / (alpha + T) * alive_time
        assert float(
            model.conditional_expected_number_of_purchases_up_to_time(horizon, x, t_x, T)
        ) == pytest.approx(expected, rel=1e-8)


@pytest.mark.parametrize("params", [PUBLISHED_BGNBD, {"r": 1.5, "alpha": 5.0, "a": 1.8, "b": 3.0}])
def test_bgnbd_expected_purchases_match_numerical_integration(params: dict[str, float]) -> None:
    """FHL eq. (10) against the integral it solves: an active customer with rate lambda and dropout chance p
    buys (1 - exp(-lambda p t)) / p in t; lambda integrates out, p ~ beta(a, b + x) numerically."""
    r, alpha, a, b = params.values()
    model = BetaGeoFitter.from_params(**params)
    horizon = 39.0
    for x, t_x, T in [(0, 0.0, 38.86), (2, 30.43, 38.86), (40, 25.0, 35.0)]:
        alive_if_repeat = a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x) if x else 0.0
        p_alive = 1.0 / (1.0 + alive_if_repeat)
        assert float(model.conditional_probability_alive(x, t_x, T)) == pytest.approx(p_alive, rel=1e-12)

        def if_alive(p: float, x: int = x, T: float = T) -> float:
            if p == 0:  # the limit: no dropout, purchases at the posterior mean rate
                return (r + x) * horizon / (alpha + T)
            return float((1 - ((alpha + T) / (alpha + T + p * horizon)) ** (r + x)) / p)

        integral = integrate.quad(if_alive, 0, 1, weight="alg", wvar=(a - 1, b + x - 1), epsrel=1e-12)[0]
        expected = p_alive * integral / np.exp(betaln(a, b + x))
        assert float(
            model.conditional_expected_number_of_purchases_up_to_time(horizon, x, t_x, T)
        ) == pytest.approx(expected, rel=1e-8)


def test_very_frequent_buyers_stay_finite() -> None:
    """Hundreds of purchases overflow the textbook 2F1 forms; the transformed ones must not."""
    x, t_x, T = np.array([300.0, 800.0]), np.array([49.95, 49.99]), np.array([50.0, 50.0])
    for model in (
        BetaGeoFitter.from_params(**PUBLISHED_BGNBD),
        ParetoNBDFitter.from_params(**PUBLISHED_PARETO),
    ):
        r, alpha = model.params_["r"], model.params_["alpha"]
        alive = model.conditional_probability_alive(x, t_x, T)
        expected = model.conditional_expected_number_of_purchases_up_to_time(10.0, x, t_x, T)
        assert np.all((alive > 0.99) & (alive <= 1.0))
        never_dropping = (r + x) / (alpha + T) * 10.0  # dropping out can only lower the expectation
        assert np.all((expected > 0.8 * never_dropping) & (expected < never_dropping))


def test_gamma_gamma_shrinks_the_customer_mean_towards_the_population_mean(
    gamma_gamma: GammaGammaFitter,
) -> None:
    population = gamma_gamma.expected_average_profit()
    p, q = gamma_gamma.params_["p"], gamma_gamma.params_["q"]
    spend = gamma_gamma.conditional_expected_average_profit([0, 1, 4, 10_000], [0.0, 100.0, 100.0, 100.0])
    assert spend[0] == pytest.approx(population)
    weight = p * 4 / (p * 4 + q - 1)
    assert spend[2] == pytest.approx(weight * 100.0 + (1 - weight) * population)
    assert population < spend[1] < spend[2] < spend[3] < 100.0
    assert spend[3] == pytest.approx(100.0, rel=1e-3)


# --- weights and grouping --------------------------------------------------------------------------------


@pytest.mark.parametrize("model_class", [BetaGeoFitter, ParetoNBDFitter])
def test_grouped_weighted_fit_equals_the_ungrouped_fit(
    cdnow: Customers, model_class: type[BetaGeoFitter] | type[ParetoNBDFitter]
) -> None:
    x, t_x, T, weights = group_rfm(cdnow.x, cdnow.t_x, cdnow.T)
    assert len(x) < len(cdnow.x) and weights.sum() == len(cdnow.x)
    grouped = model_class().fit(x, t_x, T, weights=weights)
    ungrouped = model_class().fit(cdnow.x, cdnow.t_x, cdnow.T)
    # Pareto/NBD's s and beta lie on a flat ridge of the likelihood (the log-likelihoods agree to 1e-6), so
    # the optimiser stops at points 2e-4 apart along it depending on the order of the sums.
    rel = 1e-4 if model_class is BetaGeoFitter else 1e-3
    assert grouped.params_ == pytest.approx(ungrouped.params_, rel=rel)
    assert grouped.log_likelihood_ == pytest.approx(ungrouped.log_likelihood_, abs=1e-6)


def test_gamma_gamma_weights_count_customers(cdnow: Customers) -> None:
    repeaters = cdnow.x > 0
    x, zbar = cdnow.x[repeaters], cdnow.zbar[repeaters]
    doubled = GammaGammaFitter().fit(np.tile(x, 2), np.tile(zbar, 2))
    weighted = GammaGammaFitter().fit(x, zbar, weights=np.full(len(x), 2.0))
    assert weighted.params_ == pytest.approx(doubled.params_, rel=1e-4)
    assert weighted.log_likelihood_ == pytest.approx(doubled.log_likelihood_, rel=1e-9)


def test_group_rfm_counts_identical_customers() -> None:
    x, t_x, T, weights = group_rfm([1, 0, 1, 1, 0], [2.0, 0.0, 2.0, 3.0, 0.0], [5.0, 5.0, 5.0, 5.0, 6.0])
    rows = sorted(zip(x, t_x, T, weights, strict=True))
    assert rows == [(0, 0, 5, 1), (0, 0, 6, 1), (1, 2, 5, 2), (1, 3, 5, 1)]


def test_changing_the_time_unit_only_rescales_alpha_and_beta(cdnow: Customers, bgnbd: BetaGeoFitter) -> None:
    in_days = BetaGeoFitter().fit(cdnow.x, cdnow.t_x * 7, cdnow.T * 7)
    assert in_days.params_ == pytest.approx({**bgnbd.params_, "alpha": bgnbd.params_["alpha"] * 7}, rel=1e-4)


# --- a million customers ------------------------------------------------------------------------------------


def _observation_ends(n: int, rng: np.random.Generator) -> np.ndarray:
    """T in weeks for first purchases spread over 12 weeks and a 39-week calibration, in whole days."""
    return rng.integers(273 - 84, 274, n) / 7.0


def _simulate_bgnbd(n: int, params: dict[str, float], rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    T = _observation_ends(n, rng)
    rate = rng.gamma(params["r"], 1 / params["alpha"], n)
    purchases = rng.poisson(rate * T)  # what a customer who never dropped out would buy
    x = np.minimum(purchases, rng.geometric(rng.beta(params["a"], params["b"], n)))
    # The last purchase is the x-th of `purchases` uniform times: T * Beta(x, purchases - x + 1).
    t_x = np.where(x > 0, T * rng.beta(np.maximum(x, 1), purchases - x + 1), 0.0)
    return x.astype(float), np.round(t_x * 7) / 7, T


def _simulate_pareto(n: int, params: dict[str, float], rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    T = _observation_ends(n, rng)
    rate = rng.gamma(params["r"], 1 / params["alpha"], n)
    active_until = np.minimum(rng.exponential(1 / rng.gamma(params["s"], 1 / params["beta"], n)), T)
    x = rng.poisson(rate * active_until)
    t_x = np.where(x > 0, active_until * rng.beta(np.maximum(x, 1), 1), 0.0)
    return x.astype(float), np.round(t_x * 7) / 7, T


@pytest.mark.parametrize(
    ("model_class", "simulate", "truth", "rel"),
    [
        (BetaGeoFitter, _simulate_bgnbd, PUBLISHED_BGNBD, 0.05),
        (ParetoNBDFitter, _simulate_pareto, PUBLISHED_PARETO, 0.15),  # s and beta are weakly identified
    ],
)
def test_a_million_grouped_customers_fit_in_seconds_and_recover_the_truth(
    model_class: type[BetaGeoFitter] | type[ParetoNBDFitter],
    simulate: object,
    truth: dict[str, float],
    rel: float,
) -> None:
    assert callable(simulate)
    x, t_x, T, weights = group_rfm(*simulate(1_000_000, truth, np.random.default_rng(7)))
    assert 10_000 < len(x) < 200_000
    model = model_class().fit(x, t_x, T, weights=weights)
    # How fast is the bench's business (bench/bench_clv.py), not a timed assertion here.
    assert model.params_ == pytest.approx(truth, rel=rel)
    true_model = model_class.from_params(**truth)
    assert model.expected_number_of_purchases_up_to_time(78.0) == pytest.approx(
        float(true_model.expected_number_of_purchases_up_to_time(78.0)), rel=0.02
    )


# --- customer lifetime value --------------------------------------------------------------------------------


def test_undiscounted_clv_is_expected_purchases_times_expected_spend(
    cdnow: Customers, bgnbd: BetaGeoFitter, gamma_gamma: GammaGammaFitter
) -> None:
    x, t_x, T, zbar = cdnow
    clv = customer_lifetime_value(bgnbd, gamma_gamma, x, t_x, T, zbar, 12, 0.0, step=4.345)
    purchases = bgnbd.conditional_expected_number_of_purchases_up_to_time(12 * 4.345, x, t_x, T)
    assert clv == pytest.approx(
        purchases * gamma_gamma.conditional_expected_average_profit(x, zbar), rel=1e-9
    )
    assert clv.shape == x.shape


def test_discounting_weighs_each_period_by_its_discount_factor(
    cdnow: Customers, pareto: ParetoNBDFitter, gamma_gamma: GammaGammaFitter
) -> None:
    x, t_x, T, zbar = (column[:50] for column in cdnow)
    clv = customer_lifetime_value(pareto, gamma_gamma, x, t_x, T, zbar, 3, 0.1, step=2.0)
    cumulative = [pareto.conditional_expected_number_of_purchases_up_to_time(t, x, t_x, T) for t in (2, 4, 6)]
    per_period = [cumulative[0], cumulative[1] - cumulative[0], cumulative[2] - cumulative[1]]
    spend = gamma_gamma.conditional_expected_average_profit(x, zbar)
    by_hand = sum(purchases * spend / 1.1**i for i, purchases in enumerate(per_period, start=1))
    assert clv == pytest.approx(by_hand, rel=1e-12)
    assert np.all(clv > 0)


# --- errors -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x", "t_x", "T", "message"),
    [
        ([], [], [], "no customers"),
        ([1, 2], [5.0, 40.0], [38.0, 38.0], "t_x is after T"),
        ([1, -1], [5.0, 0.0], [38.0, 38.0], "negative"),
        ([1, 1.5], [5.0, 6.0], [38.0, 38.0], "whole number"),
        ([1, np.nan], [5.0, 6.0], [38.0, 38.0], "missing"),
        ([0, 0], [0.0, 0.0], [38.0, 38.0], "no customer made a repeat purchase"),
        ([1, 2], [5.0, 6.0], [38.0], "1-D arrays of one length"),
    ],
)
@pytest.mark.parametrize("model_class", [BetaGeoFitter, ParetoNBDFitter])
def test_invalid_data_is_refused(
    model_class: type[BetaGeoFitter] | type[ParetoNBDFitter],
    x: list[float],
    t_x: list[float],
    T: list[float],
    message: str,
) -> None:
    with pytest.raises(AnalysisError, match=message):
        model_class().fit(x, t_x, T)


def test_invalid_weights_are_refused(cdnow: Customers) -> None:
    with pytest.raises(AnalysisError, match="one value per customer"):
        BetaGeoFitter().fit(cdnow.x, cdnow.t_x, cdnow.T, weights=[1.0, 2.0])
    with pytest.raises(AnalysisError, match="weight is negative"):
        BetaGeoFitter().fit(cdnow.x, cdnow.t_x, cdnow.T, weights=-np.ones(len(cdnow.x)))


def test_gamma_gamma_refuses_customers_without_repeat_purchases(cdnow: Customers) -> None:
    with pytest.raises(AnalysisError, match="repeat customers only"):
        GammaGammaFitter().fit(cdnow.x, cdnow.zbar)
    with pytest.raises(AnalysisError, match="no customers"):
        GammaGammaFitter().fit([], [])


def test_predicting_before_fitting_raises_not_fitted() -> None:
    calls: list[Callable[[], object]] = [
        lambda: BetaGeoFitter().conditional_expected_number_of_purchases_up_to_time(1, 1, 1, 2),
        lambda: BetaGeoFitter().conditional_probability_alive(1, 1, 2),
        lambda: BetaGeoFitter().expected_number_of_purchases_up_to_time(1),
        lambda: BetaGeoFitter().probability_of_n_purchases_up_to_time(1, 0),
        lambda: ParetoNBDFitter().conditional_expected_number_of_purchases_up_to_time(1, 1, 1, 2),
        lambda: ParetoNBDFitter().conditional_probability_alive(1, 1, 2),
        lambda: ParetoNBDFitter().expected_number_of_purchases_up_to_time(1),
        lambda: GammaGammaFitter().conditional_expected_average_profit(1, 10.0),
        lambda: GammaGammaFitter().expected_average_profit(),
    ]
    for call in calls:
        with pytest.raises(NotFittedError, match="not fitted"):
            call()
    assert issubclass(NotFittedError, AnalysisError)


@pytest.mark.parametrize("model_class", [BetaGeoFitter, ParetoNBDFitter])
def test_a_fit_that_does_not_converge_raises(
    cdnow: Customers, model_class: type[BetaGeoFitter] | type[ParetoNBDFitter]
) -> None:
    with pytest.raises(AnalysisError, match="did not converge"):
        model_class(maxiter=2).fit(cdnow.x, cdnow.t_x, cdnow.T)


def test_data_that_do_not_identify_the_model_raise(cdnow: Customers) -> None:
    with pytest.raises(AnalysisError, match="extreme values"):
        BetaGeoFitter().fit(cdnow.x[:3], cdnow.t_x[:3], cdnow.T[:3])
    with pytest.raises(AnalysisError, match="GammaGammaFitter fit"):  # identical spend: no heterogeneity
        GammaGammaFitter().fit(np.array([1, 2, 3, 4, 5] * 20), np.full(100, 25.0))


def test_from_params_checks_the_parameters() -> None:
    with pytest.raises(AnalysisError, match="needs exactly the parameters r, alpha, a, b"):
        BetaGeoFitter.from_params(r=0.2, alpha=4.0, a=0.8)
    with pytest.raises(AnalysisError, match="must be positive"):
        GammaGammaFitter.from_params(p=6.0, q=-1.0, gamma=15.0)
    assert np.isnan(BetaGeoFitter.from_params(**PUBLISHED_BGNBD).log_likelihood_)


def test_standard_errors_from_the_hessian_match_the_published_cdnow_ones(bgnbd: BetaGeoFitter) -> None:
    # lifetimes' BetaGeoFitter summary on the same CDNOW data: se(coef) 0.012557, 0.378221, 0.185719, 0.705345.
    published = {"r": 0.012557, "alpha": 0.378221, "a": 0.185719, "b": 0.705345}
    for name, se in published.items():
        assert bgnbd.standard_errors_[name] == pytest.approx(se, rel=1e-3)


def test_a_model_from_published_parameters_has_no_standard_errors() -> None:
    model = BetaGeoFitter.from_params(r=0.243, alpha=4.41, a=0.79, b=2.43)

    assert model.standard_errors_ == {"r": None, "alpha": None, "a": None, "b": None}
