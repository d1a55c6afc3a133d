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


def read_yaml(path: Path) -> tuple[Any, dict[tuple[Any, ...], int]]:
    """Parse a YAML file, returning its data and a map from key paths to line numbers."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise ConfigError(f"{path}: no such file.") from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text ({e}). Save it as UTF-8.") from e
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
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
