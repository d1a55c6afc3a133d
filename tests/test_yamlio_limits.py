"""Every YAML the tool reads is limited in size, depth and alias expansion, each with a message (issue 8,
item 14); shown through `--config`, read by every command."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from pleasepoint_cli.cli import app

MAX_YAML_BYTES = 1 << 20  # the documented limit, written out so the test also runs on code without it

LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
    f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
    for i in range(9)
)


def _run_with_config(tmp_path: Path, text: str) -> tuple[int, str]:
    config = tmp_path / "pleasepoint.yaml"
    config.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(app, ["--config", str(config), "customers", "show", "C1"])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, result.stderr


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (
            "shop:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 500)) + "  " * 500 + "x: 1\n",
            "levels deep",
        ),
        ("shop: " + "[" * 600 + "]" * 600 + "\n", "levels deep"),
        (LAUGHS, "values through aliases"),
        ("shop:\n  name: " + "x" * (MAX_YAML_BYTES + 10) + "\n", "a YAML definition may be at most 1 MB"),
    ],
    ids=["deep-block", "deep-flow", "billion-laughs", "too-big"],
)
def test_a_hostile_yaml_is_refused_with_a_message(tmp_path: Path, text: str, says: str) -> None:
    code, err = _run_with_config(tmp_path, text)
    assert code == 1, err
    assert says in err and "pleasepoint.yaml" in err, err


def test_the_config_may_not_be_a_folder(tmp_path: Path) -> None:
    folder = tmp_path / "conf"
    folder.mkdir()
    result = CliRunner().invoke(app, ["--config", str(folder), "customers", "show", "C1"])
    assert result.exit_code == 1 and "is a folder; give a YAML file" in result.stderr, repr(result.exception)
