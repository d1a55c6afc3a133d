"""The audience rule language as pydantic models: `all`/`any`/`not` nodes and one model per leaf.

The YAML shape of every model is its field layout (aliases for the Python keywords `in` and `not`), so
`rule_to_data(parse_rule(data)) == data` up to the normal forms documented in docs/audiences.md.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class RuleModel(BaseModel):
    """Base of every rule model: strict types (YAML gives native ones), unknown keys are errors, immutable."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)


Count = Annotated[int, Field(ge=0)]
Text = Annotated[str, Field(min_length=1)]
TextList = Annotated[list[Text], Field(min_length=1)]
Values = Annotated[list[str], Field(min_length=1)]

PatternName = Literal["frequent", "weekly", "fortnightly", "monthly", "quarterly", "occasional"]
StateName = Literal["active", "inactive", "hibernating", "lost"]
FieldName = Literal["city", "gender", "country", "postal_code", "language"]

PATTERN_GAPS: dict[str, tuple[float | None, bool, float | None, bool]] = {
    "frequent": (None, False, 4.0, False),
    "weekly": (4.0, True, 10.0, False),
    "fortnightly": (10.0, True, 20.0, False),
    "monthly": (20.0, True, 40.0, True),
    "quarterly": (40.0, False, 120.0, True),
    "occasional": (120.0, False, None, False),
}
"""Median gap in days between distinct purchase days: (low, low inclusive, high, high inclusive)."""

PATTERN_MIN_DAYS = 3
"""A purchase pattern needs at least this many distinct purchase days (two gaps)."""


def _at_least_one(model: BaseModel, names: tuple[str, ...], what: str) -> None:
    if all(getattr(model, name) is None for name in names):
        shown = ", ".join(name.removesuffix("_") for name in names)
        raise ValueError(f"give at least one {what}: {shown}")


class IntRange(RuleModel):
    """Whole-number bounds; every bound given must hold."""

    gte: Count | None = None
    lte: Count | None = None
    gt: Count | None = None
    lt: Count | None = None

    @model_validator(mode="after")
    def _some(self) -> IntRange:
        _at_least_one(self, ("gte", "lte", "gt", "lt"), "bound")
        return self


class NumberRange(RuleModel):
    """Numeric bounds; every bound given must hold."""

    gte: float | None = None
    lte: float | None = None
    gt: float | None = None
    lt: float | None = None

    @model_validator(mode="after")
    def _some(self) -> NumberRange:
        _at_least_one(self, ("gte", "lte", "gt", "lt"), "bound")
        return self


# --- Leaves ----------------------------------------------------------------------------------------------


class ClusterRef(RuleModel):
    """A persona cluster: `run` is `latest`, a run id or a run name; `name` narrows `latest` to that name."""

    run: int | Text = "latest"
    name: Text | None = None
    cluster: Annotated[int, Field(ge=1)]

    @model_validator(mode="after")
    def _one_name(self) -> ClusterRef:
        if isinstance(self.run, str) and self.run != "latest" and self.name is not None:
            raise ValueError(
                "give the run either as `run: NAME` or as `run: latest` with `name: NAME`, not both"
            )
        return self


class ClusterLeaf(RuleModel):
    cluster: ClusterRef


ATTRIBUTE_OPERATORS = ("equals", "not_equals", "in", "not_in", "exists", "gte", "lte", "gt", "lt")


class AttributeLeaf(RuleModel):
    """A customer attribute compared as text (equals, in...) or as a number (gte, lte, gt, lt)."""

    attribute: Text
    equals: str | None = None
    not_equals: str | None = None
    in_: Values | None = Field(default=None, alias="in")
    not_in: Values | None = None
    exists: bool | None = None
    gte: float | None = None
    lte: float | None = None
    gt: float | None = None
    lt: float | None = None

    @model_validator(mode="after")
    def _some(self) -> AttributeLeaf:
        _at_least_one(
            self, ("equals", "not_equals", "in_", "not_in", "exists", "gte", "lte", "gt", "lt"), "operator"
        )
        return self


class RecencyLeaf(RuleModel):
    """Days since the last purchase."""

    recency_days: IntRange


class OrdersLeaf(RuleModel):
    """Distinct orders with a purchase line."""

    orders: IntRange


class SpendLeaf(RuleModel):
    """Net spend: the sum of line amounts, returns included."""

    spend: NumberRange


class AgeLeaf(RuleModel):
    """Age in whole years on the as-of date."""

    age: IntRange


class BoughtSpec(RuleModel):
    category: TextList | None = None
    product: TextList | None = None
    within_days: Count | None = None

    @model_validator(mode="after")
    def _one_target(self) -> BoughtSpec:
        if (self.category is None) == (self.product is None):
            raise ValueError("give exactly one of `category` or `product`")
        return self


class BoughtLeaf(RuleModel):
    bought: BoughtSpec


class PatternLeaf(RuleModel):
    """A purchase pattern by median gap between purchase days, optionally with a recent purchase."""

    pattern: PatternName
    bought_within_days: Count | None = None


class BirthdayWindow(RuleModel):
    within_days: Annotated[int, Field(ge=0, le=366)]


class BirthdayLeaf(RuleModel):
    """The birthday falls within the next `within_days` days (0 = today)."""

    birthday: BirthdayWindow


class NearStoreSpec(RuleModel):
    store: Text = "preferred"
    km: Annotated[float, Field(gt=0)]


class NearStoreLeaf(RuleModel):
    """Great-circle distance from the customer to a store (`preferred`, `any`, or a store id)."""

    near_store: NearStoreSpec


class ConsentLeaf(RuleModel):
    consent: bool


class ContactableLeaf(RuleModel):
    contactable: bool


class StateLeaf(RuleModel):
    """Recency state (thresholds from the `states:` settings); several states mean any of them."""

    state: Annotated[list[StateName], Field(min_length=1)]


FIELD_OPERATORS = ("equals", "not_equals", "in", "not_in", "exists")


class FieldSpec(RuleModel):
    name: FieldName
    equals: str | None = None
    not_equals: str | None = None
    in_: Values | None = Field(default=None, alias="in")
    not_in: Values | None = None
    exists: bool | None = None

    @model_validator(mode="after")
    def _some(self) -> FieldSpec:
        _at_least_one(self, ("equals", "not_equals", "in_", "not_in", "exists"), "operator")
        return self


class FieldLeaf(RuleModel):
    """A customer column (city, gender, country, postal_code, language) compared as text."""

    field: FieldSpec


class EngagementSpec(RuleModel):
    """Email engagement from the events of the operational store: exactly one of `opened`, `clicked`
    (true: at least one; false: none) or `received` (how many marketing emails were sent), optionally within
    the last `within_days` days and for one campaign or automation. Machine opens (privacy proxies that load
    every image on arrival) never count as opens unless `machine_opens: true`."""

    opened: bool | None = None
    clicked: bool | None = None
    received: IntRange | None = None
    within_days: Count | None = None
    campaign: Text | None = None
    automation: Text | None = None
    machine_opens: bool | None = None

    @model_validator(mode="after")
    def _one_measure(self) -> EngagementSpec:
        given = [n for n in ("opened", "clicked", "received") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of `opened`, `clicked` or `received`")
        if self.campaign is not None and self.automation is not None:
            raise ValueError("give `campaign` or `automation`, not both")
        if self.machine_opens is not None and self.opened is None:
            raise ValueError("`machine_opens` goes with `opened`")
        return self


class EngagementLeaf(RuleModel):
    engagement: EngagementSpec


class ConversionLeaf(RuleModel):
    """Days since the last order placed within `tracking.attribution_days` after a click on one of our emails."""

    last_conversion_days: IntRange


# --- Nodes -----------------------------------------------------------------------------------------------


class AllRule(RuleModel):
    all: Annotated[list[Rule], Field(min_length=1)]


class AnyRule(RuleModel):
    any: Annotated[list[Rule], Field(min_length=1)]


class NotRule(RuleModel):
    not_: Rule = Field(alias="not")


Leaf = (
    ClusterLeaf
    | AttributeLeaf
    | RecencyLeaf
    | OrdersLeaf
    | SpendLeaf
    | AgeLeaf
    | BoughtLeaf
    | PatternLeaf
    | BirthdayLeaf
    | NearStoreLeaf
    | ConsentLeaf
    | ContactableLeaf
    | StateLeaf
    | FieldLeaf
    | EngagementLeaf
    | ConversionLeaf
)
Rule = AllRule | AnyRule | NotRule | Leaf

for _model in (AllRule, AnyRule, NotRule):
    _model.model_rebuild()

RULE_MODELS: dict[str, type[RuleModel]] = {
    "all": AllRule,
    "any": AnyRule,
    "not": NotRule,
    "cluster": ClusterLeaf,
    "attribute": AttributeLeaf,
    "recency_days": RecencyLeaf,
    "orders": OrdersLeaf,
    "spend": SpendLeaf,
    "age": AgeLeaf,
    "bought": BoughtLeaf,
    "pattern": PatternLeaf,
    "birthday": BirthdayLeaf,
    "near_store": NearStoreLeaf,
    "consent": ConsentLeaf,
    "contactable": ContactableLeaf,
    "state": StateLeaf,
    "field": FieldLeaf,
    "engagement": EngagementLeaf,
    "last_conversion_days": ConversionLeaf,
}
"""Each rule's head key (the key that says which rule a YAML mapping is) and its model."""


def rule_to_data(rule: Rule) -> Any:
    """The YAML-ready data of a rule (what `parse_rule` reads back into an equal rule)."""
    return rule.model_dump(by_alias=True, exclude_none=True, mode="json")


def combine_rules(*rules: Rule | None) -> Rule | None:
    """Rules that must all hold, as one: a campaign's audience and a variant's (items of an `all` are
    flattened, so each stays a step of the funnel). None when no rule is given."""
    given = [rule for rule in rules if rule is not None]
    if len(given) <= 1:
        return given[0] if given else None
    return AllRule(
        all=[item for rule in given for item in (rule.all if isinstance(rule, AllRule) else [rule])]
    )
