"""`clv predict`: BG/NBD or Pareto/NBD for purchases and P(alive), Gamma-Gamma for spend, and each
customer's discounted CLV, from a per-customer summary built in DuckDB SQL.

The summary follows the papers (Fader, Hardie & Lee 2005): one purchase per customer and calendar day (a day
counts when it has a purchased line, quantity > 0; its spend is the sum of all its lines, so a return on the
same day is netted; a day with only returns is not a purchase); x = purchase days - 1, t_x = time from the
first to the last purchase day, T = time from the first purchase day to the calibration end (the last day
counted), monetary = mean spend of the repeat purchase days. Customers with identical (x, t_x, T) are fitted
as one weighted row, so a million customers fit in the time their few hundred thousand distinct rows need.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pleasepoint_cli.errors import AnalysisError, ConfigError

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from pleasepoint_cli.attributes import AttributeChange
    from pleasepoint_cli.store.connection import Store

ModelName = Literal["bgnbd", "pareto"]
Unit = Literal["weeks", "days"]
UNIT_DAYS: dict[str, float] = {"weeks": 7.0, "days": 1.0}
MIN_CUSTOMERS = 10
YEAR_DAYS = 365.25
MONTH_DAYS = YEAR_DAYS / 12
TIERS = ("very_low", "low", "medium", "high", "very_high")
"""CLV tiers by quintile of CLV among the predicted customers, lowest first."""

PREDICTIONS_TABLE = "clv_predictions"
MAX_GROUPS = 25_000
"""Above this many distinct (x, t_x, T), `grid="auto"` measures times on a coarser grid (see GRID_CHOICES)."""
GRID_CHOICES = (1, 7, 14, 28)
"""Candidate grids in days for `grid="auto"`: the first that leaves at most MAX_GROUPS groups is used."""
IDENTIFIED_LOG = 11.5
"""A fitted parameter beyond exp(+-11.5) (about 1e5 or 1e-5) means the fit ran to a boundary of its space:
the data do not identify the model, and its predictions are not trusted (often they are NaN)."""
SPEND_BIN = 0.005
"""Relative width of the monetary bins when repeaters have more than MAX_GROUPS distinct (x, mean spend)."""

_SUMMARY_SQL = """
CREATE OR REPLACE TEMP TABLE clv_summary AS
WITH purchase_days AS (
    SELECT customer_id, CAST(ordered_at AS DATE) AS day, sum(amount) AS spend
    FROM purchase_lines
    WHERE ordered_at < CAST($end AS DATE) + INTERVAL 1 DAY
    GROUP BY customer_id, day
    HAVING bool_or(quantity > 0)
)
SELECT customer_id,
       count(*) - 1 AS x,
       date_diff('day', min(day), max(day)) AS t_x_days,
       date_diff('day', min(day), CAST($end AS DATE)) AS T_days,
       CASE WHEN count(*) > 1 THEN (sum(spend) - arg_min(spend, day)) / (count(*) - 1) ELSE 0 END AS monetary
FROM purchase_days
GROUP BY customer_id
"""

_HOLDOUT_SQL = """
CREATE OR REPLACE TEMP TABLE clv_holdout AS
SELECT customer_id, count(*) AS actual
FROM (
    SELECT customer_id, CAST(ordered_at AS DATE) AS day
    FROM purchase_lines
    WHERE ordered_at >= CAST($end AS DATE) + INTERVAL 1 DAY
      AND ordered_at < CAST($holdout AS DATE) + INTERVAL 1 DAY
    GROUP BY customer_id, day
    HAVING bool_or(quantity > 0)
)
GROUP BY customer_id
"""

_PREDICTIONS_SQL = f"""
CREATE OR REPLACE TEMP TABLE {PREDICTIONS_TABLE} AS
SELECT customer_id, x, t_x, T, monetary, p_alive, expected_purchases, holdout_expected,
       expected_avg_spend,
       expected_purchases * expected_avg_spend AS expected_spend,
       discounted_purchases * expected_avg_spend AS clv
FROM (
    SELECT s.customer_id, s.x, s.t_x_days / $unit AS t_x, s.T_days / $unit AS T, s.monetary,
           g.p_alive, g.expected_purchases, g.discounted_purchases, g.holdout_expected,
           $p * ($gamma + s.x * greatest(s.monetary, 0)) / ($p * s.x + $q - 1) AS expected_avg_spend
    FROM clv_summary s
    JOIN clv_group_predictions g
        ON g.x = s.x AND g.t_x_days = {{t_x_bin}} AND g.T_days = {{T_bin}}
)
"""


@dataclass(frozen=True)
class PredictOptions:
    """What to fit and predict. Horizon in days whatever the unit; discount is an annual rate."""

    calibration_end: date
    model: ModelName = "bgnbd"
    horizon_days: int = 365
    holdout_end: date | None = None
    unit: Unit = "weeks"
    annual_discount: float = 0.01
    penalizer: float = 0.0
    grid_days: int | None = None
    """Days per step of the time grid t_x and T are measured on; None chooses (1 = exact days)."""


@dataclass(frozen=True)
class HoldoutComparison:
    """Predicted vs actual purchase days in the holdout period, as the papers report them."""

    holdout_end: date
    length: float
    customers: int
    actual_total: int
    predicted_total: float
    correlation: float | None
    zero_repeat_customers: int
    zero_repeat_mean_actual: float | None
    zero_repeat_mean_predicted: float | None
    by_frequency: list[dict[str, Any]]


@dataclass
class PredictResult:
    """The fitted models, totals over customers, and the holdout comparison when asked for.

    Per-customer predictions are left in the temp table `clv_predictions` of the connection.
    """

    options: PredictOptions
    customers: int
    groups: int
    repeaters: int
    params: dict[str, float]
    log_likelihood: float
    spend_customers: int
    spend_params: dict[str, float]
    spend_log_likelihood: float
    population_mean_spend: float
    totals: dict[str, float]
    grid_days: int = 1
    spend_bin: float | None = None
    holdout: HoldoutComparison | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    standard_errors: dict[str, float | None] = field(default_factory=dict)
    """Of `params`, from the Hessian of the log-likelihood at the fit (None where it is not invertible)."""
    spend_standard_errors: dict[str, float | None] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The JSON document of `clv predict --format json` (keys documented in docs/clv.md)."""
        o = self.options
        holdout = None
        if self.holdout is not None:
            h = self.holdout
            holdout = {
                "holdout_end": h.holdout_end.isoformat(),
                "length": h.length,
                "customers": h.customers,
                "actual_total": h.actual_total,
                "predicted_total": h.predicted_total,
                "correlation": h.correlation,
                "zero_repeat": {
                    "customers": h.zero_repeat_customers,
                    "mean_actual": h.zero_repeat_mean_actual,
                    "mean_predicted": h.zero_repeat_mean_predicted,
                },
                "by_frequency": h.by_frequency,
            }
        return {
            "model": o.model,
            "unit": o.unit,
            "calibration_end": o.calibration_end.isoformat(),
            "horizon_days": o.horizon_days,
            "annual_discount": o.annual_discount,
            "penalizer": o.penalizer,
            "grid_days": self.grid_days,
            "spend_bin": self.spend_bin,
            "customers": self.customers,
            "groups": self.groups,
            "repeaters": self.repeaters,
            "transaction_model": {
                "params": self.params,
                "standard_errors": self.standard_errors,
                "log_likelihood": self.log_likelihood,
            },
            "spend_model": {
                "name": "gamma_gamma",
                "customers": self.spend_customers,
                "params": self.spend_params,
                "standard_errors": self.spend_standard_errors,
                "log_likelihood": self.spend_log_likelihood,
                "population_mean_spend": self.population_mean_spend,
            },
            "totals": self.totals,
            "holdout": holdout,
            "warnings": self.warnings,
            "seconds": self.seconds,
        }


def _one(store: Store, sql: str, params: dict[str, Any] | None = None) -> tuple[Any, ...]:
    row = store.first(sql, params or {})
    assert row is not None  # aggregate queries always return a row
    return tuple(row)


def build_summary(store: Store, calibration_end: date) -> tuple[int, int]:
    """Build `clv_summary` (customer_id, x, t_x_days, T_days, monetary); return customers and repeaters."""
    store.execute(_SUMMARY_SQL, {"end": calibration_end})
    customers, repeaters = _one(store, "SELECT count(*), count(*) FILTER (WHERE x > 0) FROM clv_summary")
    if customers == 0:
        raise AnalysisError(
            f"no orders on or before {calibration_end}: nothing to fit. Load orders, or move "
            "--calibration-end / --as-of later."
        )
    if customers < MIN_CUSTOMERS:
        raise AnalysisError(
            f"too few customers to fit a CLV model: {customers} bought on or before "
            f"{calibration_end}; at least {MIN_CUSTOMERS} are needed."
        )
    if repeaters == 0:
        raise AnalysisError(
            f"none of the {customers} customers bought again on a later day by {calibration_end}: "
            "the models need repeat purchases. Move --calibration-end later."
        )
    return int(customers), int(repeaters)


def _binned(column: str, grid: int, at_least_one: bool = False) -> str:
    """SQL for a day count of `clv_summary s` rounded to the grid (T at least one step, so never 0)."""
    if grid == 1:
        return f"s.{column}"
    steps = f"round(s.{column} / {grid})"
    return f"{'greatest(' + steps + ', 1)' if at_least_one else steps} * {grid}"


def choose_grid(store: Store) -> int:
    """The finest grid of GRID_CHOICES (days) that leaves at most MAX_GROUPS distinct (x, t_x, T)."""
    counts = _one(
        store,
        "SELECT "
        + ", ".join(
            f"count(DISTINCT (x, {_binned('t_x_days', g)}, {_binned('T_days', g, at_least_one=True)}))"
            for g in GRID_CHOICES
        )
        + " FROM clv_summary s",
    )
    return next((g for g, n in zip(GRID_CHOICES, counts, strict=True) if n <= MAX_GROUPS), GRID_CHOICES[-1])


def _distinct_spend(store: Store) -> int:
    return int(
        _one(store, "SELECT count(DISTINCT (x, monetary)) FROM clv_summary WHERE x > 0 AND monetary > 0")[0]
    )


def _check_identified(
    model: Any, options: PredictOptions, customers: int, repeaters: int, p_alive: Any, expected: Any
) -> list[str]:
    """Refuse a purchase-model fit that ran to a boundary or predicts non-finite values (nothing is written
    then); return warnings for a Pareto/NBD fit whose dropout (s, beta) the data do not identify."""
    import math

    import numpy as np

    name = {"bgnbd": "BG/NBD", "pareto": "Pareto/NBD"}[options.model]
    share = 100.0 * repeaters / customers
    shown = ", ".join(f"{k} {v:.3g}" for k, v in model.params_.items())
    # A Pareto/NBD whose dropout rate runs to zero (s -> 0, beta free) still predicts: that gets a warning.
    dropout = ("s", "beta") if options.model == "pareto" else ()
    at_bound = [
        k
        for k, v in model.params_.items()
        if not math.isfinite(v) or (abs(math.log(v)) > IDENTIFIED_LOG and k not in dropout)
    ]
    finite = bool(np.all(np.isfinite(p_alive)) and np.all(np.isfinite(expected)))
    if at_bound or not finite:
        cause = (
            f"{share:.1f}% of customers repeat ({repeaters:,} of {customers:,}): the {name} model is not "
            f"identified; the fit ran to a boundary ({shown})"
        )
        effect = "" if finite else " and its predictions are not numbers (NaN)"
        hint = (
            "Rerun with a small penalty, e.g. --penalizer 0.001 (docs/clv.md), or a longer history."
            if not options.penalizer
            else f"Rerun with a larger --penalizer than {options.penalizer:g}, or a longer history."
        )
        raise AnalysisError(f"{cause}{effect}. Nothing was written. {hint}")
    warnings = []
    if options.model == "pareto":
        s_value = model.params_["s"]
        mean_alive = float(np.mean(p_alive))
        beta_value = model.params_["beta"]
        if s_value < 0.01 or abs(math.log(beta_value)) > IDENTIFIED_LOG or mean_alive > 0.995:
            warnings.append(
                f"the Pareto/NBD dropout is not identified (s {s_value:.3g}, beta {beta_value:.3g}, "
                f"mean P(alive) {mean_alive:.2f}): the data hardly show customers leaving, so P(alive) and CLV "
                "lean on the model's assumptions; try --model bgnbd or --penalizer 0.001."
            )
    return warnings


def _transaction_model(name: ModelName, penalizer: float) -> Any:
    from pleasepoint_cli.clv.models import BetaGeoFitter, ParetoNBDFitter

    return (BetaGeoFitter if name == "bgnbd" else ParetoNBDFitter)(penalizer_coef=penalizer)


def _fit(model: Any, label: str, *args: Any, **kwargs: Any) -> None:
    try:
        model.fit(*args, **kwargs)
    except AnalysisError as e:
        hint = (
            ""
            if model.penalizer_coef
            else " Rerun with a small penalty, e.g. --penalizer 0.001 (docs/clv.md)."
        )
        raise AnalysisError(f"{label}: {e}.{hint}") from e


def predict_clv(store: Store, options: PredictOptions) -> PredictResult:
    """Fit the transaction and spend models at the calibration end and predict every customer's purchases,
    P(alive), spend and discounted CLV over the horizon (into `clv_predictions`)."""
    import numpy as np
    import pyarrow as pa

    from pleasepoint_cli.clv.models import GammaGammaFitter

    if options.horizon_days < 1:
        raise ConfigError(f"--horizon {options.horizon_days}: give a number of days >= 1.")
    if options.penalizer < 0:
        raise ConfigError(f"--penalizer {options.penalizer}: give 0 or a small positive number such as 0.01.")
    if options.annual_discount <= -1:
        raise ConfigError(f"--discount {options.annual_discount}: an annual rate above -1 (0.01 is 1%).")
    if options.holdout_end is not None and options.holdout_end <= options.calibration_end:
        raise ConfigError(
            f"--holdout {options.holdout_end} must be after the calibration end {options.calibration_end}: "
            "the model is fitted on the orders up to the calibration end and checked on those after it. "
            f"Give --calibration-end a day before {options.holdout_end} (e.g. --calibration-end "
            f"{options.holdout_end - timedelta(days=365)}, a year before it)."
        )
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    customers, repeaters = build_summary(store, options.calibration_end)
    grid = options.grid_days or choose_grid(store)
    t_x_bin, T_bin = _binned("t_x_days", grid), _binned("T_days", grid, at_least_one=True)
    groups = store.con.execute(
        f"SELECT x, {t_x_bin} AS t_x_days, {T_bin} AS T_days, count(*) AS n FROM clv_summary s "
        "GROUP BY ALL ORDER BY ALL"
    ).fetchnumpy()
    spend_bin = SPEND_BIN if _distinct_spend(store) > MAX_GROUPS else None
    monetary = "monetary" if spend_bin is None else f"exp(round(ln(monetary) / {spend_bin}) * {spend_bin})"
    spend = store.con.execute(
        f"SELECT x, {monetary} AS monetary, count(*) AS n FROM clv_summary WHERE x > 0 AND monetary > 0 "
        "GROUP BY ALL ORDER BY ALL"
    ).fetchnumpy()
    seconds["summary"] = time.perf_counter() - started

    unit = UNIT_DAYS[options.unit]
    x = np.asarray(groups["x"], dtype=np.float64)
    t_x = np.asarray(groups["t_x_days"], dtype=np.float64) / unit
    T = np.asarray(groups["T_days"], dtype=np.float64) / unit
    started = time.perf_counter()
    model = _transaction_model(options.model, options.penalizer)
    _fit(
        model,
        f"the {options.model} purchase model",
        x,
        t_x,
        T,
        weights=np.asarray(groups["n"], dtype=np.float64),
    )
    with np.errstate(all="ignore"):
        warnings = _check_identified(
            model,
            options,
            customers,
            repeaters,
            model.conditional_probability_alive(x, t_x, T),
            model.conditional_expected_number_of_purchases_up_to_time(options.horizon_days / unit, x, t_x, T),
        )
    if spend["x"].size == 0:
        raise AnalysisError("no repeat purchase has a positive spend: the spend model has nothing to fit.")
    spend_model = GammaGammaFitter(penalizer_coef=options.penalizer)
    _fit(
        spend_model,
        "the Gamma-Gamma spend model",
        np.asarray(spend["x"], dtype=np.float64),
        np.asarray(spend["monetary"], dtype=np.float64),
        weights=np.asarray(spend["n"], dtype=np.float64),
    )
    try:
        population_mean = spend_model.expected_average_profit()
    except AnalysisError as e:
        raise AnalysisError(f"the Gamma-Gamma spend model: {e}") from e
    seconds["fit"] = time.perf_counter() - started

    started = time.perf_counter()
    expected, discounted = _expected_and_discounted(model, x, t_x, T, options, unit)
    holdout_length = 0.0
    if options.holdout_end is not None:
        holdout_length = (options.holdout_end - options.calibration_end).days / unit
        holdout_expected = model.conditional_expected_number_of_purchases_up_to_time(
            holdout_length, x, t_x, T
        )
    else:
        holdout_expected = pa.nulls(x.size, pa.float64())
    table = pa.table(
        {
            "x": groups["x"],
            "t_x_days": groups["t_x_days"],
            "T_days": groups["T_days"],
            "p_alive": model.conditional_probability_alive(x, t_x, T),
            "expected_purchases": expected,
            "discounted_purchases": discounted,
            "holdout_expected": holdout_expected,
        }
    )
    from pleasepoint_cli.store.connection import registered

    with registered(store.con, "clv_group_predictions", table):
        sp = spend_model.params_
        store.execute(
            _PREDICTIONS_SQL.format(t_x_bin=t_x_bin, T_bin=T_bin),
            {"unit": unit, "p": sp["p"], "q": sp["q"], "gamma": sp["gamma"]},
        )
    totals_row = _one(
        store,
        f"SELECT sum(expected_purchases), sum(expected_spend), sum(clv), avg(p_alive) "
        f"FROM {PREDICTIONS_TABLE}",
    )
    totals = dict(
        zip(
            ("expected_purchases", "expected_spend", "clv", "mean_p_alive"),
            (float(v) for v in totals_row),
            strict=True,
        )
    )
    if not all(np.isfinite(v) for v in totals.values()):
        raise AnalysisError(
            f"the predictions are not finite numbers ({', '.join(f'{k} {v}' for k, v in totals.items())}): "
            "the fitted models do not suit the data. Nothing was written. Rerun with a small penalty, e.g. "
            "--penalizer 0.001 (docs/clv.md)."
        )
    holdout = None
    if options.holdout_end is not None:
        holdout = _holdout(store, options, holdout_length)
    seconds["predict"] = time.perf_counter() - started
    return PredictResult(
        options=options,
        customers=customers,
        groups=int(x.size),
        repeaters=repeaters,
        params=dict(model.params_),
        log_likelihood=float(model.log_likelihood_),
        spend_customers=int(np.sum(spend["n"])),
        spend_params=dict(spend_model.params_),
        spend_log_likelihood=float(spend_model.log_likelihood_),
        population_mean_spend=float(population_mean),
        totals=totals,
        grid_days=grid,
        spend_bin=spend_bin,
        holdout=holdout,
        seconds={k: round(v, 3) for k, v in seconds.items()},
        standard_errors=dict(model.standard_errors_),
        spend_standard_errors=dict(spend_model.standard_errors_),
        warnings=warnings,
    )


def _expected_and_discounted(
    model: Any,
    x: NDArray[np.float64],
    t_x: NDArray[np.float64],
    T: NDArray[np.float64],
    options: PredictOptions,
    unit: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Expected purchases over the horizon and the same purchases discounted: the horizon is cut into
    whole months (the last one stretched or shrunk to fit), each month's expected purchases discounted at
    the annual rate to the month's end."""
    import numpy as np

    periods = max(1, round(options.horizon_days / MONTH_DAYS))
    step_days = options.horizon_days / periods
    previous = np.zeros_like(x)
    discounted = np.zeros_like(x)
    for i in range(1, periods + 1):
        cumulative = model.conditional_expected_number_of_purchases_up_to_time(
            i * step_days / unit, x, t_x, T
        )
        factor = (1.0 + options.annual_discount) ** (-(i * step_days) / YEAR_DAYS)
        discounted += (cumulative - previous) * factor
        previous = cumulative
    return previous, discounted


def _holdout(store: Store, options: PredictOptions, length: float) -> HoldoutComparison:
    store.execute(_HOLDOUT_SQL, {"end": options.calibration_end, "holdout": options.holdout_end})
    joined = f"""
        SELECT p.x, p.holdout_expected AS predicted, coalesce(h.actual, 0) AS actual
        FROM {PREDICTIONS_TABLE} p LEFT JOIN clv_holdout h USING (customer_id)"""
    customers, actual, predicted, correlation = _one(
        store, f"SELECT count(*), sum(actual), sum(predicted), corr(predicted, actual) FROM ({joined})"
    )
    zero_n, zero_actual, zero_predicted = _one(
        store, f"SELECT count(*), avg(actual), avg(predicted) FROM ({joined}) WHERE x = 0"
    )
    rows = store.tuples(f"""
        SELECT CASE WHEN x >= 7 THEN '7+' ELSE CAST(x AS VARCHAR) END AS x, count(*) AS customers,
               avg(actual) AS mean_actual, avg(predicted) AS mean_predicted
        FROM ({joined}) GROUP BY 1 ORDER BY min(x)""")
    by_frequency = [
        {"x": r[0], "customers": int(r[1]), "mean_actual": float(r[2]), "mean_predicted": float(r[3])}
        for r in rows
    ]
    assert options.holdout_end is not None
    return HoldoutComparison(
        holdout_end=options.holdout_end,
        length=length,
        customers=int(customers),
        actual_total=int(actual),
        predicted_total=float(predicted),
        correlation=None if correlation is None else float(correlation),
        zero_repeat_customers=int(zero_n),
        zero_repeat_mean_actual=None if zero_actual is None else float(zero_actual),
        zero_repeat_mean_predicted=None if zero_predicted is None else float(zero_predicted),
        by_frequency=by_frequency,
    )


def top_customers(store: Store, n: int = 10) -> list[dict[str, Any]]:
    """The n customers of highest CLV in `clv_predictions`."""
    return store.rows(
        f"""
        SELECT customer_id, x, round(t_x, 2) AS t_x, round(T, 2) AS T, round(monetary, 2) AS monetary,
               round(p_alive, 3) AS p_alive, round(expected_purchases, 3) AS expected_purchases,
               round(expected_avg_spend, 2) AS expected_avg_spend, round(clv, 2) AS clv
        FROM {PREDICTIONS_TABLE} ORDER BY clv DESC, customer_id LIMIT ?""",
        [n],
    )


_TIERS_SQL = f"""
CREATE OR REPLACE TEMP TABLE clv_tiers AS
SELECT customer_id, clv, [{", ".join(repr(t) for t in TIERS)}][min(tile) OVER (PARTITION BY clv)] AS tier
FROM (SELECT customer_id, clv, ntile(5) OVER (ORDER BY clv) AS tile FROM {PREDICTIONS_TABLE})
"""


def tier_summary(store: Store) -> list[dict[str, Any]]:
    """Customers and CLV range per tier (computing the tiers from `clv_predictions`)."""
    store.execute(_TIERS_SQL)
    return store.rows(f"""
        SELECT tier, count(*) AS customers, round(min(clv), 2) AS min_clv, round(max(clv), 2) AS max_clv,
               round(avg(clv), 2) AS mean_clv
        FROM clv_tiers GROUP BY tier
        ORDER BY list_position([{", ".join(repr(t) for t in reversed(TIERS))}], tier)""")


def write_clv_tiers(store: Store, key: str, result: PredictResult) -> AttributeChange:
    """Store each predicted customer's CLV tier as attribute `key`, and take the key off customers it was
    set on by an earlier CLV write who are no longer predicted. Call inside a transaction."""
    from pleasepoint_cli.attributes import write_attributes

    store.execute(_TIERS_SQL)
    o = result.options
    source = f"clv predict {o.model} {o.calibration_end}"
    return write_attributes(
        store,
        """
        SELECT customer_id, ?, tier FROM clv_tiers
        UNION ALL
        SELECT customer_id, key, NULL FROM customer_attributes
        WHERE key = ? AND source LIKE 'clv %' AND customer_id NOT IN (SELECT customer_id FROM clv_tiers)
        """,
        [key, key],
        source=source,
        kind="clv",
        description=f"{source}: {key} = CLV quintile tier over {o.horizon_days} days",
        spec={"key": key, **result.as_json()},
    )


def export_predictions(store: Store, path: Path) -> int:
    """Write `clv_predictions` to a CSV or Parquet file (by extension); return the rows written."""
    fmt = "PARQUET" if path.suffix.lower() == ".parquet" else "CSV, HEADER"
    if path.suffix.lower() not in (".csv", ".parquet"):
        raise ConfigError(f"--out {path}: give a .csv or .parquet file.")
    from pleasepoint_cli.outfiles import output_path

    with output_path(path) as temp:  # whole or not at all (a full disk leaves no partial file)
        literal = "'" + str(temp).replace("'", "''") + "'"
        store.tuples(
            f"COPY (SELECT * FROM {PREDICTIONS_TABLE} ORDER BY customer_id) TO {literal} (FORMAT {fmt})"
        )
    return int(_one(store, f"SELECT count(*) FROM {PREDICTIONS_TABLE}")[0])


@dataclass(frozen=True)
class PredictRequest:
    """What `clv predict` was asked: the options of the fit, plus what to show, export and write."""

    as_of: date | None = None
    calibration_end: date | None = None
    holdout_end: date | None = None
    model: ModelName = "bgnbd"
    horizon_days: int = 365
    unit: Unit = "weeks"
    annual_discount: float = 0.01
    penalizer: float = 0.0
    grid_days: int | None = None
    top: int = 10
    out: Path | None = None
    write_tier: str | None = None


@dataclass
class PredictRun:
    """`clv predict`'s outcome: the fit and predictions, the tiers, the top customers, what was exported and
    written."""

    result: PredictResult
    tiers: list[dict[str, Any]]
    leaders: list[dict[str, Any]]
    exported: int | None = None
    tier_key: str | None = None
    change: AttributeChange | None = None

    def as_json(self) -> dict[str, Any]:
        """The JSON document of `clv predict --format json` (docs/clv.md)."""
        return {
            **self.result.as_json(),
            "tiers": self.tiers,
            "tier_change": None
            if self.change is None
            else {
                "key": self.tier_key,
                "change_id": self.change.change_id,
                "values_changed": self.change.changed,
            },
        }


def run_predict(store: Store, request: PredictRequest, latest_day: date | None = None) -> PredictRun:
    """Fit, predict, summarise tiers and leaders, export and write the tier attribute, as `clv predict` does.
    `store` is an open `Store`; the calibration end is --calibration-end, else --as-of, else `latest_day`
    (default: the day of the latest order). Nothing is written unless the fit and predictions are sound."""
    from pleasepoint_cli.clv.score import latest_order_day
    from pleasepoint_cli.textutil import slugify

    day, end = request.as_of, request.calibration_end
    if day is not None and end is not None and day != end and request.holdout_end is None:
        raise ConfigError(
            "--as-of and --calibration-end differ: without --holdout they name the same day; "
            "give one of them."
        )
    options = PredictOptions(
        calibration_end=end or day or latest_day or latest_order_day(store),
        model=request.model,
        horizon_days=request.horizon_days,
        holdout_end=request.holdout_end,
        unit=request.unit,
        annual_discount=request.annual_discount,
        penalizer=request.penalizer,
        grid_days=request.grid_days,
    )
    result = predict_clv(store, options)
    run = PredictRun(
        result=result,
        tiers=tier_summary(store),
        leaders=top_customers(store, request.top) if request.top else [],
    )
    if request.out is not None:
        run.exported = export_predictions(store, request.out)
    if request.write_tier is not None:
        run.tier_key = slugify(request.write_tier)
        with store.transaction():
            run.change = write_clv_tiers(store, run.tier_key, result)
    return run
