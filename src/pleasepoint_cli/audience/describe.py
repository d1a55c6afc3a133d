"""Short human labels for rules: the funnel's step names."""

from __future__ import annotations

from collections.abc import Sequence

from pleasepoint_cli.audience.model import (
    AgeLeaf,
    AllRule,
    AnyRule,
    AttributeLeaf,
    BirthdayLeaf,
    BoughtLeaf,
    ClusterLeaf,
    ClusterRef,
    ConsentLeaf,
    ContactableLeaf,
    ConversionLeaf,
    EngagementLeaf,
    FieldLeaf,
    IntRange,
    NearStoreLeaf,
    NotRule,
    NumberRange,
    OrdersLeaf,
    PatternLeaf,
    RecencyLeaf,
    Rule,
    SpendLeaf,
    StateLeaf,
)

_SYMBOLS = (("gte", ">="), ("lte", "<="), ("gt", ">"), ("lt", "<"))


def _number(value: float) -> str:
    return f"{value:g}"


def _bounds(name: str, bounds: IntRange | NumberRange) -> str:
    parts = [
        f"{name} {symbol} {_number(getattr(bounds, op))}"
        for op, symbol in _SYMBOLS
        if getattr(bounds, op) is not None
    ]
    return " and ".join(parts)


def _listed(values: Sequence[str]) -> str:
    return "[" + ", ".join(values) + "]"


def _text_ops(
    name: str,
    equals: str | None,
    not_equals: str | None,
    in_: Sequence[str] | None,
    not_in: Sequence[str] | None,
    exists: bool | None,
) -> list[str]:
    parts = []
    if equals is not None:
        parts.append(f"{name} = {equals}")
    if not_equals is not None:
        parts.append(f"{name} != {not_equals}")
    if in_ is not None:
        parts.append(f"{name} in {_listed(in_)}")
    if not_in is not None:
        parts.append(f"{name} not in {_listed(not_in)}")
    if exists is not None:
        parts.append(f"{name} {'set' if exists else 'not set'}")
    return parts


def describe_run(ref: ClusterRef) -> str:
    """How a cluster rule names its run: `run 3`, `the latest run`, `the latest run named 'x'`."""
    if isinstance(ref.run, int):
        return f"run {ref.run}"
    name = ref.name if ref.run == "latest" else ref.run
    return f"the latest run named '{name}'" if name is not None else "the latest run"


def describe(rule: Rule) -> str:
    """A one-line label of what the rule selects."""
    if isinstance(rule, AllRule):
        return "all of (" + "; ".join(describe(r) for r in rule.all) + ")"
    if isinstance(rule, AnyRule):
        return "any of (" + "; ".join(describe(r) for r in rule.any) + ")"
    if isinstance(rule, NotRule):
        return f"not ({describe(rule.not_)})"
    if isinstance(rule, ClusterLeaf):
        return f"cluster {rule.cluster.cluster} of {describe_run(rule.cluster)}"
    if isinstance(rule, AttributeLeaf):
        parts = _text_ops(rule.attribute, rule.equals, rule.not_equals, rule.in_, rule.not_in, rule.exists)
        numeric = _bounds(
            rule.attribute, NumberRange.model_construct(gte=rule.gte, lte=rule.lte, gt=rule.gt, lt=rule.lt)
        )
        return " and ".join([*parts, numeric] if numeric else parts)
    if isinstance(rule, RecencyLeaf):
        return _bounds("recency_days", rule.recency_days)
    if isinstance(rule, OrdersLeaf):
        return _bounds("orders", rule.orders)
    if isinstance(rule, SpendLeaf):
        return _bounds("spend", rule.spend)
    if isinstance(rule, AgeLeaf):
        return _bounds("age", rule.age)
    if isinstance(rule, BoughtLeaf):
        spec = rule.bought
        what = (
            f"category {', '.join(spec.category)}"
            if spec.category
            else f"product {', '.join(spec.product or [])}"
        )
        when = f" within {spec.within_days} days" if spec.within_days is not None else ""
        return f"bought {what}{when}"
    if isinstance(rule, PatternLeaf):
        recent = (
            f", bought within {rule.bought_within_days} days" if rule.bought_within_days is not None else ""
        )
        return f"{rule.pattern} pattern{recent}"
    if isinstance(rule, BirthdayLeaf):
        days = rule.birthday.within_days
        return "birthday today" if days == 0 else f"birthday within {days} days"
    if isinstance(rule, NearStoreLeaf):
        store = rule.near_store.store
        target = {"preferred": "the preferred store", "any": "any store"}.get(store, f"store {store}")
        return f"within {_number(rule.near_store.km)} km of {target}"
    if isinstance(rule, ConsentLeaf):
        return "email consent" if rule.consent else "no email consent"
    if isinstance(rule, ContactableLeaf):
        return "contactable" if rule.contactable else "not contactable"
    if isinstance(rule, StateLeaf):
        return "state " + " or ".join(rule.state)
    if isinstance(rule, FieldLeaf):
        field = rule.field
        return " and ".join(
            _text_ops(field.name, field.equals, field.not_equals, field.in_, field.not_in, field.exists)
        )
    if isinstance(rule, EngagementLeaf):
        engaged = rule.engagement
        if engaged.received is not None:
            what = _bounds("emails received", engaged.received)
        else:
            verb = "opened" if engaged.opened is not None else "clicked"
            yes = engaged.opened if engaged.opened is not None else engaged.clicked
            what = f"{verb} an email" if yes else f"never {verb} an email"
            if engaged.machine_opens:
                what += " (machine opens included)"
        if engaged.campaign:
            what += f" of campaign {engaged.campaign}"
        if engaged.automation:
            what += f" of automation {engaged.automation}"
        if engaged.within_days is not None:
            what += f" within {engaged.within_days} days"
        return what
    if isinstance(rule, ConversionLeaf):
        return _bounds("last_conversion_days", rule.last_conversion_days)
    raise TypeError(f"not a rule: {rule!r}")
