"""Column mapping: which source column feeds each canonical field, from `--map` flags or a mapping YAML."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pleasepoint_cli.config import Strict
from pleasepoint_cli.errors import ConfigError, InputDataError
from pleasepoint_cli.ingest.entities import Entity


class FormatSection(Strict):
    """How the export's text is written (any key left out is detected)."""

    delimiter: str | None = None
    encoding: str | None = None
    decimal: Literal[".", ","] = "."
    date_format: str | None = None
    date_order: Literal["dmy", "mdy"] | None = None
    header: bool = True
    names: list[str] = []


class EntitySection(Strict):
    """The mapping for one entity: canonical field -> source column, and constant defaults."""

    columns: dict[str, str] = {}
    defaults: dict[str, str] = {}
    keep_extra_columns: bool = True
    order_id_from: Literal["customer_day"] | None = None


class MappingFile(Strict):
    """A mapping YAML: an optional format block and a section per entity."""

    format: FormatSection = FormatSection()
    orders: EntitySection | None = None
    customers: EntitySection | None = None
    products: EntitySection | None = None
    stores: EntitySection | None = None


def parse_map_flags(flags: list[str]) -> dict[str, str]:
    """`--map canonical=source` flags as a dictionary."""
    mapping: dict[str, str] = {}
    for flag in flags:
        canonical, sep, source = flag.partition("=")
        if not sep or not canonical.strip() or not source.strip():
            raise ConfigError(
                f"--map {flag!r}: expected canonical=SOURCE_COLUMN, e.g. --map order_id=InvoiceNo."
            )
        mapping[canonical.strip()] = source.strip()
    return mapping


def load_mapping(path: Path) -> MappingFile:
    """Read and validate a mapping YAML."""
    from pleasepoint_cli.yamlio import load_model

    return load_model(path, MappingFile)


def resolve_columns(
    entity: Entity, source_columns: list[str], explicit: dict[str, str], path: Path
) -> dict[str, str]:
    """Canonical field -> source column: explicit mappings first, then same-name columns (any case).

    Raises InputDataError naming the file when a mapping points at a missing column or a required field
    has no column.
    """
    for canonical in explicit:
        if canonical not in entity.field_names:
            raise ConfigError(
                f"{entity.name}: {canonical!r} is not a field of {entity.name}. "
                f"Known fields: {', '.join(entity.field_names)}."
            )
    by_lower = {c.lower(): c for c in source_columns}
    resolved: dict[str, str] = {}
    for f in entity.fields:
        if f.name in explicit:
            wanted = explicit[f.name]
            actual = wanted if wanted in source_columns else by_lower.get(wanted.lower())
            if actual is None:
                raise InputDataError(
                    f"{path}: column {wanted!r} (mapped to {f.name}) is not in the file. "
                    f"Columns found: {', '.join(source_columns)}. Fix the mapping."
                )
            resolved[f.name] = actual
        elif (same := by_lower.get(f.name.lower())) is not None:
            resolved[f.name] = same
    return resolved
