"""The campaign YAML: a pydantic model (unknown keys rejected, `file:line: field: message` errors) and its
loading into a `Campaign` with parsed audience rules and template paths resolved beside the YAML."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from pleasepoint_cli.config import Strict, YamlDate
from pleasepoint_cli.errors import ConfigError

if TYPE_CHECKING:
    from pleasepoint_cli.audience.model import Rule
    from pleasepoint_cli.config import Settings

Text = Annotated[str, Field(min_length=1)]


def _one_line(value: str | None) -> str | None:
    if value is not None and ("\r" in value or "\n" in value):
        raise ValueError("must be one line (no line breaks): it becomes an email header")
    return value


class OfferWindow(Strict):
    """The campaign window: products whose offer period overlaps it are candidates."""

    from_: YamlDate | None = Field(default=None, alias="from")
    to: YamlDate | None = None

    @model_validator(mode="after")
    def _ordered(self) -> OfferWindow:
        if self.from_ and self.to and self.to < self.from_:
            raise ValueError("`to` is before `from`")
        return self


class CandidatesModel(Strict):
    """Which products may be recommended: on offer (on the as-of date or in a window) and/or listed ids."""

    on_offer: bool | OfferWindow | None = None
    product_ids: list[Text] = []


class RegularModel(Strict):
    """When a customer "buys regularly": in >= min_orders orders and >= min_share of their orders."""

    by: Literal["product", "category"] = "product"
    min_orders: Annotated[int, Field(ge=1)] = 2
    min_share: Annotated[float, Field(ge=0, le=1)] = 0.25


class HabitualModel(Strict):
    """When a cluster buys a category habitually: its profile level, or its propensity index at least this."""

    level: Literal["high", "medium", "low"] = "high"
    min_propensity: Annotated[float, Field(gt=0)] = 1.0


class ProductsModel(Strict):
    """The recommended products block (the blog's slots)."""

    candidates: CandidatesModel = CandidatesModel()
    slots: Annotated[int, Field(ge=1, le=12)] = 3
    exclude_bought_within_days: Annotated[int, Field(ge=0)] = 30
    regular: RegularModel = RegularModel()
    habitual: HabitualModel = HabitualModel()
    fill: bool = True
    seed: str | None = None


class UtmModel(Strict):
    """Link tracking parameters added to every link of the HTML (utm_campaign defaults to the slug)."""

    source: Text = "pleasepoint"
    medium: Text = "email"
    campaign: Text | None = None
    content: Text | None = None
    term: Text | None = None


class SalutationForms(Strict):
    male: str | None = None
    female: str | None = None
    other: str | None = None


class VariantModel(Strict):
    """One email of the campaign with its own template and audience; the first that matches wins."""

    name: Text
    template: Text
    subject: Text | None = None
    preheader: str | None = None
    audience: Any = None

    @field_validator("subject", "preheader")
    @classmethod
    def _header_line(cls, value: str | None) -> str | None:
        return _one_line(value)


class CampaignModel(Strict):
    """The whole campaign file."""

    name: Text
    subject: Text
    preheader: str = ""
    from_: Text | None = Field(default=None, alias="from")
    reply_to: Text | None = None
    template: Text | None = None
    variants: Annotated[list[VariantModel], Field(min_length=1)] | None = None
    audience: Any = None
    products: ProductsModel = ProductsModel()
    signature: str | None = None
    utm: UtmModel | None = None
    run: int | Text = "latest"
    salutations: dict[str, SalutationForms] | None = None

    @field_validator("name", "subject", "preheader", "from_", "reply_to")
    @classmethod
    def _header_line(cls, value: str | None) -> str | None:
        return _one_line(value)

    @model_validator(mode="after")
    def _template_or_variants(self) -> CampaignModel:
        if (self.template is None) == (self.variants is None):
            raise ValueError("give either `template:` (one email) or `variants:` (several), not both")
        if self.variants is not None:
            names = [v.name for v in self.variants]
            if len(set(names)) != len(names):
                raise ValueError("variant names must be unique")
        return self


@dataclass(frozen=True)
class Variant:
    """One email of a loaded campaign: its template file, subject and its own audience (if any)."""

    index: int
    name: str
    template: Path
    subject: str
    subject_where: str
    preheader: str
    preheader_where: str
    audience: Rule | None


@dataclass(frozen=True)
class Campaign:
    """A campaign file, validated: model, slug, the variants (one when `template:` is used) and audience."""

    path: Path
    model: CampaignModel
    slug: str
    audience: Rule | None
    variants: tuple[Variant, ...]
    lines: dict[tuple[Any, ...], int] = field(default_factory=dict)
    """The line of every key path of the YAML, for errors found after loading (rules against the store)."""

    def variant_rule(self, variant: Variant) -> Rule:
        """The audience of one variant: the campaign's rule and the variant's, both."""
        from pleasepoint_cli.audience.model import combine_rules

        rule = combine_rules(self.audience, variant.audience)
        assert rule is not None, "the model requires an audience for every variant"
        return rule

    def utm_params(self) -> dict[str, str]:
        """The utm_* query parameters (empty without a `utm:` block)."""
        if self.model.utm is None:
            return {}
        utm = self.model.utm
        values = {
            "utm_source": utm.source,
            "utm_medium": utm.medium,
            "utm_campaign": utm.campaign or self.slug,
            "utm_content": utm.content,
            "utm_term": utm.term,
        }
        return {key: value for key, value in values.items() if value}

    def salutation_table(self) -> dict[str, dict[str, str]]:
        """The default salutations with the campaign's overrides applied per language."""
        from pleasepoint_cli.content.context import DEFAULT_SALUTATIONS

        table = {language: dict(forms) for language, forms in DEFAULT_SALUTATIONS.items()}
        for language, forms in (self.model.salutations or {}).items():
            merged = table.setdefault(language.lower(), {"male": "", "female": "", "other": ""})
            merged.update({k: v for k, v in forms.model_dump().items() if v is not None})
        return table

    def from_address(self, settings: Settings) -> str:
        return self.model.from_ or settings.email.from_address

    def reply_to(self, settings: Settings) -> str | None:
        return self.model.reply_to or settings.email.reply_to

    def signature(self, settings: Settings) -> str:
        return self.model.signature if self.model.signature is not None else settings.email.signature


def load_campaign(path: Path, *, check_templates: bool = True) -> Campaign:
    """Read and check a campaign file: keys, audience rules and template files, each error with its line.

    Every rule's problems are reported at once. `check_templates=False` reads a campaign for its audiences
    only (`campaign audience`): its template files need not exist yet.
    """
    from pleasepoint_cli.audience.parse import parse_rule
    from pleasepoint_cli.errors import RuleError
    from pleasepoint_cli.textutil import slugify
    from pleasepoint_cli.yamlio import line_of, read_yaml, validation_problems

    raw, lines = read_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}:1: expected a mapping of keys to values at the top level.")
    try:
        model = CampaignModel.model_validate(raw)
    except ValidationError as e:
        raise ConfigError("\n".join(validation_problems(e, path, lines))) from e

    def where(*loc: Any) -> str:
        return f"{path}:{line_of(lines, loc) or 1}: {'.'.join(str(part) for part in loc)}"

    problems: list[str] = []

    def parse(data: Any, prefix: tuple[Any, ...]) -> Rule | None:
        try:
            return parse_rule(data, source=path, lines=lines, prefix=prefix)
        except RuleError as e:
            problems.extend(str(e).splitlines())
            return None

    audience = parse(model.audience, ("audience",)) if model.audience is not None else None
    specs: list[tuple[tuple[Any, ...], str, str, str | None, str | None, Any]]
    if model.variants is None:
        assert model.template is not None
        specs = [(("template",), model.name, model.template, None, None, None)]
    else:
        specs = [
            (("variants", i, "template"), v.name, v.template, v.subject, v.preheader, v.audience)
            for i, v in enumerate(model.variants)
        ]
    rules = [
        parse(rule_data, ("variants", index, "audience")) if rule_data is not None else None
        for index, (*_, rule_data) in enumerate(specs)
    ]
    if problems:
        raise RuleError("\n".join(problems))
    variants = []
    for index, (template_loc, name, template, subject, preheader, _) in enumerate(specs):
        template_path = (path.parent / template).resolve()
        if check_templates and not template_path.is_file():
            raise ConfigError(
                f"{where(*template_loc)}: no such template file {template!r} (looked for {template_path}); "
                "template paths are relative to the campaign file."
            )
        rule = rules[index]
        if audience is None and rule is None:
            raise ConfigError(
                f"{where(*template_loc[:-1]) if model.variants else f'{path}:1'}: no audience. Give the "
                "campaign an `audience:` (and/or each variant one); `consent: true` means every customer "
                "who may be mailed."
            )
        base = ("variants", index) if model.variants is not None else ()
        variants.append(
            Variant(
                index=index,
                name=name,
                template=template_path,
                subject=subject or model.subject,
                subject_where=where(*base, "subject") if subject else where("subject"),
                preheader=preheader if preheader is not None else model.preheader,
                preheader_where=where(*base, "preheader") if preheader is not None else where("preheader"),
                audience=rule,
            )
        )
    return Campaign(
        path=path,
        model=model,
        slug=slugify(model.name, "-"),
        audience=audience,
        variants=tuple(variants),
        lines=lines,
    )
