"""Keep the README's command reference in step with `--help`: `--write` regenerates it, `--check` fails
(exit 1) when it is stale. Run by `make docs` and `make lint`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

README = Path(__file__).parents[1] / "README.md"
START, END = "<!-- commands:start -->", "<!-- commands:end -->"


def _help(path: list[str]) -> str:
    from typer.testing import CliRunner

    from pleasepoint_cli.cli import app

    result = CliRunner().invoke(
        app, [*path, "--help"], env={"COLUMNS": "100", "TERM": "dumb", "NO_COLOR": "1"}
    )
    if result.exit_code != 0:
        raise SystemExit(f"pleasepoint {' '.join(path)} --help failed:\n{result.output}")
    return result.stdout.rstrip()


def _command_paths() -> list[list[str]]:
    import typer

    from pleasepoint_cli.cli import app

    paths: list[list[str]] = []

    def walk(command: object, prefix: list[str]) -> None:
        commands = getattr(command, "commands", None)
        if prefix:
            paths.append(prefix)
        if commands:
            for name in sorted(commands):
                walk(commands[name], [*prefix, name])

    walk(typer.main.get_command(app), [])
    return paths


def reference() -> str:
    """The markdown reference: every command's --help, in a fixed width."""
    parts = [
        "## Command reference",
        "",
        "Generated from `--help` by `make docs`; CI checks it is current.",
        "",
    ]
    for path in [[], *_command_paths()]:
        title = " ".join(["pleasepoint", *path])
        parts += [f"### `{title}`", "", "```text", _help(path), "```", ""]
    return "\n".join(parts).rstrip() + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    os.environ["COLUMNS"] = "100"
    text = README.read_text(encoding="utf-8")
    if START not in text or END not in text:
        print(f"{README}: the markers {START} and {END} are missing", file=sys.stderr)
        return 1
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    updated = f"{head}{START}\n{reference()}{END}{tail}"
    if args.write:
        README.write_text(updated, encoding="utf-8")
        return 0
    if updated != text:
        print(f"{README}: the command reference is stale; run `make docs` and commit it.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
