"""Reading rules from YAML: dispatch on each mapping's head key, validate, report `file:line: path: why`."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pleasepoint_cli.audience.model import (
    ATTRIBUTE_OPERATORS,
    FIELD_OPERATORS,
    RULE_MODELS,
    AllRule,
    AnyRule,
    NotRule,
    Rule,
    RuleModel,
)
from pleasepoint_cli.errors import ConfigError, RuleError

Path_ = tuple[Any, ...]
Problem = tuple[Path_, str]

_ALLOWED_KEYS: dict[str, tuple[str, ...]] = {
    "cluster": ("run", "name", "cluster"),
    "attribute": ATTRIBUTE_OPERATORS,
    "recency_days": ("gte", "lte", "gt", "lt"),
    "orders": ("gte", "lte", "gt", "lt"),
    "spend": ("gte", "lte", "gt", "lt"),
    "age": ("gte", "lte", "gt", "lt"),
    "bought": ("category", "product", "within_days"),
    "pattern": ("bought_within_days",),
    "birthday": ("within_days",),
    "near_store": ("store", "km"),
    "field": ("name", *FIELD_OPERATORS),
    "engagement": ("opened", "clicked", "received", "within_days", "campaign", "automation", "machine_opens"),
    "last_conversion_days": ("gte", "lte", "gt", "lt"),
}
"""The keys each rule allows: beside the head key for `attribute`/`pattern`, inside its mapping otherwise."""

_SIBLING_KEYED = ("attribute", "pattern")

_TYPE_HINTS = {
    "list_type": "expected a list, e.g. ['a', 'b']",
    "int_type": "expected a whole number",
    "float_type": "expected a number",
    "bool_type": "expected true or false",
    "string_type": "expected text",
    "model_type": "expected a mapping of keys to values",
    "dict_type": "expected a mapping of keys to values",
}


def describe_path(path: Path_) -> str:
    """`("audience", "all", 2, "attribute")` -> `audience.all.2.attribute`."""
    return ".".join(str(part) for part in path) or "(top level)"


def format_problems(
    problems: Sequence[Problem], source: Path | None, lines: dict[tuple[Any, ...], int] | None
) -> str:
    """Problems as `file:line: path: message` lines (just `path: message` without a file)."""
    from pleasepoint_cli.yamlio import line_of

    out = []
    for path, message in problems:
        where = describe_path(path)
        if source is not None:
            line = line_of(lines or {}, path) or 1
            out.append(f"{source}:{line}: {where}: {message}")
        else:
            out.append(f"{where}: {message}")
    return "\n".join(out)


def parse_rule(
    data: Any,
    *,
    source: Path | None = None,
    lines: dict[tuple[Any, ...], int] | None = None,
    prefix: tuple[Any, ...] = ("audience",),
) -> Rule:
    """Validate rule data (from YAML at key path `prefix`); raise RuleError listing every problem."""
    problems: list[Problem] = []
    rule = _parse(data, prefix, problems)
    if problems or rule is None:
        raise RuleError(format_problems(problems or [(prefix, "empty rule")], source, lines))
    return rule


def load_audience(path: Path) -> Rule:
    """The rule under the top-level `audience:` key of a YAML file."""
    from pleasepoint_cli.yamlio import read_yaml

    data, lines = read_yaml(path)
    if not isinstance(data, dict) or "audience" not in data:
        raise ConfigError(
            f"{path}:1: no top-level `audience:` key. Add one holding the rule (see docs/audiences.md)."
        )
    return parse_rule(data["audience"], source=path, lines=lines, prefix=("audience",))


def _suggest(word: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, known, n=1)
    return f"did you mean '{close[0]}'? " if close else ""


def _parse(node: Any, path: Path_, problems: list[Problem]) -> Rule | None:
    if not isinstance(node, dict):
        problems.append(
            (
                path,
                f"expected a rule (a mapping such as `all: [...]` or `attribute: KEY`), got {_shown(node)}",
            )
        )
        return None
    heads = [key for key in node if key in RULE_MODELS]
    known = ", ".join(RULE_MODELS)
    if not heads:
        for key in node:
            problems.append(
                (
                    (*path, key),
                    f"unknown rule '{key}' ({_suggest(str(key), list(RULE_MODELS))}known: {known})",
                )
            )
        if not node:
            problems.append((path, f"empty rule: give one of {known}"))
        return None
    if len(heads) > 1:
        listed = " and ".join(f"'{h}'" for h in heads)
        problems.append(
            (
                (*path, heads[1]),
                f"one rule per mapping, found {listed}: put them in separate "
                "items of an `all:` (or `any:`) list",
            )
        )
        return None
    head = heads[0]
    if head in ("all", "any"):
        return _parse_list(node, head, path, problems)
    if head == "not":
        extra = [key for key in node if key != "not"]
        for key in extra:
            problems.append(((*path, key), f"unknown key '{key}' beside `not` (it takes one rule)"))
        inner = _parse(node["not"], (*path, "not"), problems)
        if inner is None or extra:
            return None
        return NotRule.model_validate({"not": inner})
    return _parse_leaf(head, node, path, problems)


def _parse_list(node: dict[Any, Any], head: str, path: Path_, problems: list[Problem]) -> Rule | None:
    items = node[head]
    ok = True
    for key in node:
        if key != head:
            problems.append(((*path, key), f"unknown key '{key}' beside `{head}` (it takes a list of rules)"))
            ok = False
    if not isinstance(items, list) or not items:
        problems.append(((*path, head), f"`{head}` takes a non-empty list of rules, got {_shown(items)}"))
        return None
    children = [_parse(item, (*path, head, i), problems) for i, item in enumerate(items)]
    if not ok or any(child is None for child in children):
        return None
    model = AllRule if head == "all" else AnyRule
    return model.model_validate({head: children})


def _as_text(value: Any) -> Any:
    """A YAML scalar as the text it is compared with (true -> 'true', 3 -> '3'); other values unchanged."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def _normalize(head: str, node: dict[Any, Any]) -> dict[Any, Any]:
    """Accept the documented short forms: `state: lost`, `birthday: today`, `category: X`, numbers as text."""
    node = dict(node)

    def texts(mapping: dict[Any, Any]) -> dict[Any, Any]:
        mapping = dict(mapping)
        for key in ("equals", "not_equals"):
            if key in mapping:
                mapping[key] = _as_text(mapping[key])
        for key in ("in", "not_in"):
            if isinstance(mapping.get(key), list):
                mapping[key] = [_as_text(v) for v in mapping[key]]
        return mapping

    value = node[head]
    if head == "attribute":
        node = texts(node)
    elif head == "field" and isinstance(value, dict):
        node[head] = texts(value)
    elif head == "state" and isinstance(value, str):
        node[head] = [value]
    elif head == "birthday" and value == "today":
        node[head] = {"within_days": 0}
    elif head == "bought" and isinstance(value, dict):
        node[head] = {
            k: [v] if k in ("category", "product") and isinstance(v, str) else v for k, v in value.items()
        }
    return node


def _parse_leaf(head: str, node: dict[Any, Any], path: Path_, problems: list[Problem]) -> Rule | None:
    model = RULE_MODELS[head]
    if head == "birthday" and node[head] != "today" and not isinstance(node[head], dict):
        problems.append(
            (
                (*path, head),
                f"write `birthday: today` or `birthday: {{within_days: N}}`, got {_shown(node[head])}",
            )
        )
        return None
    data = _normalize(head, node)
    try:
        return model.model_validate(data)  # type: ignore[return-value]
    except ValidationError as e:
        problems.extend(_leaf_problems(e, head, model, node, path))
        return None


def _resolve(node: Any, loc: tuple[Any, ...]) -> int:
    """How many leading parts of `loc` name real keys or items of the input data."""
    depth = 0
    for part in loc:
        in_mapping = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_mapping or in_list:
            node = node[part]
        else:
            break
        depth += 1
    return depth


def _leaf_problems(
    error: ValidationError, head: str, model: type[RuleModel], node: dict[Any, Any], path: Path_
) -> list[Problem]:
    found: dict[Path_, list[str]] = {}
    for item in error.errors():
        loc = tuple(item["loc"])
        kind = item["type"]
        depth = _resolve(node, loc)
        where = loc[:depth]
        if kind == "extra_forbidden":
            key = loc[-1]
            allowed = _ALLOWED_KEYS.get(head, ())
            if head in _SIBLING_KEYED and len(loc) == 1:
                message = (
                    f"unknown operator '{key}' for `{head}` ({_suggest(str(key), allowed)}"
                    f"use {', '.join(allowed)})"
                )
            elif len(loc) == 1:
                message = f"unknown key '{key}' beside `{head}` (write `{head}: {{...}}` as one mapping)"
            else:
                message = (
                    f"unknown operator '{key}' for `{head}` ({_suggest(str(key), allowed)}"
                    f"use {', '.join(allowed)})"
                )
        elif kind == "missing":
            where = loc[:-1] if depth == len(loc) - 1 else where
            message = f"`{loc[-1]}` is required"
        elif kind in ("literal_error", "enum"):
            message = (
                f"{item['msg'].replace('Input should be', 'should be')}, got {_shown(item.get('input'))}"
            )
        elif kind.startswith("value_error") or kind == "assertion_error":
            message = str(item["msg"]).removeprefix("Value error, ")
        elif kind in _TYPE_HINTS:
            message = f"{_TYPE_HINTS[kind]}, got {_shown(item.get('input'))}"
        else:
            message = f"{item['msg']}, got {_shown(item.get('input'))}"
        messages = found.setdefault((*path, *where), [])
        if message not in messages:
            messages.append(message)
    return [(where, " or ".join(messages)) for where, messages in found.items()]


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    return repr(value)
