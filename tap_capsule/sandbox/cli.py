"""`capsule sandbox`: serve a seeded Capsule emulator until SIGINT/SIGTERM.

The first stdout line is the API base URL (flushed), so scripts and test fixtures can start it with
`--port 0` and read where it listens. Bad arguments end with one specific line on stderr, exit 2.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
import typing as t

from tap_capsule.sandbox.auth import FULL_GRANT, Grant
from tap_capsule.sandbox.models import OWNER_CLEARS_TEAM
from tap_capsule.sandbox.server import API, App, SandboxHTTPServer

if t.TYPE_CHECKING:
    import types


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> t.NoReturn:  # one line, not usage + error
        self.exit(2, f"{self.prog}: error: {message}\n")


def _non_negative_int(name: str) -> t.Callable[[str], int]:
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {value!r}") from None
        if number < 0:
            raise argparse.ArgumentTypeError(f"{name} must be >= 0, got {number}")
        return number

    return parse


def _port(value: str) -> int:
    number = _non_negative_int("--port")(value)
    if number > 65535:
        raise argparse.ArgumentTypeError(f"--port must be between 0 and 65535, got {number}")
    return number


def _non_negative_float(name: str) -> t.Callable[[str], float]:
    def parse(value: str) -> float:
        try:
            number = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {value!r}") from None
        if not number >= 0 or number == float("inf"):
            raise argparse.ArgumentTypeError(f"{name} must be a finite number >= 0, got {value}")
        return number

    return parse


def _positive_float(name: str) -> t.Callable[[str], float]:
    def parse(value: str) -> float:
        number = _non_negative_float(name)(value)
        if number == 0:
            raise argparse.ArgumentTypeError(f"{name} must be > 0")
        return number

    return parse


def _grant_error(spec: str) -> str:
    """Why a token grant is unusable, or "" when it is fine."""
    try:
        Grant.parse(spec)
    except ValueError as exc:
        return str(exc)
    return ""


DESCRIPTION = "A local emulator of the Capsule CRM API v2 with seeded data."


def build_parser(prog: str = "capsule sandbox") -> argparse.ArgumentParser:
    """The command line: where to listen, the tokens, the seed and the faults to inject."""
    parser = _Parser(prog=prog, description=DESCRIPTION)
    add_arguments(parser)
    return parser


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The sandbox's options, on any parser (its own, or `capsule`'s for shell completion)."""
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=_port, default=0, help="0 picks a free port")
    p.add_argument(
        "--token",
        default=os.environ.get("CAPSULE_SANDBOX_TOKEN"),
        help="bearer token to accept (or env CAPSULE_SANDBOX_TOKEN); required",
    )
    p.add_argument("--read-only-token", help="a token that gets 403 on writes")
    p.add_argument(
        "--token-grant",
        default=FULL_GRANT,
        help="what --token may do: scopes read, write, user_preference and the words admin "
        f"(an administrator) and oauth_app (a registered OAuth app); default {FULL_GRANT!r}",
    )
    p.add_argument(
        "--extra-token",
        action="append",
        default=[],
        metavar="TOKEN=GRANT",
        help="another token and its grant, e.g. 'user-token=read write' (repeatable)",
    )
    p.add_argument(
        "--owner-clears-team",
        default=",".join(sorted(OWNER_CLEARS_TEAM)),
        help="records (kase, party, opportunity) whose team a PUT of owner alone clears; "
        "default kase, the only one verified against Capsule",
    )
    p.add_argument(
        "--scale",
        type=_non_negative_int("--scale"),
        default=50,
        help="about this many parties (and proportionally other records)",
    )
    p.add_argument(
        "--large",
        type=_non_negative_int("--large"),
        default=0,
        metavar="PARTIES",
        help="a large account generated on demand instead of --scale: PARTIES parties, 0.3x "
        "opportunities, 0.1x cases, 3x entries, 0.2x tasks (--large 100000: a plan ceiling); "
        "only writes are held in memory",
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--rate-limit", type=_non_negative_int("--rate-limit"), default=4000)
    p.add_argument("--rate-window", type=_positive_float("--rate-window"), default=3600.0)
    p.add_argument("--client-id")
    p.add_argument("--client-secret")
    p.add_argument("--refresh-token")
    p.add_argument("--error-every", type=_non_negative_int("--error-every"), default=0)
    p.add_argument("--error-status", type=_non_negative_int("--error-status"), default=503)
    p.add_argument("--slow-every", type=_non_negative_int("--slow-every"), default=0)
    p.add_argument("--slow-seconds", type=_non_negative_float("--slow-seconds"), default=0.0)
    p.add_argument("--drop-every", type=_non_negative_int("--drop-every"), default=0)
    p.add_argument("--malformed-every", type=_non_negative_int("--malformed-every"), default=0)
    p.add_argument(
        "--throttle-first",
        type=_non_negative_int("--throttle-first"),
        default=0,
        help="the first K API requests get 429",
    )
    p.add_argument(
        "--throttle-reset-seconds",
        type=_non_negative_float("--throttle-reset-seconds"),
        default=2.0,
    )
    p.add_argument(
        "--lost-answer-every",
        type=_non_negative_int("--lost-answer-every"),
        default=0,
        help="every K-th write is applied and answered 502 (its answer is lost)",
    )
    p.add_argument(
        "--fault-after-write",
        action="store_true",
        help="apply a write before answering it with the injected error/drop",
    )


def main(argv: list[str] | None = None, prog: str = "capsule sandbox") -> int:
    """Serve until SIGINT/SIGTERM; 0 on a clean stop, 1 when it cannot start, 2 on bad arguments."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("--token is required (or set CAPSULE_SANDBOX_TOKEN)")
    if not 100 <= args.error_status <= 599:
        parser.error(f"--error-status must be an HTTP status 100-599, got {args.error_status}")
    if (args.client_id or args.client_secret or args.refresh_token) and not (
        args.client_id and args.client_secret and args.refresh_token
    ):
        parser.error("--client-id, --client-secret and --refresh-token go together")
    extra_tokens = {}
    for item in args.extra_token:
        token, sep, grant = item.partition("=")
        if not sep or not token:
            parser.error("--extra-token must be TOKEN=GRANT, e.g. 'user-token=read write'")
        extra_tokens[token] = grant
    grants = [("--token-grant", args.token_grant)]
    grants += [("--extra-token", grant) for grant in extra_tokens.values()]
    bad = next(
        (f"{option}: {_grant_error(spec)}" for option, spec in grants if _grant_error(spec)), ""
    )
    if bad:
        parser.error(bad)
    owner_clears_team = {w.strip() for w in args.owner_clears_team.split(",") if w.strip()}
    unknown = owner_clears_team - {"kase", "party", "opportunity"}
    if unknown:
        parser.error(f"--owner-clears-team takes kase, party, opportunity; got {sorted(unknown)}")
    faults = {
        "error_every": args.error_every,
        "error_status": args.error_status,
        "slow_every": args.slow_every,
        "slow_seconds": args.slow_seconds,
        "drop_every": args.drop_every,
        "malformed_every": args.malformed_every,
        "throttle_next": args.throttle_first,
        "throttle_reset_seconds": args.throttle_reset_seconds,
        "fault_after_write": args.fault_after_write,
        "lost_answer_every": args.lost_answer_every,
    }
    try:
        app = App(
            token=args.token,
            scale=args.scale,
            seed=args.seed,
            rate_limit=args.rate_limit,
            rate_window=args.rate_window,
            read_only_token=args.read_only_token,
            client_id=args.client_id,
            client_secret=args.client_secret,
            refresh_token=args.refresh_token,
            faults=faults,
            grant=args.token_grant,
            extra_tokens=extra_tokens,
            owner_clears_team=owner_clears_team,
            large=args.large,
        )
        server = SandboxHTTPServer((args.host, args.port), app)
    except (OSError, ValueError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1

    # A plain list, not a threading.Event: a handler runs in the main thread between two bytecodes,
    # and Event.set() there deadlocks when the signal lands while that thread holds the Event's
    # own lock (inside Event.wait). Two signals in a row do that: Ctrl-C or `kill` on a process
    # group reaches `make sandbox` and the sandbox, and make then passes one on again.
    stop: list[int] = []

    def on_signal(signum: int, frame: types.FrameType | None) -> None:
        stop.append(signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
    )
    thread.start()
    print(app.origin + API, flush=True)
    try:
        while not stop:
            time.sleep(0.2)  # a signal ends the sleep early; its handler has run by then
    finally:
        server.shutdown()
        server.close_connections()
        server.server_close()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
