"""The options of a persona run: one pydantic model for the YAML file (`--config persona.yaml`) and the flags.

Flags override the file; both go through the same validation, so a bad k says the same thing either way.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pleasepoint_cli.config import YamlDate
from pleasepoint_cli.errors import ConfigError

Unit = Literal["freq", "count", "spend", "binary"]
Transform = Literal["none", "log", "standardize", "minmax", "sqrt"]

MIN_K = 2
MAX_K = 20
DEFAULT_K = 5
DEFAULT_SEED = 42

_K_RANGE = re.compile(r"^\s*(\d+)\s*-\s*(\d+)\s*$")
_FLAGS = {
    "name": "--name",
    "clusters": "--clusters",
    "attributes": "--attribute",
    "unit": "--unit",
    "transform": "--transform",
    "since": "--since",
    "until": "--until",
    "as_of": "--as-of",
    "where": "--where",
    "audience": "--audience",
    "rfm": "--rfm",
    "seed": "--seed",
    "auto_k": "--auto-k",
}
_HINTS = {
    "clusters": f" (k is the number of clusters: {MIN_K} to {MAX_K}; 3 to 9 is a good start)",
    "unit": " (freq, count, spend or binary)",
    "transform": " (none, log, standardize, minmax or sqrt)",
}


def parse_k_range(text: str) -> tuple[int, int]:
    """`3-9` -> (3, 9), both within 2..20 and the first below the second."""
    match = _K_RANGE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a range of k: write it as LOW-HIGH, e.g. 3-9")
    low, high = int(match[1]), int(match[2])
    if not MIN_K <= low < high <= MAX_K:
        raise ValueError(f"{text!r}: need {MIN_K} <= LOW < HIGH <= {MAX_K}, e.g. 3-9")
    return low, high


class PersonaOptions(BaseModel):
    """Everything that decides a persona run's result; stored whole in the run's manifest. Strict types,
    as every YAML model (dates also from the manifest's ISO strings)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: Annotated[str, Field(min_length=1)] | None = None
    clusters: Annotated[int, Field(ge=MIN_K, le=MAX_K)] = DEFAULT_K
    attributes: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)] = ["category"]
    unit: Unit = "freq"
    transform: Transform | None = None
    since: YamlDate | None = None
    until: YamlDate | None = None
    as_of: YamlDate | None = None
    where: dict[str, str] = {}
    audience: dict[str, Any] | None = None
    """A rule of the audience language (docs/audiences.md), kept as data so the manifest reproduces it."""
    rfm: bool = False
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] = DEFAULT_SEED
    auto_k: str | None = None

    @field_validator("attributes")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("an attribute is listed twice")
        return value

    @field_validator("where", mode="before")
    @classmethod
    def _text_values(cls, value: Any) -> Any:
        # YAML reads `email_consent: true` or `postal_code: 08008` as non-strings; compare them as text.
        if isinstance(value, dict):
            return {str(k): (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in value.items()}
        return value

    @field_validator("auto_k")
    @classmethod
    def _k_range(cls, value: str | None) -> str | None:
        if value is not None:
            low, high = parse_k_range(value)
            return f"{low}-{high}"
        return value

    @model_validator(mode="after")
    def _window(self) -> PersonaOptions:
        if self.since and self.until and self.since > self.until:
            raise ValueError(f"since ({self.since}) is after until ({self.until})")
        return self

    @property
    def k_range(self) -> tuple[int, int] | None:
        return parse_k_range(self.auto_k) if self.auto_k else None

    @property
    def effective_transform(self) -> str:
        """`none` for one attribute, `standardize` for several (their scales differ), unless given."""
        if self.transform is not None:
            return self.transform
        return "none" if len(self.attributes) == 1 else "standardize"

    @property
    def effective_name(self) -> str:
        return self.name or f"{'+'.join(self.attributes)}-{self.unit}"


def parse_where(pairs: list[str]) -> dict[str, str]:
    """`--where city=Madrid` flags -> {"city": "Madrid"}; the last one of a key wins."""
    where: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--where {pair!r}: write it as KEY=VALUE, e.g. --where city=Madrid")
        where[key.strip()] = value.strip()
    return where


def resolve_options(config: Path | None, flags: dict[str, Any]) -> PersonaOptions:
    """The run's options: the YAML file (if any), then every flag that was given (not None, not empty)."""
    from pleasepoint_cli.yamlio import load_model, read_yaml

    data: dict[str, Any] = {}
    if config is not None:
        load_model(config, PersonaOptions)  # every problem of the file, as file:line
        raw, _ = read_yaml(config)
        data = dict(raw or {})
    given = {key: value for key, value in flags.items() if value is not None and value != [] and value != {}}
    data.update(given)
    try:
        return PersonaOptions.model_validate(data)
    except ValidationError as e:
        problems = []
        for item in e.errors():
            field = str(item["loc"][0]) if item["loc"] else ""
            where = _FLAGS.get(field, field) if field in given else f"{config}: {field}"
            message = item["msg"].removeprefix("Value error, ")
            problems.append(f"{where}: {message}{_HINTS.get(field, '')}")
        raise ConfigError("\n".join(problems)) from e
