"""Sending spooled host reports to the minewatch server, each exactly once, over verified HTTPS.

:class:`ReportSender` posts the pending reports of a :class:`~minewatch.host.spool.Spool` oldest
first to ``POST {server}/api/v1/host-reports/`` with ``Authorization: Token <token>`` and the
report envelope as JSON body. What it does with each answer is the server contract:

======================  =====================================================================
answer                  what the sender does
======================  =====================================================================
201 Created             stored: delete the spool file
200 OK                  stored earlier (same ``report_id``): delete the spool file
401 / 403               bad or read-only token: stop with :class:`DeliveryAuthError`, keep all
400 / 409 / 413 / 422   refused for good (409: the ``report_id`` is taken by a different
                        report): move the file to ``rejected/`` with the server's message and
                        go on with the next report
anything else, 5xx,     keep the file, stop this round, retry after an exponential backoff with
timeouts, refused or    jitter (:class:`Backoff`, 5 s doubling up to 10 min; ``Retry-After``
broken connections      honoured within that range)
======================  =====================================================================

A file is deleted only after a 200 or 201, so nothing is lost; a report whose answer was lost
(the server stored it, then the connection broke) is sent again with the same ``report_id`` and
the server answers 200, so nothing is stored twice. Reports go strictly in order: a transient
failure stops the round rather than skipping ahead.

*Transport security.* ``https://`` is required. Plain ``http://`` is accepted only for a loopback
server (the traffic never leaves the machine) or with ``allow_insecure_http=True``: over plain
HTTP anyone on the path reads the host's findings and can copy the token and replay it.
Certificates are always verified, against the public CAs (``certifi``) or, with ``ca_file``,
against that bundle only (a private CA). Redirects are not followed: a redirect would carry the
token to a place the operator did not configure.

*The token is a* :class:`Secret`: its ``repr`` and ``str`` are ``***``, it cannot be pickled,
server messages are scrubbed of it, and it only ever appears in the ``Authorization`` header
(which httpx masks in its own reprs and never logs). Read it with :func:`load_token` from a file
or the ``MINEWATCH_TOKEN`` environment variable rather than the command line: the arguments of a
process are visible to every local user in ``ps`` and ``/proc/<pid>/cmdline``.

Example::

    >>> token = Secret("s3cr3t")
    >>> with ReportSender("https://minewatch.example.org/", token) as sender:
    ...     sender.endpoint, repr(token)
    ('https://minewatch.example.org/api/v1/host-reports/', '***')

Typical use (what ``minewatch agent run`` does each period)::

    token = load_token(token_file=Path("/etc/minewatch/token"))
    with Spool() as spool, ReportSender(url, token, ca_file=ca) as sender:
        result = sender.flush(spool)
"""

from __future__ import annotations

import enum
import ipaddress
import json
import logging
import os
import random
import ssl
import stat
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, Self

import httpx

import minewatch
from minewatch.errors import InputError, MinewatchError
from minewatch.host.spool import HostReport, Spool

__all__ = [
    "ENDPOINT_PATH",
    "TOKEN_ENV",
    "Backoff",
    "DeliveryAuthError",
    "DeliveryError",
    "FlushResult",
    "ReportSender",
    "Secret",
    "SendOutcome",
    "SendStatus",
    "default_timeout",
    "load_token",
    "validate_server_url",
]

log = logging.getLogger("minewatch.agent.delivery")

ENDPOINT_PATH = "/api/v1/host-reports/"
TOKEN_ENV = "MINEWATCH_TOKEN"  # noqa: S105 (the variable's name, not a token)
_TOKEN_FILE_MAX_BYTES = 4096
_TOKEN_MAX_CHARS = 1024
_RESPONSE_MAX_BYTES = 64 * 1024
"""The server's answer is a short JSON object; more is not read (bounded I/O)."""
_MESSAGE_MAX_CHARS = 2000
_REJECT_CODES = frozenset({400, 409, 413, 422})
"""Answers that say "this report will never be accepted": resending cannot help."""


class DeliveryError(MinewatchError):
    """Reports cannot be delivered until a person changes something; the spool is kept."""


class DeliveryAuthError(DeliveryError):
    """The server refused the token (401) or its rights (403); the spool is kept."""


class Secret:
    """A string that must not leak: ``repr``/``str``/f-strings show ``***``, pickling is refused.

    Example::

        >>> token = Secret("mw_4f2a")
        >>> f"{token}", repr(token), token.reveal()
        ('***', '***', 'mw_4f2a')
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not value:
            raise InputError("the agent token is empty")
        if len(value) > _TOKEN_MAX_CHARS:
            raise InputError(f"the agent token is longer than {_TOKEN_MAX_CHARS} characters")
        if not all("!" <= ch <= "~" for ch in value):
            # The message must not quote the value: it may be the token.
            raise InputError(
                "the agent token may hold only visible ASCII characters (no spaces, no line breaks)"
            )
        self._value = value

    def reveal(self) -> str:
        """The value itself; only for the one place that must send it."""
        return self._value

    def scrub(self, text: str) -> str:
        """``text`` with every occurrence of the value replaced by ``***``."""
        return text.replace(self._value, "***")

    def __repr__(self) -> str:
        return "***"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret cannot be pickled")


def load_token(
    token: str | None = None,
    token_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Secret:
    """The agent token from ``token_file``, else ``token``, else ``$MINEWATCH_TOKEN``.

    ``token`` and ``token_file`` together are an error (which one was meant?). A token file must
    be a regular file of at most 4 KiB holding the token on its first line; one that other users
    may read is accepted with a warning (like ``ssh`` does for keys, but not fatal, because a
    configuration manager may share it with a service group on purpose).
    """
    if token is not None and token_file is not None:
        raise InputError("give the agent token either with --token or with --token-file, not both")
    if token_file is not None:
        return _read_token_file(Path(token_file))
    if token is not None:
        return Secret(token.strip())
    env = os.environ if environ is None else environ
    from_env = env.get(TOKEN_ENV, "").strip()
    if from_env:
        return Secret(from_env)
    raise InputError(
        f"no agent token: set {TOKEN_ENV} or pass --token-file FILE "
        "(--token also works but shows the token to every local user in ps)"
    )


def _read_token_file(path: Path) -> Secret:
    # O_NONBLOCK: opening a FIFO put in the token file's place must not hang the agent.
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except IsADirectoryError:
        raise InputError(f"token file {path} is not a regular file") from None
    except OSError as exc:
        raise InputError(f"cannot read token file {path}: {exc.strerror or exc}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise InputError(f"token file {path} is not a regular file")
    with os.fdopen(fd, "rb") as fh:
        if info.st_size > _TOKEN_FILE_MAX_BYTES:
            raise InputError(f"token file {path} is larger than {_TOKEN_FILE_MAX_BYTES} bytes")
        try:
            raw = fh.read(_TOKEN_FILE_MAX_BYTES + 1)
        except OSError as exc:
            raise InputError(f"cannot read token file {path}: {exc.strerror or exc}") from None
    if stat.S_IMODE(info.st_mode) & 0o077:
        log.warning(
            "token file %s may be read by other users (mode %o); chmod 600 it",
            path,
            stat.S_IMODE(info.st_mode),
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"token file {path} is not UTF-8 text") from None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) != 1:
        raise InputError(f"token file {path} must hold the token on one line, found {len(lines)}")
    return Secret(lines[0])


def _is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_server_url(url: str, *, allow_insecure_http: bool = False) -> str:
    """The server's base URL, checked and without a trailing slash.

    It must be ``https://``; ``http://`` only for a loopback host or with
    ``allow_insecure_http`` (see the module docstring for why). User names, passwords, queries
    and fragments are refused: credentials in a URL end up in logs, and the endpoint path is
    fixed.
    """
    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, TypeError) as exc:
        raise InputError(f"server URL {url!r} is not a valid URL: {exc}") from None
    if parsed.scheme not in ("https", "http") or not parsed.host:
        raise InputError(f"server URL {url!r} must look like https://minewatch.example.org")
    if parsed.userinfo:
        raise InputError(
            "server URL must not contain a user name or password (they would appear in logs); "
            "the agent authenticates with its token"
        )
    if parsed.query or parsed.fragment:
        raise InputError(f"server URL {url!r} must not have a query or fragment")
    if parsed.scheme == "http" and not _is_loopback(parsed.host):
        if not allow_insecure_http:
            raise InputError(
                f"server URL {url!r} uses plain http: the token and the findings would cross the "
                "network unencrypted. Use https://, or allow insecure http explicitly"
            )
        log.warning(
            "sending reports over plain http to %s: anyone on the path can read them "
            "and copy the token",
            parsed.host,
        )
    return str(parsed.copy_with(path=parsed.path.rstrip("/") or "/")).rstrip("/")


def default_timeout() -> httpx.Timeout:
    """Explicit limits: 10 s to connect, 30 s per read or write, 10 s to get a pooled connection."""
    return httpx.Timeout(connect=10.0, read=30.0, write=30.0, pool=10.0)


@dataclass(slots=True)
class Backoff:
    """Exponential backoff with jitter: after the n-th failure in a row wait a random time in
    ``[base/2, base]``, ``base = min(max_s, initial_s * 2**(n-1))``.

    The jitter spreads out a data centre of agents that all lost the server at the same moment,
    so they do not come back in one synchronised wave; the cap keeps a recovered server from
    waiting more than ``max_s`` for its reports.

    Example::

        >>> b = Backoff(initial_s=5, max_s=600, rng=lambda: 1.0)
        >>> [b.failure() for _ in range(9)]
        [5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0, 600.0, 600.0]
    """

    initial_s: float = 5.0
    max_s: float = 600.0
    rng: Callable[[], float] = random.SystemRandom().random
    failures: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.initial_s <= self.max_s:
            raise ValueError(f"backoff needs 0 < initial_s <= max_s, got {self}")

    def failure(self) -> float:
        """Record one more failure and return how long to wait before the next attempt."""
        self.failures += 1
        exponent = min(self.failures - 1, 64)
        base = min(self.max_s, self.initial_s * 2.0**exponent)
        return base / 2 + base / 2 * min(max(self.rng(), 0.0), 1.0)

    def reset(self) -> None:
        """A delivery succeeded: the next failure starts again at ``initial_s``."""
        self.failures = 0


class SendStatus(enum.StrEnum):
    """What became of one POST."""

    STORED = "stored"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"
    RETRY = "retry"


@dataclass(frozen=True, slots=True)
class SendOutcome:
    """The classified answer to one POST; ``detail`` is safe to log (token scrubbed)."""

    status: SendStatus
    detail: str
    http_status: int | None = None
    retry_after_s: float | None = None


@dataclass(frozen=True, slots=True)
class FlushResult:
    """One delivery round: what was settled and what is left."""

    delivered: int = 0
    duplicates: int = 0
    """Already stored by the server earlier (answer 200); delivered too, counted apart."""
    rejected: int = 0
    pending: int = 0
    retry_in_s: float | None = None
    """Set when the round stopped on a transient failure: seconds until the next attempt."""
    error: str | None = None
    """The transient failure that stopped the round, if any (token scrubbed)."""
    skipped: bool = False
    """True when the round did not run because the backoff had not expired."""


class ReportSender:
    """Delivers spooled reports; see the module docstring for the contract.

    ``clock`` (monotonic seconds) and ``backoff`` are injectable so that a test can step time;
    ``trust_env=False`` ignores ``HTTPS_PROXY``/``SSL_CERT_FILE`` and friends (tests on loopback).

    Example::

        >>> with ReportSender("https://minewatch.example.org", Secret("t0k")) as sender:
        ...     sender.next_attempt_in()
        0.0
    """

    def __init__(
        self,
        server_url: str,
        token: Secret,
        *,
        ca_file: Path | None = None,
        allow_insecure_http: bool = False,
        timeout: httpx.Timeout | None = None,
        backoff: Backoff | None = None,
        trust_env: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not isinstance(token, Secret):
            raise TypeError("token must be a Secret (see load_token)")
        base = validate_server_url(server_url, allow_insecure_http=allow_insecure_http)
        self._endpoint = base + ENDPOINT_PATH
        self._token = token
        self._backoff = Backoff() if backoff is None else backoff
        self._clock = clock
        self._next_attempt_at: float | None = None
        verify: ssl.SSLContext | bool = True
        if ca_file is not None:
            verify = _ssl_context(Path(ca_file))
        self._client = httpx.Client(
            verify=verify,
            timeout=default_timeout() if timeout is None else timeout,
            follow_redirects=False,
            trust_env=trust_env,
            headers={"User-Agent": f"minewatch-agent/{minewatch.__version__}"},
        )

    @property
    def endpoint(self) -> str:
        """The full URL reports are posted to."""
        return self._endpoint

    def __repr__(self) -> str:
        return f"ReportSender({self._endpoint!r})"

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def next_attempt_in(self) -> float:
        """Seconds until the backoff allows the next round (0 when it may run now)."""
        if self._next_attempt_at is None:
            return 0.0
        return max(0.0, self._next_attempt_at - self._clock())

    # -- one report ------------------------------------------------------------------------

    def send(self, report: HostReport) -> SendOutcome:
        """POST one report and classify the answer; 401/403 raise :class:`DeliveryAuthError`."""
        body = report.to_json_bytes()
        headers = {
            "Authorization": f"Token {self._token.reveal()}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        try:
            with self._client.stream(
                "POST", self._endpoint, content=body, headers=headers
            ) as response:
                raw = _read_bounded(response)
                code = response.status_code
                retry_after = _retry_after(response.headers.get("Retry-After"))
                location = response.headers.get("Location")
        except httpx.TimeoutException as exc:
            return self._transient(f"no answer in time ({type(exc).__name__})")
        except httpx.TransportError as exc:
            return self._transient(self._describe_transport_error(exc))
        message = self._server_message(raw)
        if code in (200, 201):
            return self._confirmed(report, code, raw, message)
        if code in (401, 403):
            what = (
                "refused the agent token" if code == 401 else "denied this token the right to send"
            )
            raise DeliveryAuthError(
                f"the server {self._endpoint} {what} (HTTP {code}): {message or 'no detail'}; "
                "the reports stay in the spool"
            )
        if code in _REJECT_CODES:
            return SendOutcome(SendStatus.REJECTED, f"HTTP {code}: {message or 'no detail'}", code)
        hint = ""
        if 300 <= code < 400:
            hint = f" (redirect to {location!r} not followed: check --server)"
        elif code in (404, 405):
            hint = f" (is {self._endpoint} a minewatch server? check --server)"
        detail = f"HTTP {code}{hint}: {message or 'no detail'}"
        return SendOutcome(SendStatus.RETRY, self._token.scrub(detail), code, retry_after)

    def _confirmed(self, report: HostReport, code: int, raw: bytes, message: str) -> SendOutcome:
        """A 200/201 counts only if it is the minewatch API answering for this report: a proxy's
        or captive portal's "200 OK" page must not make the agent delete an unsent report."""
        try:
            answer = json.loads(raw.decode("utf-8")) if raw else None
        except (UnicodeDecodeError, ValueError):
            answer = None
        if not isinstance(answer, dict):
            return self._transient(f"HTTP {code} without a JSON object: not the minewatch API?")
        echoed = answer.get("report_id")
        if echoed is not None and echoed != report.report_id:
            return self._transient(f"HTTP {code} acknowledged another report ({echoed!r})")
        status = SendStatus.STORED if code == 201 else SendStatus.DUPLICATE
        return SendOutcome(status, f"HTTP {code}{': ' + message if message else ''}", code)

    def _transient(self, detail: str) -> SendOutcome:
        return SendOutcome(SendStatus.RETRY, self._token.scrub(detail))

    def _describe_transport_error(self, exc: httpx.TransportError) -> str:
        cause: BaseException | None = exc
        while cause is not None:
            if isinstance(cause, ssl.SSLCertVerificationError):
                return (
                    f"TLS certificate of {self._endpoint} not trusted ({cause.verify_message}); "
                    "give the server's CA with --ca-file"
                )
            cause = cause.__cause__ or cause.__context__
        return f"{type(exc).__name__}: {exc}"

    def _server_message(self, raw: bytes) -> str:
        """The server's ``detail`` (FastAPI's error field), or its text, short and scrubbed."""
        text = raw.decode("utf-8", errors="replace")
        try:
            answer = json.loads(text)
        except ValueError:
            answer = None
        if isinstance(answer, dict) and "detail" in answer:
            detail: Any = answer["detail"]
            text = detail if isinstance(detail, str) else json.dumps(detail, ensure_ascii=False)
        text = " ".join(text.split())
        if len(text) > _MESSAGE_MAX_CHARS:
            text = text[:_MESSAGE_MAX_CHARS] + "…"
        return self._token.scrub(text)

    # -- the spool -------------------------------------------------------------------------

    def flush(
        self,
        spool: Spool,
        *,
        force: bool = False,
        should_stop: Callable[[], bool] | None = None,
    ) -> FlushResult:
        """Send pending reports oldest first until the spool is empty or a transient failure.

        Does nothing (``skipped``) while the backoff runs, unless ``force``. ``should_stop`` is
        asked between reports so a stopping agent finishes the current report and no more.
        :class:`DeliveryAuthError` propagates with the spool untouched.
        """
        if not force and self.next_attempt_in() > 0:
            return FlushResult(
                pending=spool.count(), retry_in_s=self.next_attempt_in(), skipped=True
            )
        delivered = duplicates = rejected = 0
        for entry in spool.iter_pending():
            if should_stop is not None and should_stop():
                break
            outcome = self.send(entry.report)
            if outcome.status in (SendStatus.STORED, SendStatus.DUPLICATE):
                spool.ack(entry)
                self._backoff.reset()
                self._next_attempt_at = None
                if outcome.status is SendStatus.STORED:
                    delivered += 1
                else:
                    duplicates += 1
                log.debug("report %s delivered (%s)", entry.report.report_id, outcome.detail)
            elif outcome.status is SendStatus.REJECTED:
                spool.reject(entry, f"rejected by {self._endpoint}: {outcome.detail}")
                rejected += 1
                log.error("server rejected report %s: %s", entry.report.report_id, outcome.detail)
            else:
                delay = self._backoff.failure()
                if outcome.retry_after_s is not None:
                    delay = max(delay, min(outcome.retry_after_s, self._backoff.max_s))
                self._next_attempt_at = self._clock() + delay
                level = logging.ERROR if "TLS certificate" in outcome.detail else logging.WARNING
                log.log(
                    level,
                    "cannot deliver to %s: %s; %d report(s) kept in the spool, retry in %.0f s",
                    self._endpoint,
                    outcome.detail,
                    spool.count(),
                    delay,
                )
                return FlushResult(
                    delivered, duplicates, rejected, spool.count(), delay, outcome.detail
                )
        return FlushResult(delivered, duplicates, rejected, spool.count())


def _ssl_context(ca_file: Path) -> ssl.SSLContext:
    """Verification against ``ca_file`` only: a private CA for an in-house server."""
    if not ca_file.is_file():
        raise InputError(f"CA file {ca_file} does not exist or is not a file")
    try:
        return ssl.create_default_context(cafile=str(ca_file))
    except (ssl.SSLError, OSError) as exc:
        raise InputError(f"cannot load CA certificates from {ca_file}: {exc}") from None


def _read_bounded(response: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= _RESPONSE_MAX_BYTES:
            break
    return b"".join(chunks)[:_RESPONSE_MAX_BYTES]


def _retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds (the delta form; an HTTP date is ignored)."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if 0 <= seconds < float("inf") else None
