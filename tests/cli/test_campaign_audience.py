"""`pleasepoint campaign audience FILE`: the funnel in every format, campaign variants, and every error path."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from audience_data import EXAMPLE, blog_shop
from audience_oracle import Run, load
from pleasepoint_cli.cli import PleasepointGroup
from pleasepoint_cli.cli._common import AppState
from pleasepoint_cli.cli.audience_cmd import register
from pleasepoint_cli.store import open_store

AS_OF = ["--as-of", "2024-09-01"]


def _app() -> typer.Typer:
    """The root app with a campaign sub-app holding only `audience`, as cli/campaign.py registers it."""
    root = typer.Typer(cls=PleasepointGroup, pretty_exceptions_enable=False)

    @root.callback()
    def _root(ctx: typer.Context) -> None:
        ctx.obj = AppState(db=None, config=None, lock_timeout=5.0, quiet=False)

    campaign = typer.Typer()
    register(campaign)
    root.add_typer(campaign, name="campaign")
    return root


@pytest.fixture
def blog_db(db_path: Path) -> Path:
    """The blog's hand-made shop, a persona run and two attributes, as the test's $PLEASEPOINT_DB."""
    shop = blog_shop()
    shop.runs = [Run(1, "analisis-categorias", datetime(2024, 8, 1))]
    shop.assignments = {(1, c.customer_id): 1 + i % 2 for i, c in enumerate(shop.customers)}
    shop.attributes = {("C01", "hibernation"): "active", ("C02", "segmento"): "familias"}
    with open_store(db_path) as store:
        load(store.con, shop)
    return db_path


def _invoke(runner: CliRunner, *args: str) -> tuple[int, str]:
    result = runner.invoke(_app(), ["campaign", "audience", *args])
    return result.exit_code, result.output


def test_the_funnel_as_json_has_every_step_and_nothing_else_on_stdout(
    runner: CliRunner, blog_db: Path
) -> None:
    result = runner.invoke(_app(), ["campaign", "audience", str(EXAMPLE), *AS_OF, "--format", "json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["as_of"] == "2024-09-01" and document["guards"] is True
    [only] = document["funnels"]
    assert only["variant"] is None and only["customers"] == 3
    assert [(s["step"], s["customers"], s["removed"]) for s in only["steps"]] == [
        ("all customers", 15, 0),
        ("email consent", 13, 2),
        ("valid email", 11, 2),
        ("not suppressed", 10, 1),
        ("not erased", 9, 1),
        ("email consent", 9, 0),
        ("contactable", 9, 0),
        ("not (state lost)", 8, 1),
        ("not (monthly pattern, bought within 15 days)", 7, 1),
        ("within 5 km of the preferred store", 3, 4),
    ]
    assert "3 customers in the audience" in result.stderr


def test_the_table_and_csv_show_the_same_steps(runner: CliRunner, blog_db: Path) -> None:
    code, output = _invoke(runner, str(EXAMPLE), *AS_OF)
    assert code == 0, output
    assert re.search(r"│ within 5 km of the preferred store\s+│\s+3 │\s+4 │", output), output
    result = runner.invoke(_app(), ["campaign", "audience", str(EXAMPLE), *AS_OF, "-f", "csv"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "variant,step,customers,removed"
    assert lines[-1] == ",within 5 km of the preferred store,3,4"


def test_no_guards_gives_the_analysis_audience(runner: CliRunner, blog_db: Path) -> None:
    result = runner.invoke(
        _app(), ["campaign", "audience", str(EXAMPLE), *AS_OF, "--no-guards", "-f", "json"]
    )
    assert result.exit_code == 0, result.output
    steps = json.loads(result.stdout)["funnels"][0]["steps"]
    assert [s["customers"] for s in steps] == [15, 13, 10, 9, 8, 4]


def test_a_campaign_gets_one_funnel_per_variant_and_each_customer_only_its_first(
    runner: CliRunner, blog_db: Path, tmp_path: Path
) -> None:
    campaign = tmp_path / "newsletter.yaml"
    campaign.write_text(
        "name: Newsletter\n"
        "subject: Hola\n"
        "products: {slots: 3}\n"
        "audience:\n"
        "  all:\n"
        "    - not: {state: lost}\n"
        "variants:\n"
        "  - name: primeros\n"
        "    template: a.mjml\n"
        "    audience: {cluster: {run: latest, cluster: 1}}\n"
        "  - name: resto\n"
        "    template: b.mjml\n"
        "    audience: {consent: true}\n",
        encoding="utf-8",
    )
    result = runner.invoke(_app(), ["campaign", "audience", str(campaign), *AS_OF, "-f", "json"])
    assert result.exit_code == 0, result.output
    first, rest = json.loads(result.stdout)["funnels"]
    assert first["variant"] == "primeros"
    assert [s["step"] for s in first["steps"]][-2:] == ["not (state lost)", "cluster 1 of the latest run"]
    # Guarded and not lost: C01-C03, C11-C15 (8); cluster 1 holds every other customer: C01, C03, C11, C13, C15.
    assert first["customers"] == 5
    assert [s["step"] for s in rest["steps"]][-3:] == [
        "not (state lost)",
        "email consent",
        "not in an earlier variant",
    ]
    assert [s["customers"] for s in rest["steps"]][-3:] == [8, 8, 3]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "audience:\n  all:\n    - consent: true\n    - attribute: hibernaton\n      equals: active\n",
            "rule.yaml:4: audience.all.1.attribute: unknown attribute 'hibernaton' (did you mean 'hibernation'? "
            "known: hibernation, segmento)",
        ),
        (
            "audience:\n  all:\n    - attribute: hibernation\n      equal: active\n",
            "rule.yaml:4: audience.all.0.equal: unknown operator 'equal' for `attribute` (did you mean 'equals'? "
            "use equals, not_equals, in, not_in, exists, gte, lte, gt, lt)",
        ),
        (
            "audience:\n  any:\n    - recency_days: {gte: 182}\n    - recency: {gte: 1}\n",
            "rule.yaml:4: audience.any.1.recency: unknown rule 'recency' (did you mean 'recency_days'?",
        ),
        (
            "audience:\n  all:\n    - orders: {gte: two}\n",
            "rule.yaml:3: audience.all.0.orders.gte: expected a whole number, got 'two'",
        ),
        (
            "audience:\n  all:\n    - attribute: hibernation\n      in: active\n",
            "rule.yaml:4: audience.all.0.in: expected a list, e.g. ['a', 'b'], got 'active'",
        ),
        (
            "audience:\n  not:\n    pattern: monthy\n",
            "rule.yaml:3: audience.not.pattern: should be 'frequent', 'weekly', 'fortnightly', 'monthly', "
            "'quarterly' or 'occasional', got 'monthy'",
        ),
        (
            "audience:\n  cluster: {run: 7, cluster: 1}\n",
            "rule.yaml:2: audience.cluster.run: unknown persona run: run 7 (runs, newest first: "
            "1 'analisis-categorias'; see `pleasepoint persona list`)",
        ),
        (
            "audience:\n  cluster: {run: latest, name: analisis-categorias, cluster: 9}\n",
            "rule.yaml:2: audience.cluster.cluster: run 1 'analisis-categorias' has no cluster 9 (clusters 1..2)",
        ),
        (
            "audience:\n  near_store: {store: T7, km: 5}\n",
            "rule.yaml:2: audience.near_store.store: unknown store 'T7' (known: T1, T2); or use `preferred` or `any`",
        ),
        (
            "audience:\n  all:\n    - consent: true\n   - contactable: true\n",
            "rule.yaml:4: invalid YAML",
        ),
        ("name: sin audiencia\n", "rule.yaml:1: no top-level `audience:` key"),
    ],
    ids=[
        "unknown-attribute",
        "unknown-operator",
        "unknown-rule",
        "bad-number",
        "bad-list",
        "unknown-pattern",
        "unknown-run",
        "unknown-cluster",
        "unknown-store",
        "malformed-yaml",
        "no-audience",
    ],
)
def test_a_bad_rule_exits_1_naming_the_file_the_line_and_the_fix(
    runner: CliRunner, blog_db: Path, tmp_path: Path, text: str, expected: str
) -> None:
    (tmp_path / "rule.yaml").write_text(text, encoding="utf-8")
    result = runner.invoke(_app(), ["campaign", "audience", "rule.yaml", *AS_OF])
    assert result.exit_code == 1, result.output
    assert expected in result.stderr.replace("\n", ""), result.stderr
    assert result.stdout == ""


def test_every_problem_of_a_file_is_reported_at_once(
    runner: CliRunner, blog_db: Path, tmp_path: Path
) -> None:
    (tmp_path / "rule.yaml").write_text(
        "audience:\n  all:\n    - attribute: nope\n      equals: x\n    - orders: {gtee: 1}\n"
        "    - near_store: {km: -1}\n",
        encoding="utf-8",
    )
    result = runner.invoke(_app(), ["campaign", "audience", "rule.yaml"])
    assert result.exit_code == 1
    stderr = result.stderr.replace("\n", "")
    assert "rule.yaml:5: audience.all.1.orders.gtee: unknown operator 'gtee'" in stderr
    assert "rule.yaml:6: audience.all.2.near_store.km: Input should be greater than 0, got -1" in stderr


def test_a_missing_file_exits_1(runner: CliRunner, blog_db: Path) -> None:
    code, output = _invoke(runner, "nowhere.yaml")
    assert code == 1 and "nowhere.yaml: no such file." in output


def test_labels_with_brackets_are_printed_as_written(
    runner: CliRunner, blog_db: Path, tmp_path: Path
) -> None:
    (tmp_path / "rule.yaml").write_text(
        "audience:\n  all:\n    - attribute: hibernation\n      in: [active, lost]\n", encoding="utf-8"
    )
    code, output = _invoke(runner, "rule.yaml", *AS_OF, "--no-guards")
    assert code == 0, output
    assert "hibernation in [active, lost]" in output


@pytest.mark.parametrize(
    ("update", "said"),
    [
        ("UPDATE customers SET email_consent = false", "no customer has given email consent"),
        ("UPDATE customers SET email = NULL", "no customer with consent has a valid email"),
    ],
)
def test_a_shop_without_consent_or_emails_is_told_so_plainly(
    runner: CliRunner, blog_db: Path, update: str, said: str
) -> None:
    """The funnel shows zero after a guard; the command also says why, in the JSON and on stderr."""
    with open_store(blog_db) as store:
        store.execute(update)
    result = runner.invoke(_app(), ["campaign", "audience", str(EXAMPLE), *AS_OF, "-f", "json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert [w for w in document["warnings"] if said in w], document["warnings"]
    assert said in result.stderr
    clean = runner.invoke(_app(), ["campaign", "audience", str(EXAMPLE), *AS_OF, "--no-guards", "-f", "json"])
    assert json.loads(clean.stdout)["warnings"] == []
