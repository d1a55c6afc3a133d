"""The automation YAML: a pydantic model (unknown keys rejected, strict numbers and booleans, `file:line`
errors) and its loading into an `Automation` with its trigger, caps, audience and email resolved.

```yaml
name: recuperar-inactivos-sudaderas
active: true
campaign: ../campaigns/recuperacion.yaml   # or `subject:` + `template:` inline (paths relative to this file)
trigger:
  type: schedule          # schedule | welcome | post_purchase | birthday | winback | first_purchase_anniversary
  cron: "0 9 * * *"
  start: 2026-12-01
  timezone: Europe/Madrid
frequency:
  per_customer: 1/month   # once | N/day | N/week | N/month (rolling 24 h / 7 d / 30 d)
  on_cap: skip            # skip (recorded `capped`) | defer (recorded `deferred`, sent when the cap allows)
audience: {all: [...]}
catch_up: latest          # latest | all | none
grace: 10m
max_lateness: 1d
```
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, StrictBool, StrictInt, ValidationError, field_validator, model_validator

from pleasepoint_cli.automate.catchup import DEFAULT_GRACE, DEFAULT_MAX_LATENESS, CatchUpPolicy
from pleasepoint_cli.automate.marketing import Cap, parse_cap
from pleasepoint_cli.automate.slots import Schedule, bound_instant, parse_cron
from pleasepoint_cli.config import Strict
from pleasepoint_cli.errors import ConfigError

if TYPE_CHECKING:
    from pleasepoint_cli.audience.model import Rule
    from pleasepoint_cli.campaign.model import Campaign
    from pleasepoint_cli.store.connection import Store

TriggerType = Literal[
    "schedule", "welcome", "post_purchase", "birthday", "winback", "first_purchase_anniversary"
]
SYSTEM_TRIGGERS = ("welcome", "post_purchase", "birthday", "winback", "first_purchase_anniversary")
DEFAULT_MAX_AGE = timedelta(days=2)
DEFAULT_HOUR = 9
"""The local hour of a date-based system email (birthday, win-back, anniversary) when `hour:` is not given."""
_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|min|h|d|w)\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "min": "minutes", "h": "hours", "d": "days", "w": "weeks"}
Name = Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]


def parse_duration(value: Any) -> timedelta:
    """`90s`, `10m`, `2h`, `1d`, `1w`; ValueError otherwise (a bare number is ambiguous: say the unit)."""
    if isinstance(value, timedelta):
        return value
    match = _DURATION.match(value) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"expected a duration such as 90s, 10m, 2h, 1d or 1w, got {value!r}")
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise ValueError(f"unknown time zone {name!r}; use an IANA name such as Europe/Madrid") from e


class TriggerModel(Strict):
    """When the automation fires: a cron schedule, or a system event (a customer's own date)."""

    type: TriggerType
    cron: str | None = None
    start: date | datetime | None = None
    end: date | datetime | None = None
    timezone: str | None = None
    days: StrictInt | None = None
    hour: Annotated[StrictInt, Field(ge=0, le=23)] | None = None
    from_state: str | None = None
    to_state: str | None = None
    max_age: str | None = None

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None:
            parse_cron(value)  # CronError is a ValueError: reported with the line
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value is not None:
            _zone(value)
        return value

    @field_validator("max_age")
    @classmethod
    def _max_age(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @model_validator(mode="after")
    def _fields_of_type(self) -> TriggerModel:
        from pleasepoint_cli.recency import STATES

        kind = self.type
        allowed = {
            "schedule": {"cron", "start", "end", "timezone"},
            "welcome": {"days", "hour", "start", "end", "timezone", "max_age"},
            "post_purchase": {"days", "hour", "start", "end", "timezone", "max_age"},
            "birthday": {"days", "hour", "start", "end", "timezone", "max_age"},
            "winback": {"from_state", "to_state", "hour", "start", "end", "timezone", "max_age"},
            "first_purchase_anniversary": {"days", "hour", "start", "end", "timezone", "max_age"},
        }[kind]
        given = {name for name in self.model_fields_set if name != "type"}
        if extra := sorted(given - allowed):
            raise ValueError(f"a {kind} trigger takes {', '.join(sorted(allowed))}; not {', '.join(extra)}")
        if kind == "schedule" and self.cron is None:
            raise ValueError("a schedule trigger needs `cron:` (e.g. '0 9 * * *' for every day at 09:00)")
        if kind == "post_purchase" and (self.days is None or self.days < 0):
            raise ValueError("a post_purchase trigger needs `days:` >= 0 (days after the order)")
        if kind in ("welcome",) and self.days is not None and self.days < 0:
            raise ValueError("`days:` of a welcome trigger is a delay after the first order: >= 0")
        if kind == "winback":
            states = list(STATES)
            if self.to_state not in states[1:]:
                raise ValueError(f"a winback trigger needs `to_state:` one of {', '.join(states[1:])}")
            before = states[states.index(self.to_state) - 1]
            if self.from_state is not None and self.from_state != before:
                raise ValueError(
                    f"recency states follow each other as days pass ({' -> '.join(states)}): a customer enters "
                    f"{self.to_state!r} only from {before!r}; set from_state: {before} or leave it out"
                )
        return self


class FrequencyModel(Strict):
    per_customer: str | None = None
    on_cap: Literal["skip", "defer"] = "skip"

    @field_validator("per_customer", mode="before")
    @classmethod
    def _cap(cls, value: object) -> object:
        if value is not None:
            if not isinstance(value, str):
                raise ValueError(f"expected `once` or N/day, N/week or N/month (e.g. 1/month), got {value!r}")
            parse_cap(value, allow_once=True)
        return value


class AutomationModel(Strict):
    """The whole automation file."""

    name: Name
    active: StrictBool = True
    campaign: str | None = None
    subject: str | None = None
    preheader: str | None = None
    template: str | None = None
    from_: str | None = Field(default=None, alias="from")
    trigger: TriggerModel
    frequency: FrequencyModel = FrequencyModel()
    audience: Any = None
    catch_up: Literal["latest", "all", "none"] = "latest"
    grace: str | None = None
    max_lateness: str | None = None
    description: str | None = None

    @field_validator("grace", "max_lateness")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @field_validator("subject", "preheader", "from_")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        if value is not None and ("\r" in value or "\n" in value):
            raise ValueError("must be one line (no line breaks): it becomes an email header")
        return value

    @model_validator(mode="after")
    def _email(self) -> AutomationModel:
        inline = self.template is not None or self.subject is not None
        if self.campaign is not None and inline:
            raise ValueError(
                "give either `campaign:` (a campaign file) or `subject:` + `template:`, not both"
            )
        if self.campaign is None and (self.template is None or self.subject is None):
            raise ValueError("give `campaign:` (a campaign file) or both `subject:` and `template:`")
        if self.campaign is not None and (self.preheader is not None or self.from_ is not None):
            raise ValueError("`preheader:` and `from:` belong in the campaign file when `campaign:` is used")
        return self


@dataclass(frozen=True)
class Automation:
    """A loaded automation: its file, model, the email (as a campaign), its audience and resolved policies."""

    path: Path
    model: AutomationModel
    campaign: Campaign
    """The email as a campaign; its audience is the campaign file's and the automation's, both."""
    audience: Rule | None
    zone: ZoneInfo
    lines: dict[tuple[Any, ...], int] = field(default_factory=dict)
    source_campaign: Campaign | None = None
    """The campaign file as loaded (for checking its own rules against its own lines), if `campaign:` is used."""

    def rule_problems(self, store: Store) -> list[str]:
        """The audience rules checked against the store (unknown attributes, runs, stores...), `file:line`."""
        from pleasepoint_cli.audience.validate import validate_rule
        from pleasepoint_cli.errors import PleasepointError

        problems: list[str] = []
        if self.audience is not None:
            try:
                validate_rule(store, self.audience, source=self.path, lines=self.lines, prefix=("audience",))
            except PleasepointError as e:
                problems += str(e).splitlines()
        if self.source_campaign is not None:
            from pleasepoint_cli.campaign.validate import _rule_problems

            problems += _rule_problems(store, self.source_campaign)
        return problems

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def trigger(self) -> TriggerModel:
        return self.model.trigger

    @property
    def is_schedule(self) -> bool:
        return self.model.trigger.type == "schedule"

    @property
    def schedule(self) -> Schedule:
        """The cron schedule (schedule triggers only)."""
        trigger = self.model.trigger
        assert trigger.cron is not None
        return Schedule(parse_cron(trigger.cron), self.zone, self.start, self.end)

    @property
    def start(self) -> datetime | None:
        return bound_instant(self.model.trigger.start, self.zone, end=False)

    @property
    def end(self) -> datetime | None:
        return bound_instant(self.model.trigger.end, self.zone, end=True)

    @property
    def policy(self) -> CatchUpPolicy:
        model = self.model
        return CatchUpPolicy(
            mode=model.catch_up,
            grace=parse_duration(model.grace) if model.grace else DEFAULT_GRACE,
            max_lateness=parse_duration(model.max_lateness) if model.max_lateness else DEFAULT_MAX_LATENESS,
        )

    @property
    def max_age(self) -> timedelta:
        value = self.model.trigger.max_age
        return parse_duration(value) if value else DEFAULT_MAX_AGE

    @property
    def cap(self) -> Cap | None:
        value = self.model.frequency.per_customer
        return None if value is None else parse_cap(value, allow_once=True)

    @property
    def on_cap(self) -> Literal["skip", "defer"]:
        return self.model.frequency.on_cap

    def where(self, *loc: Any) -> str:
        from pleasepoint_cli.yamlio import line_of

        return f"{self.path}:{line_of(self.lines, loc) or 1}"

    def describe_trigger(self) -> str:
        t = self.model.trigger
        if t.type == "schedule":
            return f"schedule {t.cron} ({self.zone.key})"
        if t.type == "winback":
            return f"winback -> {t.to_state}"
        if t.type == "post_purchase":
            return f"post_purchase +{t.days}d"
        return t.type


def email_campaign(
    path: Path, model: AutomationModel, audience: Rule | None, lines: dict[Any, int]
) -> Campaign:
    """The email an automation sends, as a campaign: its campaign file (its audience ANDed with the
    automation's), or one built from the inline subject and template."""
    from pleasepoint_cli.audience.model import AllRule
    from pleasepoint_cli.audience.parse import parse_rule
    from pleasepoint_cli.campaign.model import Campaign, CampaignModel, Variant, load_campaign
    from pleasepoint_cli.textutil import slugify
    from pleasepoint_cli.yamlio import line_of

    def where(*loc: Any) -> str:
        return f"{path}:{line_of(lines, loc) or 1}: {'.'.join(str(p) for p in loc)}"

    if model.campaign is not None:
        campaign_path = (path.parent / model.campaign).resolve()
        if not campaign_path.is_file():
            raise ConfigError(
                f"{where('campaign')}: no such campaign file {model.campaign!r} (looked for {campaign_path}); "
                "paths are relative to the automation file."
            )
        campaign = load_campaign(campaign_path)
        if audience is None:
            return campaign
        combined = audience if campaign.audience is None else AllRule(all=[campaign.audience, audience])
        from dataclasses import replace

        return replace(campaign, audience=combined)
    assert model.template is not None and model.subject is not None
    template = (path.parent / model.template).resolve()
    if not template.is_file():
        raise ConfigError(
            f"{where('template')}: no such template file {model.template!r} (looked for {template}); "
            "template paths are relative to the automation file."
        )
    rule = audience if audience is not None else parse_rule({"consent": True}, source=path, lines=lines)
    data: dict[str, Any] = {"name": model.name, "subject": model.subject, "template": model.template}
    if model.preheader is not None:
        data["preheader"] = model.preheader
    if model.from_ is not None:
        data["from"] = model.from_
    campaign_model = CampaignModel.model_validate(data)
    variant = Variant(
        index=0,
        name=model.name,
        template=template,
        subject=model.subject,
        subject_where=where("subject"),
        preheader=model.preheader or "",
        preheader_where=where("preheader"),
        audience=None,
    )
    return Campaign(
        path=path,
        model=campaign_model,
        slug=slugify(model.name, "-"),
        audience=rule,
        variants=(variant,),
        lines=lines,
    )


def load_automation(path: Path, *, shop_timezone: str = "Europe/Madrid") -> Automation:
    """Read and check an automation file: keys, trigger, caps, audience rules and the email's files."""
    from pleasepoint_cli.audience.parse import parse_rule
    from pleasepoint_cli.yamlio import read_yaml, validation_problems

    raw, lines = read_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}:1: expected a mapping of keys to values at the top level.")
    try:
        model = AutomationModel.model_validate(raw)
    except ValidationError as e:
        raise ConfigError("\n".join(validation_problems(e, path, lines))) from e
    audience = None
    if model.audience is not None:
        audience = parse_rule(model.audience, source=path, lines=lines, prefix=("audience",))
    campaign = email_campaign(path, model, audience, lines)
    zone = _zone(model.trigger.timezone or shop_timezone)
    source = None
    if model.campaign is not None:
        from pleasepoint_cli.campaign.model import load_campaign

        source = load_campaign((path.parent / model.campaign).resolve())
    return Automation(
        path=path,
        model=model,
        campaign=campaign,
        audience=audience,
        zone=zone,
        lines=lines,
        source_campaign=source,
    )


@dataclass(frozen=True)
class LoadedAutomations:
    """Every automation file of a folder: those that loaded, and the problems of those that did not."""

    automations: list[Automation]
    problems: dict[Path, str]


def automation_files(directory: Path) -> list[Path]:
    return sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]) if directory.is_dir() else []


def load_automations(directory: Path, *, shop_timezone: str) -> LoadedAutomations:
    """Load every `*.yaml` of the folder; a bad file is reported, never stops the others. Names must be unique."""
    from pleasepoint_cli.errors import PleasepointError

    loaded: list[Automation] = []
    problems: dict[Path, str] = {}
    seen: dict[str, Path] = {}
    for path in automation_files(directory):
        try:
            automation = load_automation(path, shop_timezone=shop_timezone)
        except PleasepointError as e:
            problems[path] = str(e)
            continue
        if (other := seen.get(automation.name)) is not None:
            problems[path] = (
                f"{automation.where('name')}: name: {automation.name!r} is already the name of {other}; "
                "the ledger keys sends by name, so names must be unique."
            )
            continue
        seen[automation.name] = path
        loaded.append(automation)
    return LoadedAutomations(loaded, problems)
