"""Loading YAML definitions into pydantic models, with every problem reported as `file:line: field: message`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from pleasepoint_cli.errors import ConfigError

Model = TypeVar("Model", bound=BaseModel)


def _line_index(node: Any, path: tuple[Any, ...], index: dict[tuple[Any, ...], int]) -> None:
    """Record the 1-based line of every mapping key and sequence item below a yaml node."""
    import yaml

    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            index[(*path, key)] = key_node.start_mark.line + 1
            _line_index(value_node, (*path, key), index)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            index[(*path, i)] = item.start_mark.line + 1
            _line_index(item, (*path, i), index)


MAX_YAML_BYTES = 1 << 20
"""A YAML definition larger than this (1 MiB) is refused: settings, mappings, rules and campaigns are small."""
MAX_YAML_DEPTH = 50
"""Deeper nesting is refused before it is built (deep recursion would crash the parser)."""
MAX_YAML_VALUES = 100_000
"""Values after expanding aliases: more is refused (a "billion laughs" file would exhaust memory)."""


def _read_text(path: Path) -> str:
    try:
        if path.is_dir():
            raise ConfigError(f"{path}: is a folder; give a YAML file.")
        size = path.stat().st_size
        if size > MAX_YAML_BYTES:
            raise ConfigError(
                f"{path}: is {size / 1e6:.1f} MB; a YAML definition may be at most "
                f"{MAX_YAML_BYTES // (1 << 20)} MB. Is it the right file?"
            )
        with path.open("rb") as f:
            raw = f.read(MAX_YAML_BYTES + 1)  # a file still growing is cut, not read whole
    except FileNotFoundError as e:
        raise ConfigError(f"{path}: no such file.") from e
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the file: {e.strerror or e}.") from e
    if len(raw) > MAX_YAML_BYTES:
        raise ConfigError(f"{path}: is larger than {MAX_YAML_BYTES // (1 << 20)} MB. Is it the right file?")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text ({e}). Save it as UTF-8.") from e


def _check_shape(text: str, path: Path) -> None:
    """Refuse nesting deeper than MAX_YAML_DEPTH, reading events (iterative: no recursion to exhaust)."""
    import yaml

    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                line = event.start_mark.line + 1 if event.start_mark else 1
                raise ConfigError(
                    f"{path}:{line}: nested more than {MAX_YAML_DEPTH} levels deep; "
                    "a definition never needs that many. Flatten it."
                )
        elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            depth -= 1


def _check_expansion(root: Any, path: Path) -> None:
    """Refuse a document whose aliases expand to more than MAX_YAML_VALUES values."""
    import yaml

    seen = 0
    stack = [root]
    while stack:
        node = stack.pop()
        seen += 1
        if seen > MAX_YAML_VALUES:
            raise ConfigError(
                f"{path}:{node.start_mark.line + 1}: expands to more than {MAX_YAML_VALUES:,} values "
                "through aliases (*name); write the values out, or use fewer aliases."
            )
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                stack.append(key_node)
                stack.append(value_node)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)


def read_yaml(path: Path) -> tuple[Any, dict[tuple[Any, ...], int]]:
    """Parse a YAML file, returning its data and a map from key paths to line numbers.

    Size, depth and alias expansion are limited (MAX_YAML_BYTES, MAX_YAML_DEPTH, MAX_YAML_VALUES), each
    refused with a ConfigError naming the file, so no YAML the tool reads can crash or exhaust it."""
    import yaml

    text = _read_text(path)
    try:
        _check_shape(text, path)
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is not None:
                _check_expansion(node, path)
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(e, "problem", None) or str(e)
        raise ConfigError(f"{where}: invalid YAML: {problem}") from e
    index: dict[tuple[Any, ...], int] = {}
    if node is not None:
        _line_index(node, (), index)
    return data, index


def line_of(index: dict[tuple[Any, ...], int], loc: tuple[Any, ...]) -> int | None:
    """The line of the deepest known prefix of a key path."""
    for end in range(len(loc), 0, -1):
        if (line := index.get(tuple(loc[:end]))) is not None:
            return line
    return None


def validation_problems(error: ValidationError, path: Path, index: dict[tuple[Any, ...], int]) -> list[str]:
    """Turn a pydantic error into `file:line: field: message` lines."""
    problems = []
    for item in error.errors():
        loc = tuple(item["loc"])
        line = line_of(index, loc) or 1
        field = ".".join(str(part) for part in loc) or "(top level)"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key (check its spelling)"
        problems.append(f"{path}:{line}: {field}: {message}")
    return problems


def load_model(path: Path, model: type[Model], data: Any = None) -> Model:
    """Validate a YAML file against a pydantic model; raise ConfigError listing every problem."""
    raw, index = read_yaml(path)
    if data is None:
        data = raw if raw is not None else {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: expected a mapping of keys to values at the top level.")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ConfigError("\n".join(validation_problems(e, path, index))) from e
