"""`capsule`: one command for everything that is not a Singer executable.

`tap-capsule`, `target-capsule` and `target-capsule-backup` speak Singer and stay separate programs,
because Meltano and shell pipes call them by name. Everything else a user runs by hand (the sandbox,
undo, restore, verify, a backup without Meltano, two-way sync) is a subcommand here, so that there
is one place to look (`capsule --help`), one error format (`capsule <sub>: error: …`, exit 1 for a
problem the user fixes, 2 for bad arguments) and one version.

Each subcommand's module is imported only when that subcommand runs. That keeps `capsule --help`
and shell completion fast, and it keeps the sandbox (which must never load the target) a separate
program that merely shares the front door.

The old names (`capsule-sandbox`, `capsule-undo`, `capsule-restore`, `capsule-verify`) still work
for one release: each says on stderr what replaces it and then runs the same code.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import sys
import typing as t

PROG = "capsule"


def version() -> str:
    """The installed release, as the plugins report it (imported late: `--help` stays light)."""
    from tap_capsule.api_client.version import package_version

    return package_version()


@dataclasses.dataclass(frozen=True)
class Subcommand:
    """One subcommand: the module whose `main(argv, prog)` runs it, and a line for `--help`."""

    module: str
    summary: str
    old_name: str | None = None


SUBCOMMANDS: dict[str, Subcommand] = {
    "sandbox": Subcommand(
        "tap_capsule.sandbox.cli",
        "serve a local emulator of Capsule's API (seeded data, faults, rate limits)",
        old_name="capsule-sandbox",
    ),
    "backup": Subcommand(
        "target_capsule.account.backup_run",
        "read a whole account into a backup folder (tap-capsule | target-capsule-backup)",
    ),
    "verify": Subcommand(
        "target_capsule.account.verify",
        "compare an account with a backup folder",
        old_name="capsule-verify",
    ),
    "restore": Subcommand(
        "target_capsule.account.restore",
        "restore a backup folder into the same account or a copy",
        old_name="capsule-restore",
    ),
    "undo": Subcommand(
        "target_capsule.account.undo",
        "revert one target-capsule run from its change log",
        old_name="capsule-undo",
    ),
    "sync": Subcommand(
        "target_capsule.account.sync.cli",
        "two-way sync between Capsule and a PostgreSQL schema",
    ),
}


def error(prog: str, message: str) -> int:
    """Print the one error line every subcommand uses and return exit code 1."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    return 1


class Parser(argparse.ArgumentParser):
    """argparse with the one-line error format: `capsule <sub>: error: …` and exit 2."""

    def error(self, message: str) -> t.NoReturn:  # noqa: D102 - argparse's own contract
        self.exit(2, f"{self.prog}: error: {message}\n")


def _run(name: str, argv: list[str]) -> int:
    module = importlib.import_module(SUBCOMMANDS[name].module)
    main: t.Callable[..., int] = module.main
    return main(argv, prog=f"{PROG} {name}")


def build_parser(full: bool = False) -> argparse.ArgumentParser:
    """The top-level parser.

    Subcommands parse their own options, so for running and `--help` they are only listed here.
    With `full` (shell completion) every subcommand's module adds its real options, which imports
    them all.
    """
    parser = Parser(
        prog=PROG,
        description="Account tools for Capsule CRM: sandbox, backup, verify, restore, undo, sync. "
        "The Singer executables are tap-capsule, target-capsule and target-capsule-backup.",
        epilog="Run `capsule SUBCOMMAND --help` for a subcommand's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {version()}")
    subparsers = parser.add_subparsers(dest="subcommand", metavar="SUBCOMMAND")
    for name, sub in SUBCOMMANDS.items():
        subparser = subparsers.add_parser(name, help=sub.summary, add_help=full)
        if full:
            importlib.import_module(sub.module).add_arguments(subparser)
    completion = subparsers.add_parser(
        "completion", help="print a shell completion script (bash, zsh or tcsh)"
    )
    completion.add_argument("shell", choices=("bash", "zsh", "tcsh"))
    return parser


def completion_script(shell: str) -> str:
    """A completion script for the top level and every subcommand's own options."""
    import shtab

    return str(shtab.complete(build_parser(full=True), shell=shell))


def main(argv: list[str] | None = None) -> int:
    """Entry point of `capsule`."""
    args = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if args and args[0] in SUBCOMMANDS:
        return _run(args[0], args[1:])
    parsed = parser.parse_args(args)
    if parsed.subcommand == "completion":
        print(completion_script(parsed.shell))
        return 0
    parser.print_help(sys.stderr)
    return 2


def _alias(name: str) -> t.Callable[[], int]:
    def entry() -> int:
        old = SUBCOMMANDS[name].old_name
        print(
            f"{old}: this name is deprecated and goes in the next release; "
            f"run `{PROG} {name}` instead",
            file=sys.stderr,
        )
        return _run(name, sys.argv[1:])

    return entry


sandbox_alias = _alias("sandbox")
undo_alias = _alias("undo")
restore_alias = _alias("restore")
verify_alias = _alias("verify")


if __name__ == "__main__":
    sys.exit(main())
