"""Column mapping: which source column feeds each canonical field, from `--map` flags or a mapping YAML."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pleasepoint_cli.config import Strict
from pleasepoint_cli.errors import ConfigError
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
    # A DuckDB SELECT over files as the source (relational exports); paths relative to the mapping file.
    sql: str | None = None


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

    mapping = load_model(path, MappingFile)
    check_mapping_fields(path, mapping)
    return mapping


def _squeezed(name: str) -> str:
    return re.sub(r"[\s_\-.]+", "", name.lower())


def closest(name: str, candidates: list[str]) -> str | None:
    """The candidate most like `name` (case, spaces and underscores aside), or None when none is close."""
    import difflib

    by_squeezed = {_squeezed(c): c for c in candidates}
    if (same := by_squeezed.get(_squeezed(name))) is not None:
        return same
    found = difflib.get_close_matches(_squeezed(name), list(by_squeezed), n=1, cutoff=0.6)
    return by_squeezed[found[0]] if found else None


def did_you_mean(name: str, candidates: list[str]) -> str:
    """` (did you mean 'X'?)` for the closest candidate, or ''."""
    near = closest(name, candidates)
    return f" (did you mean {near!r}?)" if near is not None and near != name else ""


def resolve_columns(
    entity: Entity, source_columns: list[str], explicit: dict[str, str], path: Path
) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Canonical field -> source column: explicit mappings first, then same-name columns (any case); and the
    mappings that point at a column the file does not have, as (field, column) pairs (reported by the caller
    with every other missing column at once)."""
    for canonical in explicit:
        if canonical not in entity.field_names:
            raise ConfigError(
                f"{entity.name}: {canonical!r} is not a field of {entity.name}"
                f"{did_you_mean(canonical, list(entity.field_names))}. "
                f"Known fields: {', '.join(entity.field_names)}."
            )
    by_lower = {c.lower(): c for c in source_columns}
    resolved: dict[str, str] = {}
    unresolved: list[tuple[str, str]] = []
    for f in entity.fields:
        if f.name in explicit:
            wanted = explicit[f.name]
            actual = wanted if wanted in source_columns else by_lower.get(wanted.lower())
            if actual is None:
                unresolved.append((f.name, wanted))
            else:
                resolved[f.name] = actual
        elif (same := by_lower.get(f.name.lower())) is not None:
            resolved[f.name] = same
    return resolved, unresolved


def check_mapping_fields(path: Path, mapping: MappingFile) -> None:
    """A mapping YAML's column and default keys must be canonical fields: a typo is named with file:line."""
    from pleasepoint_cli.ingest.entities import ENTITIES
    from pleasepoint_cli.yamlio import line_of, read_yaml

    problems: list[str] = []
    index: dict[tuple[object, ...], int] | None = None
    for name, entity in ENTITIES.items():
        section = getattr(mapping, name)
        if section is None:
            continue
        for part in ("columns", "defaults"):
            for key in getattr(section, part):
                if key in entity.field_names:
                    continue
                if index is None:
                    index = read_yaml(path)[1]
                line = line_of(index, (name, part, key)) or 1
                problems.append(
                    f"{path}:{line}: {name}.{part}: {key!r} is not a field of {name}"
                    f"{did_you_mean(key, list(entity.field_names))}; known fields: "
                    f"{', '.join(entity.field_names)}"
                )
    if problems:
        raise ConfigError("\n".join(problems))
