"""`pleasepoint automate tick|validate|list|activate|deactivate|preview|history`: scheduled and triggered emails."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pleasepoint_cli.cli._common import FormatOption, OutputFormat, emit_json, emit_rows, say, state

if TYPE_CHECKING:
    from datetime import datetime

    from pleasepoint_cli.automate.model import Automation
    from pleasepoint_cli.cli._common import AppState

app = typer.Typer(
    help="Automations: emails sent by `automate tick` (run by cron) on a schedule or a customer's event, "
    "with caps and quiet hours.",
    no_args_is_help=True,
)

DirOption = Annotated[Path, typer.Option("--dir", help="Folder of automation files.")]
NowOption = Annotated[
    str | None,
    typer.Option("--now", help="The clock (ISO 8601; no offset = shop time zone). Default: the real clock."),
]


def _now(app_state: AppState, value: str | None) -> datetime:
    """--now, else the real clock (clock.resolve_clock's rule for sending commands). The store is not read
    for the stale-data warning here: a tick must not wait on DuckDB's lock before it knows work is due."""
    from pleasepoint_cli.clock import SENDING, resolve_clock

    return resolve_clock(
        SENDING, shop_tz=app_state.settings.shop.timezone, latest_purchase=None, now=value
    ).now


def _find(app_state: AppState, directory: Path, name: str) -> Automation:
    from pleasepoint_cli.automate.model import automation_files, load_automations
    from pleasepoint_cli.errors import ConfigError, NotFoundError

    loaded = load_automations(directory, shop_timezone=app_state.settings.shop.timezone)
    for automation in loaded.automations:
        if automation.name == name:
            return automation
    for path, problem in loaded.problems.items():
        if path.stem == name:
            raise ConfigError(problem)
    files = ", ".join(p.name for p in automation_files(directory)) or "none"
    raise NotFoundError(f"no automation named {name!r} in {directory}/ (files: {files}).")


@app.command("tick")
def automate_tick_command(
    ctx: typer.Context,
    now: NowOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Plan and count; write and send nothing.")
    ] = False,
    lock_timeout: Annotated[
        float | None,
        typer.Option("--lock-timeout", min=0, help="Seconds to wait for a busy database; then exit 75."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only the summary line and errors.")] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="A line per automation, even idle.")
    ] = False,
    directory: DirOption = Path("automations"),
    only: Annotated[str | None, typer.Option("--only", help="Tick one automation by name.")] = None,
    fmt: Annotated[OutputFormat | None, typer.Option("--format", "-f", help="json: the report.")] = None,
) -> None:
    """Send whatever is due: run it from cron every few minutes.

    Silent when nothing is due, one summary line when it sent, exit 1 when an automation failed (the others
    still run). A tick already running makes this one exit 0 at once ("skipped"). Example (crontab):
    */5 * * * * cd /path/to/shop && pleasepoint automate tick --quiet
    """
    from pleasepoint_cli.automate.tick import run_tick
    from pleasepoint_cli.cli._common import stderr_console

    app_state = state(ctx)
    moment = _now(app_state, now)
    report = run_tick(
        app_state.db_path,
        app_state.settings,
        directory,
        now=moment,
        dry_run=dry_run,
        lock_timeout=app_state.lock_timeout if lock_timeout is None else lock_timeout,
        only=only,
        base_dir=app_state.config.parent if app_state.config is not None else Path(),
    )
    if fmt is OutputFormat.json:
        emit_json(report.as_json())
    console = stderr_console()
    if report.skipped:
        if not (quiet or app_state.quiet):
            console.print(report.summary(), highlight=False)
        return
    for problem in report.problems.values():
        console.print(f"[bold red]error:[/] {problem}", highlight=False, markup=True)
    if not (quiet or app_state.quiet):  # cron passes -q: not mailed every five minutes
        for warning in report.warnings:
            console.print(f"warning: {warning}", highlight=False, markup=False)
    for run in report.runs:
        if run.error is not None:
            console.print(f"[bold red]error:[/] {run.name}: {run.error}", highlight=False, markup=True)
        if run.aborted is not None:
            console.print(f"[bold red]error:[/] {run.name}: {run.aborted}", highlight=False, markup=True)
        for missed in run.missed if not quiet else []:
            console.print(
                f"{run.name}: {missed['count']} slot(s) not run ({missed['reason']}): "
                f"{missed['first']} .. {missed['last']}",
                highlight=False,
            )
        if verbose:
            console.print(
                f"{run.name}: slots {len(run.slots)}, planned {run.planned}, sent {run.sent}, capped "
                f"{run.capped}, deferred {run.deferred}, released {run.released}, failed {run.failed}",
                highlight=False,
            )
    if fmt is not OutputFormat.json and (report.eventful or verbose):
        typer.echo(report.summary())
    if not report.ok:
        raise typer.Exit(1)


@app.command("validate")
def automate_validate_command(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="One automation's name (default: every file).")] = None,
    directory: DirOption = Path("automations"),
    now: NowOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Check automation files: YAML, trigger, caps, audience rules against the store, templates rendered.

    Exit 1 on any problem, each with its file and line.
    """
    from pleasepoint_cli.automate.validate import validate_automations
    from pleasepoint_cli.cli._common import stderr_console

    app_state = state(ctx)
    moment = _now(app_state, now)
    with app_state.store() as store:
        from pleasepoint_cli.ops.suppression import attach_suppressions_beside

        attach_suppressions_beside(app_state.db_path, store)
        checks = validate_automations(store, directory, app_state.settings, moment, name)
    rows = [
        {"file": Path(c.file).name, "name": c.name, "trigger": c.trigger, "audience": c.audience, "ok": c.ok}
        for c in checks
    ]
    emit_rows(rows, fmt, title=str(directory), json_data=[c.as_json() for c in checks])
    console = stderr_console()
    for check in checks:
        for problem in check.problems:
            console.print(f"[bold red]error:[/] {problem}", highlight=False, markup=True)
    if not all(c.ok for c in checks):
        raise typer.Exit(1)
    say(ctx, f"{len(checks)} automation{'s' if len(checks) != 1 else ''} valid.")


@app.command("list")
def automate_list_command(
    ctx: typer.Context,
    directory: DirOption = Path("automations"),
    now: NowOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Every automation: active, trigger, next run (local time), last run, emails sent in the last 30 days."""
    from pleasepoint_cli.automate import state as automation_state
    from pleasepoint_cli.automate.model import load_automations
    from pleasepoint_cli.automate.overview import automation_row
    from pleasepoint_cli.cli._common import stderr_console
    from pleasepoint_cli.ops.store import open_ops

    app_state = state(ctx)
    moment = _now(app_state, now)
    loaded = load_automations(directory, shop_timezone=app_state.settings.shop.timezone)
    with open_ops(app_state.db_path, app_state.lock_timeout) as ops:
        states = automation_state.all_states(ops)
        rows = [
            automation_row(
                a, states.get(a.name, automation_state.AutomationState(a.name, None, None)), ops, moment
            )
            for a in loaded.automations
        ]
    data = [r.as_json() for r in rows]
    data += [{"file": str(p), "problem": problem} for p, problem in loaded.problems.items()]
    emit_rows(
        [r.as_json() for r in rows],
        fmt,
        title=str(directory),
        columns=["name", "active", "trigger", "next_run", "last_run", "sent_30d"],
        json_data=data,
    )
    for problem in loaded.problems.values():
        stderr_console().print(f"[bold red]error:[/] {problem}", highlight=False, markup=True)


def _toggle(ctx: typer.Context, name: str, directory: Path, now: str | None, active: bool) -> None:
    from pleasepoint_cli.automate.state import set_active
    from pleasepoint_cli.ops.store import open_ops

    app_state = state(ctx)
    automation = _find(app_state, directory, name)
    with open_ops(app_state.db_path, app_state.lock_timeout) as ops:
        set_active(ops, automation.name, active, now=_now(app_state, now))
    say(ctx, f"{automation.name}: {'active' if active else 'inactive'}.")


@app.command("activate")
def automate_activate_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The automation's name.")],
    directory: DirOption = Path("automations"),
    now: NowOption = None,
) -> None:
    """The guide's Active: the automation sends from its next slot on (slots while inactive are not caught up)."""
    _toggle(ctx, name, directory, now, True)


@app.command("deactivate")
def automate_deactivate_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The automation's name.")],
    directory: DirOption = Path("automations"),
    now: NowOption = None,
) -> None:
    """The guide's Inactive: ticks skip the automation until it is activated again."""
    _toggle(ctx, name, directory, now, False)


@app.command("preview")
def automate_preview_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The automation's name.")],
    now: NowOption = None,
    directory: DirOption = Path("automations"),
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Who would get the email at --now, and where the others drop out (a funnel). Writes nothing."""
    from pleasepoint_cli.automate.preview import preview_automation

    app_state = state(ctx)
    automation = _find(app_state, directory, name)
    result = preview_automation(
        app_state.db_path,
        automation,
        app_state.settings,
        _now(app_state, now),
        lock_timeout=app_state.lock_timeout,
    )
    emit_rows([s.as_json() for s in result.steps], fmt, title=f"{result.name} at {result.as_json()['now']}",
              json_data=result.as_json())  # fmt: skip


@app.command("history")
def automate_history_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The automation's name.")],
    limit: Annotated[int, typer.Option("--limit", min=1, help="Most recent periods and log entries.")] = 30,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """What the automation did: its recent periods with the ledger's rows per status, and the tick log."""
    from pleasepoint_cli.automate.overview import ledger_by_period
    from pleasepoint_cli.automate.state import history
    from pleasepoint_cli.ops.store import open_ops

    app_state = state(ctx)
    with open_ops(app_state.db_path, app_state.lock_timeout) as ops:
        periods = ledger_by_period(ops, name, limit)
        log = history(ops, name, limit)
    columns = ["period", "sent", "queued", "capped", "deferred", "failed", "bounced", "suppressed", "skipped",
               "uncertain"]  # fmt: skip
    rows = [{c: p.get(c, 0 if c != "period" else None) for c in columns} for p in periods]
    emit_rows(
        rows, fmt, title=f"{name}: periods", columns=columns, json_data={"periods": periods, "log": log}
    )
    if fmt is OutputFormat.table:
        log_rows = [{"tick": e["tick_at"], "event": e["event"], "detail": _short(e["detail"])} for e in log]
        emit_rows(log_rows, fmt, title=f"{name}: log", columns=["tick", "event", "detail"])


def _short(detail: object) -> str:
    import json

    text = json.dumps(detail, ensure_ascii=False)
    return text if len(text) <= 100 else text[:97] + "..."


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="automate")
