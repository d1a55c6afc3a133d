"""Reading rules: the short forms, every kind of mistake with its path and line, and checks against the store."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from audience_oracle import Customer, Run, Shop, load
from pleasepoint_cli.audience import describe, load_audience, parse_rule, rule_to_data, validate_rule
from pleasepoint_cli.audience.model import AllRule, AttributeLeaf, BirthdayLeaf, StateLeaf
from pleasepoint_cli.errors import ConfigError, RuleError
from pleasepoint_cli.store import Store
from pleasepoint_cli.yamlio import read_yaml

EXAMPLES = Path(__file__).parent.parent / "examples" / "audiences"


def _problem(data: Any) -> str:
    with pytest.raises(RuleError) as caught:
        parse_rule(data)
    return str(caught.value)


def test_short_forms_read_as_their_long_forms() -> None:
    assert parse_rule({"state": "lost"}) == StateLeaf(state=["lost"])
    assert parse_rule({"birthday": "today"}) == parse_rule({"birthday": {"within_days": 0}})
    assert isinstance(parse_rule({"birthday": "today"}), BirthdayLeaf)
    assert parse_rule({"bought": {"category": "Plantas"}}) == parse_rule(
        {"bought": {"category": ["Plantas"]}}
    )
    rule = parse_rule({"attribute": "tier", "in": [1, True, 2.5]})
    assert isinstance(rule, AttributeLeaf) and rule.in_ == ["1", "true", "2.5"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            [{"consent": True}],
            "audience: expected a rule (a mapping such as `all: [...]` or `attribute: KEY`), got a list",
        ),
        ({"all": []}, "audience.all: `all` takes a non-empty list of rules, got a list"),
        ({"all": {"consent": True}}, "audience.all: `all` takes a non-empty list of rules, got a mapping"),
        (
            {"all": [{"consent": True}], "any": [{"consent": True}]},
            "audience.any: one rule per mapping, found 'all' and 'any'",
        ),
        ({"not": {"consent": True}, "km": 3}, "audience.km: unknown key 'km' beside `not`"),
        ({"consent": "yes"}, "audience.consent: expected true or false, got 'yes'"),
        ({"recency_days": {}}, "audience.recency_days: give at least one bound: gte, lte, gt, lt"),
        (
            {"recency_days": {"gte": -1}},
            "audience.recency_days.gte: Input should be greater than or equal to 0, got -1",
        ),
        ({"recency_days": 30}, "audience.recency_days: expected a mapping of keys to values, got 30"),
        (
            {"orders": {"gte": 1}, "lte": 3},
            "audience.lte: unknown key 'lte' beside `orders` (write `orders: {...}` as one mapping)",
        ),
        (
            {"attribute": "tier"},
            "audience: give at least one operator: equals, not_equals, in, not_in, exists",
        ),
        ({"attribute": "tier", "in": []}, "audience.in: List should have at least 1 item after validation"),
        (
            {"bought": {"category": "A", "product": "P1"}},
            "audience.bought: give exactly one of `category` or `product`",
        ),
        ({"bought": {"within_days": 3}}, "audience.bought: give exactly one of `category` or `product`"),
        (
            {"birthday": "tomorrow"},
            "audience.birthday: write `birthday: today` or `birthday: {within_days: N}`, got 'tomorrow'",
        ),
        ({"near_store": {"store": "preferred"}}, "audience.near_store: `km` is required"),
        (
            {"cluster": {"run": "x", "name": "y", "cluster": 1}},
            "audience.cluster: give the run either as `run: NAME`",
        ),
        (
            {"cluster": {"run": [1], "cluster": 1}},
            "audience.cluster.run: expected a whole number, got a list or expected text",
        ),
        (
            {"field": {"name": "email", "equals": "x"}},
            "audience.field.name: should be 'city', 'gender', 'country', 'postal_code' or 'language', got 'email'",
        ),
        (
            {"state": ["lost", "gone"]},
            "audience.state.1: should be 'active', 'inactive', 'hibernating' or 'lost', got 'gone'",
        ),
        (
            {"pattern": "monthly", "within_days": 15},
            "audience.within_days: unknown operator 'within_days' for `pattern` (did you mean 'bought_within_days'?",
        ),
    ],
)
def test_every_mistake_names_its_path_and_the_fix(data: Any, message: str) -> None:
    assert message in _problem(data)


def test_nested_mistakes_are_all_reported_with_their_lines(tmp_path: Path) -> None:
    path = tmp_path / "campaign.yaml"
    path.write_text(
        "name: x\n"
        "variants:\n"
        "  - name: a\n"
        "    audience:\n"
        "      any:\n"
        "        - state: gone\n"
        "        - not:\n"
        "            orders: {gte: 1, most: 2}\n",
        encoding="utf-8",
    )
    data, lines = read_yaml(path)
    with pytest.raises(RuleError) as caught:
        parse_rule(
            data["variants"][0]["audience"], source=path, lines=lines, prefix=("variants", 0, "audience")
        )
    assert str(caught.value).splitlines() == [
        f"{path}:6: variants.0.audience.any.0.state: should be 'active', 'inactive', 'hibernating' or 'lost', "
        "got 'gone'",
        f"{path}:8: variants.0.audience.any.1.not.orders.most: unknown operator 'most' for `orders` "
        "(use gte, lte, gt, lt)",
    ]


def test_load_audience_needs_the_audience_key(tmp_path: Path) -> None:
    path = tmp_path / "rule.yaml"
    path.write_text("name: x\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"rule.yaml:1: no top-level `audience:` key"):
        load_audience(path)


@pytest.mark.parametrize("name", ["blog_segmentation.yaml", "winback_sudaderas.yaml"])
def test_the_examples_parse_and_survive_the_round_trip(name: str) -> None:
    rule = load_audience(EXAMPLES / name)
    assert isinstance(rule, AllRule)
    assert parse_rule(rule_to_data(rule)) == rule


def test_the_winback_example_reads_as_product_md_says() -> None:
    rule = load_audience(EXAMPLES / "winback_sudaderas.yaml")
    assert isinstance(rule, AllRule)
    assert [describe(item) for item in rule.all] == [
        "cluster 3 of the latest run named 'analisis-categorias'",
        "hibernation in [inactive, hibernating]",
        "propensity_sudaderas_y_crops = high",
        "recency_days >= 182",
        "orders >= 2",
        "bought category Plantas within 90 days",
        "not (monthly pattern, bought within 15 days)",
        "within 5 km of the preferred store",
    ]


def test_validation_against_the_store_reports_every_unknown_name(store: Store) -> None:
    shop = Shop(
        customers=[Customer("a")],
        products={"P1": "Plantas"},
        stores={"T1": (40.0, -3.0)},
        attributes={("a", "hibernation"): "inactive"},
        runs=[Run(1, "categorias", datetime(2024, 1, 1))],
        assignments={(1, "a"): 1},
    )
    load(store.con, shop)
    rule = load_audience(EXAMPLES / "winback_sudaderas.yaml")
    with pytest.raises(RuleError) as caught:
        validate_rule(store, rule, source=Path("w.yaml"), lines={("audience", "all", 2, "attribute"): 13})
    problems = str(caught.value).splitlines()
    assert problems == [
        "w.yaml:1: audience.all.0.cluster.run: unknown persona run: the latest run named 'analisis-categorias' "
        "(runs, newest first: 1 'categorias'; see `pleasepoint persona list`)",
        "w.yaml:13: audience.all.2.attribute: unknown attribute 'propensity_sudaderas_y_crops' (known: "
        "hibernation); check the spelling, or set it first with `pleasepoint enrich` or `pleasepoint clv enrich`",
    ]
    validate_rule(store, parse_rule({"cluster": {"run": "categorias", "cluster": 1}}))
    with pytest.raises(
        RuleError, match=r"unknown category 'plantas' \(did you mean 'Plantas'\? known: Plantas\)"
    ):
        validate_rule(store, parse_rule({"bought": {"category": "plantas"}}))
    with pytest.raises(RuleError, match="unknown product 'P9'"):
        validate_rule(store, parse_rule({"not": {"bought": {"product": ["P1", "P9"]}}}))


def test_an_empty_store_says_what_to_do_first(store: Store) -> None:
    with pytest.raises(RuleError, match="no customer has any attribute yet"):
        validate_rule(store, parse_rule({"attribute": "x", "exists": True}))
    with pytest.raises(RuleError, match=r"no persona run exists yet: run `pleasepoint persona run` first"):
        validate_rule(store, parse_rule({"cluster": {"cluster": 1}}))
    with pytest.raises(RuleError, match="no stores loaded"):
        validate_rule(store, parse_rule({"near_store": {"store": "T1", "km": 1}}))


def test_a_campaigns_audiences_are_read_by_the_campaign_model(tmp_path: Path) -> None:
    """`campaign audience` reads a campaign file as `campaign send` does: one reader of campaign files."""
    from pleasepoint_cli.audience.files import read_audiences
    from pleasepoint_cli.campaign.model import load_campaign

    path = tmp_path / "campaign.yaml"
    head = "name: x\nsubject: Hola\naudience: {consent: true}\nvariants:\n"
    path.write_text(
        head
        + "  - name: a\n    template: a.mjml\n    audience: {state: lost}\n  - name: b\n    template: b.mjml\n",
        encoding="utf-8",
    )
    audiences, _ = read_audiences(path)  # the templates need not exist to count an audience
    campaign = load_campaign(path, check_templates=False)
    assert [a.name for a in audiences] == ["a", "b"]
    assert [a.rule for a in audiences] == [campaign.variant_rule(v) for v in campaign.variants]
    assert [p for _, p in audiences[0].parts] == [("audience",), ("variants", 0, "audience")]
    assert [p for _, p in audiences[1].parts] == [("audience",)]

    path.write_text(
        head.replace("subject", "subjet") + "  - name: a\n    template: a.mjml\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError, match=r"campaign.yaml:2: subjet"):
        read_audiences(path)  # an unknown key is refused as by every other campaign command

    path.write_text(
        head + "  - name: a\n    template: a.mjml\n    audience: {state: gone}\n"
        "  - name: b\n    template: b.mjml\n    audience: {orders: {most: 2}}\n",
        encoding="utf-8",
    )
    for read in (read_audiences, load_campaign):
        with pytest.raises(RuleError) as caught:
            read(path)
        problems = str(caught.value)
        assert "campaign.yaml:7: variants.0.audience.state" in problems
        assert "campaign.yaml:10: variants.1.audience.orders.most" in problems, "every variant's at once"
