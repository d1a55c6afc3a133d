"""The root command: init, the --db precedence, output formats, exit codes, and a fast --help."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pleasepoint_cli.cli import app
from pleasepoint_cli.config import Settings, load_settings, resolve_db
from pleasepoint_cli.errors import ConfigError

DATA = Path(__file__).parents[1] / "data"


def test_init_writes_the_settings_and_folders(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["init", "tienda", "--name", "Ecomercado Logroño"])
    assert result.exit_code == 0, result.output
    settings = load_settings(tmp_path / "tienda" / "pleasepoint.yaml")
    assert settings.shop.name == "Ecomercado Logroño" and settings.states.active_below == 182
    assert all(
        (tmp_path / "tienda" / d).is_dir() for d in ("campaigns", "automations", "templates", "outbox")
    )
    again = runner.invoke(app, ["init", "tienda"])
    assert again.exit_code == 1 and "--force" in again.output


def test_settings_reject_unknown_keys_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "pleasepoint.yaml"
    path.write_text("db: x.duckdb\nstates:\n  active_below: 182\n  hibernting_below: 700\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"pleasepoint\.yaml:4: states\.hibernting_below: unknown key"):
        load_settings(path)
    path.write_text("states:\n  active_below: 400\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="thresholds must increase"):
        load_settings(path)


def test_db_precedence_flag_then_environment_then_config_then_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(db="from-config.duckdb")
    config = tmp_path / "conf" / "pleasepoint.yaml"
    monkeypatch.setenv("PLEASEPOINT_DB", "from-env.duckdb")
    assert resolve_db(Path("flag.duckdb"), settings, config) == Path("flag.duckdb")
    assert resolve_db(None, settings, config) == Path("from-env.duckdb")
    monkeypatch.delenv("PLEASEPOINT_DB")
    assert resolve_db(None, settings, config) == tmp_path / "conf" / "from-config.duckdb"
    assert resolve_db(None, Settings(), None) == Path("pleasepoint.duckdb")


def test_ingest_json_output_is_alone_on_stdout_and_the_db_flag_wins(
    runner: CliRunner, tmp_path: Path
) -> None:
    db = tmp_path / "elsewhere.duckdb"
    result = runner.invoke(
        app, ["--db", str(db), "ingest", "stores", str(DATA / "stores_es.csv"), "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report[0]["inserted"] == 2 and report[0]["entity"] == "stores"
    assert db.exists() and not (tmp_path / "test.duckdb").exists()
    csv_out = runner.invoke(
        app, ["--db", str(db), "ingest", "stores", str(DATA / "stores_es.csv"), "-f", "csv"]
    )
    assert csv_out.stdout.splitlines()[0] == "file,read,inserted,updated,rejected,seconds"


def test_errors_go_to_stderr_with_exit_1_and_usage_errors_exit_2(runner: CliRunner, tmp_path: Path) -> None:
    missing = runner.invoke(app, ["ingest", "orders", str(tmp_path / "nada.csv")])
    assert missing.exit_code == 1 and "no such file" in missing.stderr and missing.stdout == ""
    usage = runner.invoke(app, ["ingest", "orders"])
    assert usage.exit_code == 2
    bad_option = runner.invoke(app, ["ingest", "orders", "x.csv", "--on-error", "ignore"])
    assert bad_option.exit_code == 2


def test_help_imports_no_heavy_library() -> None:
    """`pleasepoint --help` must answer in under 0.3 s: the heavy libraries load inside commands only.
    (The time itself is measured by `make bench`, not asserted here.)"""
    code = (
        "import sys; from pleasepoint_cli.cli import app; "
        "heavy = [m for m in ('duckdb', 'numpy', 'sklearn', 'scipy', 'pyarrow', 'jinja2', 'mjml', 'pandas') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
    help_text = subprocess.run(
        [sys.executable, "-m", "pleasepoint_cli", "--help"], capture_output=True, text=True
    )
    assert help_text.returncode == 0 and "ingest" in help_text.stdout


def test_table_cells_print_brackets_as_data_not_rich_markup(capsys: pytest.CaptureFixture[str]) -> None:
    from pleasepoint_cli.cli._common import OutputFormat, emit_rows

    rows = [
        {"step": "hibernation in [inactive, hibernating]", "left": 12},
        {"step": "[bold]not markup[/bold]", "left": 3},
    ]
    emit_rows(rows, OutputFormat.table, title="funnel [at] 2026-07-01", columns=["step", "left"])
    out = capsys.readouterr().out
    assert "hibernation in [inactive, hibernating]" in out
    assert "[bold]not markup[/bold]" in out
    assert "funnel [at] 2026-07-01" in out


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--db", "x.duckdb", "-q", "ingest", "orders", "o.csv"], "ingest"),
        (["--config", "p.yaml", "--lock-timeout", "5", "automate", "tick"], "automate"),
        (["--quiet", "stats", "--format", "json"], "stats"),
        (["--help"], None),
        ([], None),
    ],
)
def test_the_command_invoked_is_found_after_the_global_options(argv: list[str], named: str | None) -> None:
    from pleasepoint_cli.cli import _invoked_command

    assert _invoked_command(argv) == named


def test_the_console_script_converts_only_the_command_invoked(tmp_path: Path) -> None:
    """Run as `pleasepoint`, a command and its group's help work as from the full root; an unknown name
    still gets click's own message and exit 2."""
    script = [sys.executable, "-m", "pleasepoint_cli", "--db", str(tmp_path / "x.duckdb")]
    group = subprocess.run([*script, "ingest", "--help"], capture_output=True, text=True, check=False)
    assert group.returncode == 0 and "orders" in group.stdout and "customers" in group.stdout
    command = subprocess.run([*script, "unsubscribe", "--help"], capture_output=True, text=True, check=False)
    assert command.returncode == 0 and "pleasepoint_cli unsubscribe [OPTIONS]" in command.stdout
    unknown = subprocess.run([*script, "nosuch"], capture_output=True, text=True, check=False)
    assert unknown.returncode == 2 and "No such command 'nosuch'" in unknown.stderr
    assert not (tmp_path / "x.duckdb").exists()


def test_the_root_for_one_command_leaves_the_whole_app_for_in_process_runs() -> None:
    """`demo` runs other commands in-process through `app`: narrowing the root for one run must copy it."""
    from pleasepoint_cli.cli import _root_for

    groups, commands = list(app.registered_groups), list(app.registered_commands)
    narrowed = _root_for("demo")
    assert [c.name for c in narrowed.registered_commands] == ["demo"] and narrowed.registered_groups == []
    assert (app.registered_groups, app.registered_commands) == (groups, commands)
    assert _root_for("nosuch") is app


def test_the_command_leaves_without_teardown_but_waits_for_threads_and_atexit(tmp_path: Path) -> None:
    """main() ends with os._exit (docs/performance.md): the exit code is still the command's, its output
    arrives whole through a pipe, a thread that is not a daemon is waited for, and atexit handlers run."""
    marks = tmp_path / "marks"
    code = (
        "import atexit, sys, threading, time\n"
        f"marks = {str(marks)!r}\n"
        "atexit.register(lambda: open(marks, 'a').write('atexit\\n'))\n"
        "def late():\n"
        "    time.sleep(0.3)\n"
        "    open(marks, 'a').write('thread\\n')\n"
        "threading.Thread(target=late).start()\n"
        "from pleasepoint_cli.cli import main\n"
        "sys.argv = ['pleasepoint', *sys.argv[1:]]\n"
        "main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, "--db", str(tmp_path / "x.duckdb"), "ingest", "orders", "--help"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "--on-error" in done.stdout and done.stdout.endswith("\n")
    assert marks.read_text().splitlines() == ["thread", "atexit"]
    marks.unlink()
    refused = subprocess.run([sys.executable, "-c", code, "no-such-command"], capture_output=True, text=True)
    assert refused.returncode == 2 and "no-such-command" in refused.stderr
    assert marks.read_text().splitlines() == ["thread", "atexit"]
