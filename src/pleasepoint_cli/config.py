"""pleasepoint.yaml: the project settings, and where the database is (flag > environment > file > default)."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pleasepoint_cli.automate.marketing import MarketingSettings
from pleasepoint_cli.delivery.settings import DeliverySettings
from pleasepoint_cli.tracking.settings import TrackingSettings

CONFIG_FILE = "pleasepoint.yaml"
DB_ENV = "PLEASEPOINT_DB"
DEFAULT_DB = "pleasepoint.duckdb"


class Strict(BaseModel):
    """Base for every YAML model: unknown keys are errors, not silently ignored, and types are strict (YAML
    gives native ones): `true` is not the number 1, `"5"` is not 5 (a whole number still fills a float)."""

    model_config = ConfigDict(extra="forbid", strict=True)


YamlDate = Annotated[date, Field(strict=False)]
"""A date in a strict model: a YAML date (2024-05-01), or the same written as a quoted string."""


class ShopSettings(Strict):
    name: str = "Mi tienda"
    url: str = "https://tienda.example"
    timezone: str = "Europe/Madrid"
    currency: str = "EUR"
    language: Literal["es", "en"] = "es"
    """The language of the starter templates and greetings, and of customers whose language is unknown."""


class StateThresholds(Strict):
    """Recency states in days since the last purchase (the guide's defaults)."""

    active_below: Annotated[int, Field(gt=0)] = 182
    inactive_below: Annotated[int, Field(gt=0)] = 365
    hibernating_below: Annotated[int, Field(gt=0)] = 730

    @model_validator(mode="after")
    def _ordered(self) -> StateThresholds:
        if not self.active_below < self.inactive_below < self.hibernating_below:
            raise ValueError("thresholds must increase: active_below < inactive_below < hibernating_below")
        return self


class LevelThresholds(Strict):
    """Propensity index (cluster value / population value) at or above which a cell is high / medium.

    A cell whose cluster value is zero is `zero`; anything else below `medium` is `low`.
    """

    high: Annotated[float, Field(gt=0)] = 1.25
    medium: Annotated[float, Field(gt=0)] = 0.75
    min_support: Annotated[float, Field(ge=0, le=1)] = 0.05
    """A variable is `high` or `medium` in a cluster, and can name it, only when at least this share of the
    cluster's customers bought it; below, its level is `low` (one buyer cannot make 821 customers "high")."""
    tiny_cluster: Annotated[float, Field(ge=0, lt=1)] = 0.01
    """`persona run` warns about a cluster holding less than this share of the customers."""

    @model_validator(mode="after")
    def _ordered(self) -> LevelThresholds:
        if not self.medium < self.high:
            raise ValueError("medium must be below high")
        return self


class IngestSettings(Strict):
    """Which dates an export may hold (docs/ingest.md): none before `earliest_date`, and none (but an offer's
    dates) later than `future_days` after the load; a value outside is a bad row like any other."""

    earliest_date: YamlDate = date(1900, 1, 1)
    future_days: Annotated[int, Field(ge=0)] = 2
    # The order statuses that count as purchases (docs/ingest.md: completed, cancelled, returned, pending);
    # an order line without a status counts as completed.
    purchase_statuses: Annotated[list[str], Field(min_length=1)] = ["completed"]
    # How to read a date such as 3/2/2017 when no value of the column tells (no day above 12).
    date_order: Literal["dmy", "mdy"] | None = None


class EmailSettings(Strict):
    from_address: str = "Mi tienda <hola@tienda.example>"
    reply_to: str | None = None
    signature: str = "El equipo de Mi tienda"
    unsubscribe_base_url: str = "https://tienda.example/baja"


class Settings(Strict):
    """The whole of pleasepoint.yaml."""

    db: str | None = None
    shop: ShopSettings = ShopSettings()
    states: StateThresholds = StateThresholds()
    levels: LevelThresholds = LevelThresholds()
    ingest: IngestSettings = IngestSettings()
    email: EmailSettings = EmailSettings()
    delivery: DeliverySettings = DeliverySettings()
    marketing: MarketingSettings = MarketingSettings()
    tracking: TrackingSettings = TrackingSettings()


def load_settings(path: Path | None) -> Settings:
    """Read pleasepoint.yaml (the given path, else ./pleasepoint.yaml if present, else defaults)."""
    from pleasepoint_cli.yamlio import load_model

    if path is None:
        candidate = Path(CONFIG_FILE)
        if not candidate.exists():
            return Settings()
        path = candidate
    return load_model(path, Settings)


def resolve_db(flag: Path | None, settings: Settings, config_path: Path | None) -> Path:
    """The database path: --db, then $PLEASEPOINT_DB, then `db:` of the config, then ./pleasepoint.duckdb."""
    if flag is not None:
        return flag
    if env := os.environ.get(DB_ENV):
        return Path(env)
    if settings.db:
        base = config_path.parent if config_path is not None else Path()
        return base / settings.db
    return Path(DEFAULT_DB)
