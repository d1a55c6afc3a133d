"""`pleasepoint track serve`: the tracking, one-click unsubscribe and webhook server (Starlette under uvicorn).

It never opens the DuckDB file: the signing key comes from the key file beside it (or $PLEASEPOINT_SECRET),
and every hit, unsubscribe and webhook event goes into the operational SQLite store (WAL), so it keeps
answering while analysts hold DuckDB and senders write the ledger, and an unsubscribe takes effect for the
very next message of any running send (senders check the suppression list per message).

Endpoints (paths relative to the server; the reverse proxy maps the public URLs to them):
- `GET|HEAD|POST /unsubscribe` and the path of `email.unsubscribe_base_url` (e.g. `/baja`): the one-click
  unsubscribe of RFC 8058. POST with `List-Unsubscribe=One-Click` (form-urlencoded or multipart) -> 200, no
  redirect, address suppressed. GET shows a confirmation page whose button POSTs; GET and HEAD change nothing.
- `GET /o`: the open pixel (a 1x1 GIF). `GET /c`: the click redirect (302 to the signed destination).
  A missing, forged or altered signature -> 400, nothing stored, never a redirect.
- `POST /webhooks/sendgrid|mailgun|ses`: provider events, signature checked first (bad -> 4xx, nothing stored).
- `GET /healthz`: 200 when the operational store answers.
"""

from __future__ import annotations

import html
import json
import sys
import threading
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from pleasepoint_cli.delivery.unsubscribe import unsubscribe_customer
from pleasepoint_cli.errors import ConfigError, PleasepointError, SignatureError
from pleasepoint_cli.events import signatures
from pleasepoint_cli.events.providers import is_machine_user_agent, parse_payload
from pleasepoint_cli.events.store import store_events, token_seen
from pleasepoint_cli.tracking.hits import record_hit
from pleasepoint_cli.tracking.links import (
    CLICK_PATH,
    OPEN_PATH,
    LinkRef,
    is_trackable,
    verify_click,
    verify_open,
)

if TYPE_CHECKING:
    from pleasepoint_cli.config import Settings
    from pleasepoint_cli.ops.store import OpsStore

PIXEL = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
NO_STORE = {"Cache-Control": "no-store, max-age=0", "X-Robots-Tag": "noindex, nofollow"}
MAX_BODY = 5 * 1024 * 1024
"""Largest webhook body read (SendGrid batches are well under 1 MB)."""

Clock = Callable[[], datetime]
CertificateFetcher = Callable[[str], bytes]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    document = (
        '<!doctype html><html lang="es"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="robots" content="noindex"><title>{html.escape(title)}</title>'
        "<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;"
        "line-height:1.5}button{font-size:1rem;padding:.6rem 1.2rem}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(document, status_code=status, headers=NO_STORE)


def _log(message: str) -> None:
    print(f"track: {message}", file=sys.stderr, flush=True)


class TrackingApp:
    """The server's state: the operational store, the signing key, the settings and the clock."""

    def __init__(
        self,
        ops: OpsStore,
        secret: bytes,
        settings: Settings,
        *,
        clock: Clock = _utc_now,
        fetch_certificate: CertificateFetcher | None = None,
    ) -> None:
        self.ops = ops
        self.secret = secret
        self.settings = settings
        self.clock = clock
        self.fetch_certificate = fetch_certificate or _fetch_certificate
        self._certificates: dict[str, bytes] = {}
        self._lock = threading.Lock()

    # --- running store work off the event loop -----------------------------------------------------------

    async def _store(self, fn: Callable[[], Any]) -> Any:
        return await run_in_threadpool(fn)

    # --- unsubscribe ---------------------------------------------------------------------------------------

    def _unsubscribe_params(self, request: Request) -> tuple[str, str, str] | None:
        q = request.query_params
        customer, campaign, token = q.get("c", ""), q.get("m", ""), q.get("t", "")
        if not (customer and campaign and token):
            return None
        return customer, campaign, token

    def _genuine(self, customer: str, campaign: str, token: str) -> bool:
        from pleasepoint_cli.content.unsubscribe import verify_unsubscribe

        return verify_unsubscribe(self.secret, customer, campaign, token)

    async def unsubscribe(self, request: Request) -> Response:
        params = self._unsubscribe_params(request)
        if params is None or not self._genuine(*params):
            if request.method == "POST":
                _log("one-click unsubscribe refused: missing or forged token")
            return _page(
                "Enlace no válido",
                "<p>Este enlace de baja no es válido o está incompleto. Usa el enlace del último correo.</p>",
                status=400 if params is None else 403,
            )
        if request.method in ("GET", "HEAD"):
            action = html.escape(str(request.url.path) + "?" + str(request.url.query), quote=True)
            return _page(
                "Darse de baja",
                "<p>¿Quieres dejar de recibir nuestros correos?</p>"
                f'<form method="post" action="{action}">'
                '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
                '<button type="submit">Confirmar la baja</button></form>',
            )
        try:
            form = await request.form()
        except Exception:
            return PlainTextResponse("the body must be form-urlencoded or multipart", status_code=400)
        if form.get("List-Unsubscribe") != "One-Click":
            return PlainTextResponse("expected List-Unsubscribe=One-Click (RFC 8058)", status_code=400)
        customer, campaign, _ = params
        now = self.clock()
        outcome = await self._store(
            lambda: unsubscribe_customer(self.ops, customer, campaign, now=now, via="track")
        )
        if not outcome.known:
            _log(f"one-click unsubscribe for a customer with no send in the ledger (campaign {campaign!r})")
        return _page("Baja confirmada", "<p>No volverás a recibir nuestros correos de marketing.</p>")

    # --- pixel and clicks ----------------------------------------------------------------------------------

    async def open_pixel(self, request: Request) -> Response:
        q = request.query_params
        ref = LinkRef.from_params(q)
        if ref is None or not verify_open(self.secret, ref, q.get("t", "")):
            return PlainTextResponse("invalid tracking link", status_code=400, headers=NO_STORE)
        if request.method == "GET":
            agent = request.headers.get("user-agent", "")
            machine = (
                is_machine_user_agent(agent) or agent.strip() in self.settings.tracking.machine_user_agents
            )
            now = self.clock()
            await self._store(
                lambda: record_hit(
                    self.ops,
                    ref,
                    "open",
                    now=now,
                    subkind="machine" if machine else "",
                    details={"user_agent": agent[:300]},
                )
            )
        return Response(PIXEL, media_type="image/gif", headers=NO_STORE)

    async def click(self, request: Request) -> Response:
        q = request.query_params
        ref, url, token = LinkRef.from_params(q), q.get("u", ""), q.get("t", "")
        if ref is None or not url or not is_trackable(url) or not verify_click(self.secret, ref, url, token):
            return PlainTextResponse("invalid or altered link", status_code=400, headers=NO_STORE)
        if request.method == "GET":
            now = self.clock()
            await self._store(lambda: record_hit(self.ops, ref, "click", now=now, url=url))
        return RedirectResponse(url, status_code=302, headers=NO_STORE)

    # --- webhooks ------------------------------------------------------------------------------------------

    async def _body(self, request: Request) -> bytes:
        body = await request.body()
        if len(body) > MAX_BODY:
            raise _HttpError(413, "body too large")
        return body

    def _json(self, body: bytes) -> Any:
        try:
            return json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise _HttpError(400, f"the body is not JSON: {e}") from e

    def _save(self, data: Any, fmt: str, token: str | None = None) -> int:
        """Store a verified payload's events in one transaction (a replayed token stores nothing)."""
        parsed = parse_payload(data, fmt)
        for problem in parsed.problems:
            _log(f"{fmt} webhook: record {problem.line} not stored: {problem.message}")
        now = self.clock()
        with self.ops.transaction() as con:
            if token is not None and token_seen(con, token, fmt, now):
                raise _HttpError(403, "this webhook token was already used (replay)")
            result = store_events(self.ops, parsed.events, now=now, con=con)
        return result.inserted

    async def sendgrid(self, request: Request) -> Response:
        key = signatures.secret_from_env(self.settings.tracking.sendgrid.public_key_env, "SendGrid webhook")
        body = await self._body(request)
        signatures.verify_sendgrid(
            key,
            body,
            request.headers.get(signatures.SENDGRID_SIGNATURE_HEADER),
            request.headers.get(signatures.SENDGRID_TIMESTAMP_HEADER),
            now=self.clock(),
            max_age=self.settings.tracking.max_age_seconds,
        )
        data = self._json(body)
        inserted = await self._store(lambda: self._save(data, "sendgrid"))
        return PlainTextResponse(f"stored {inserted}")

    async def mailgun(self, request: Request) -> Response:
        key = signatures.secret_from_env(self.settings.tracking.mailgun.signing_key_env, "Mailgun webhook")
        data = self._json(await self._body(request))
        if not isinstance(data, dict):
            raise _HttpError(400, "a Mailgun webhook body is one JSON object")
        token = signatures.verify_mailgun(
            key, data.get("signature"), now=self.clock(), max_age=self.settings.tracking.max_age_seconds
        )
        inserted = await self._store(lambda: self._save(data, "mailgun", token=token))
        return PlainTextResponse(f"stored {inserted}")

    async def ses(self, request: Request) -> Response:
        sns = self.settings.tracking.sns
        expected = signatures.secret_from_env(sns.basic_auth_env, "SNS webhook")
        try:
            signatures.check_basic_auth(request.headers.get("authorization"), expected)
        except SignatureError:
            # SNS sends credentials only after a 401 challenge.
            return PlainTextResponse(
                "authentication required",
                status_code=401,
                headers={"WWW-Authenticate": 'Basic realm="pleasepoint"'},
            )
        envelope = self._json(await self._body(request))
        if not isinstance(envelope, dict):
            raise _HttpError(400, "an SNS message is one JSON object")
        signatures.check_topic(envelope, sns.topic_arns)
        if sns.verify_signature:
            certificate = await self._store(lambda: self._certificate(envelope.get("SigningCertURL")))
            signatures.verify_sns_signature(envelope, certificate)
        if envelope.get("Type") == "SubscriptionConfirmation":
            _log(
                f"SNS subscription to {envelope.get('TopicArn')}: confirm it at {envelope.get('SubscribeURL')}"
            )
            return PlainTextResponse("subscription noted; confirm it from its SubscribeURL")
        inserted = await self._store(lambda: self._save(envelope, "ses"))
        return PlainTextResponse(f"stored {inserted}")

    def _certificate(self, url: Any) -> bytes:
        checked = signatures.check_cert_url(url)
        with self._lock:
            if checked not in self._certificates:
                self._certificates[checked] = self.fetch_certificate(checked)
            return self._certificates[checked]

    # --- health ----------------------------------------------------------------------------------------------

    async def health(self, request: Request) -> Response:
        await self._store(lambda: self.ops.scalar("SELECT count(*) FROM events"))
        return PlainTextResponse("ok", headers=NO_STORE)


class _HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _fetch_certificate(url: str) -> bytes:
    import httpx

    response = httpx.get(url, timeout=10.0, follow_redirects=False)
    response.raise_for_status()
    return response.content


Handler = Callable[[Request], Awaitable[Response]]


def _guarded(handler: Handler) -> Handler:
    """Map refusals to status codes: bad signature 403, malformed 400, missing configuration 503."""

    async def run(request: Request) -> Response:
        try:
            return await handler(request)
        except _HttpError as e:
            return PlainTextResponse(e.message, status_code=e.status)
        except SignatureError as e:
            _log(str(e))
            return PlainTextResponse(str(e), status_code=403)
        except ConfigError as e:
            _log(str(e))
            return PlainTextResponse("this webhook is not configured on the server", status_code=503)
        except PleasepointError as e:
            _log(str(e))
            return PlainTextResponse("the server cannot store this now; retry later", status_code=503)

    return run


def unsubscribe_paths(settings: Settings) -> list[str]:
    """`/unsubscribe`, and the path of `email.unsubscribe_base_url` so a proxy can pass it through as is."""
    paths = ["/unsubscribe"]
    path = urlsplit(settings.email.unsubscribe_base_url).path.rstrip("/")
    if (
        path
        and path not in paths
        and path not in (OPEN_PATH, CLICK_PATH, "/healthz")
        and not path.startswith("/webhooks")
    ):
        paths.append(path)
    return paths


def create_app(
    ops: OpsStore,
    secret: bytes,
    settings: Settings,
    *,
    clock: Clock = _utc_now,
    fetch_certificate: CertificateFetcher | None = None,
) -> Starlette:
    """The ASGI application over an open operational store."""
    state = TrackingApp(ops, secret, settings, clock=clock, fetch_certificate=fetch_certificate)
    routes = [
        Route(path, _guarded(state.unsubscribe), methods=["GET", "HEAD", "POST"])
        for path in unsubscribe_paths(settings)
    ]
    routes += [
        Route(OPEN_PATH, _guarded(state.open_pixel), methods=["GET", "HEAD"]),
        Route(CLICK_PATH, _guarded(state.click), methods=["GET", "HEAD"]),
        Route("/webhooks/sendgrid", _guarded(state.sendgrid), methods=["POST"]),
        Route("/webhooks/mailgun", _guarded(state.mailgun), methods=["POST"]),
        Route("/webhooks/ses", _guarded(state.ses), methods=["POST"]),
        Route("/healthz", _guarded(state.health), methods=["GET", "HEAD"]),
    ]
    return Starlette(routes=routes)


def serve(db_path: Path, settings: Settings, *, host: str, port: int, busy_timeout: float = 30.0) -> None:
    """Run the server until interrupted (uvicorn, one process; put it behind the shop's reverse proxy)."""
    import uvicorn

    from pleasepoint_cli.keys import signing_secret
    from pleasepoint_cli.ops.store import open_ops

    secret = signing_secret(Path(db_path))
    with open_ops(Path(db_path), busy_timeout) as ops:
        app = create_app(ops, secret, settings)
        _log(f"listening on http://{host}:{port} (operational store {ops.path})")
        # No access log: query strings carry customer ids and link signatures.
        uvicorn.run(app, host=host, port=port, access_log=False, log_level="warning", proxy_headers=True)
