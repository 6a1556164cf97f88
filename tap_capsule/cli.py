"""Console entry points of both plugins: a user's mistake ends in one line, a bug in a traceback.

A mistyped setting, a token Capsule rejects, a plain `http://` URL to another machine or an unusable
state file is something the user fixes, so it ends the run with exit code 1 and one line on stderr
that says what to fix. Anything else is a bug and keeps its traceback. `--log-level debug` (or
`LOGLEVEL=debug`, or `<PLUGIN>_LOGLEVEL=debug`) shows the traceback for everything.

The SDK's CLI has no `--log-level` option; this wrapper takes it off the command line and hands it
to the SDK through `<PLUGIN>_LOGLEVEL`, the variable the SDK reads.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import sys
import typing as t
from pathlib import Path

import jsonschema

from tap_capsule.api_client import (
    CapsuleAuthError,
    CapsuleConfigError,
    CapsuleRateLimitError,
    CapsuleRetryError,
)
from tap_capsule.secrets import SECRET_SETTINGS
from tap_capsule.setting_names import (
    others_settings,
    plugin_setting_names,
    unknown_setting,
    unknown_variable,
)

if t.TYPE_CHECKING:
    from singer_sdk.plugin_base import PluginBase

# Errors whose message already says what to do; none of them is a bug in the plugins.
USER_ERRORS: tuple[type[BaseException], ...] = (
    CapsuleConfigError,
    CapsuleAuthError,
    CapsuleRateLimitError,
    CapsuleRetryError,
)

# JSON files named on the command line, and what each one is.
FILE_OPTIONS = {"--config": "config", "--state": "state", "--catalog": "catalog"}


class UserError(Exception):
    """A file or option on the command line the user has to fix."""


# The SDK's log lines that say nothing a user can act on: at the default level they are dropped,
# at `--log-level debug` they show as DEBUG. Matched on the message's format string, which is
# stable across runs (its arguments are not). The SDK's METRIC lines go the same way: the tap's
# closing table carries the same figures, one row per stream.
SDK_CHATTER = frozenset(
    {
        "Beginning sync of '%s' in %s mode",
        "Starting incremental sync of '%s' with bookmark value: %s",
        "Skipping deselected stream '%s'.",
        "Added '%s' as child stream to '%s'",
        "Skipping parse of env var settings...",
        # Settings lists whose records carry no `updatedAt` (the tap tolerates them).
        "New replication value is null",
        # Capsule's lists have no documented order, so every incremental stream is unsorted.
        "Stream is assumed to be unsorted, progress is not resumable if interrupted",
    }
)
METRICS_LOGGER = "singer_sdk.metrics"


class SdkChatter(logging.Filter):
    """Demotes the SDK's chatter and METRIC lines to DEBUG (dropped unless DEBUG is on)."""

    def filter(self, record: logging.LogRecord) -> bool:  # noqa: D102 - logging's own contract
        if record.name == METRICS_LOGGER or record.msg in SDK_CHATTER:
            if not logging.getLogger().isEnabledFor(logging.DEBUG):
                return False
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


def quiet_sdk_chatter() -> None:
    """Put `SdkChatter` on every handler the SDK set up (root and metrics loggers), once."""
    for name in ("", METRICS_LOGGER):
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, SdkChatter) for f in handler.filters):
                handler.addFilter(SdkChatter())


def take_log_level(argv: list[str]) -> tuple[str | None, list[str]]:
    """`--log-level X` / `--log-level=X` taken out of `argv`: (X or None, the other arguments)."""
    rest: list[str] = []
    level = None
    args = iter(argv)
    for arg in args:
        if arg == "--log-level":
            level = next(args, None)
            if level is None:
                raise UserError("--log-level needs a value: debug, info, warning or error")
        elif arg.startswith("--log-level="):
            level = arg.split("=", 1)[1]
        else:
            rest.append(arg)
    return level, rest


def file_arguments(argv: list[str]) -> t.Iterator[tuple[str, str]]:
    """(option, path) of every JSON file named on the command line."""
    for i, arg in enumerate(argv):
        option, _, value = arg.partition("=")
        if option in FILE_OPTIONS:
            path = value or (argv[i + 1] if i + 1 < len(argv) else "")
            if path and path != "ENV":
                yield option, path


def check_file(option: str, path: str) -> None:
    """Refuse a missing, empty or non-JSON file before the SDK reads it with a traceback."""
    what = FILE_OPTIONS[option]
    file = Path(path)
    if not file.is_file():
        raise UserError(f"{option} {path}: no such file")
    text = file.read_text(encoding="utf-8", errors="replace")
    if not text.strip():
        if what == "state":
            raise UserError(
                f"--state {path} is empty. For a first run leave out --state (or write {{}} "
                "to the file); afterwards give it the last STATE line the target printed."
            )
        raise UserError(f"{option} {path} is empty; it should hold a JSON object")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(
            f"{option} {path} is not valid JSON ({exc.msg} at line {exc.lineno}, column "
            f"{exc.colno})"
        ) from None
    if not isinstance(value, dict):
        raise UserError(f"{option} {path} should hold a JSON object, not {type(value).__name__}")


def _rule(error: jsonschema.ValidationError) -> str:
    """What a setting must be, in words, without its value (it may be a secret)."""
    rule, expected = str(error.validator), t.cast("t.Any", error.validator_value)
    if rule == "type":
        kinds = expected if isinstance(expected, list) else [expected]
        return "must be " + " or ".join(
            f"a {k}" if k != "integer" else "an integer" for k in kinds if k != "null"
        )
    if rule in ("enum", "allowed_values"):
        return "must be one of " + ", ".join(str(v) for v in expected if v is not None)
    words = {"maximum": "at most", "minimum": "at least", "format": "a valid"}
    if rule in words:
        return f"must be {words[rule]} {expected}"
    return f"breaks the rule {rule} {json.dumps(expected)[:60]}"


def read_configs(paths: list[str]) -> dict[str, t.Any]:
    """The `--config` files merged, later files winning (as the SDK merges them)."""
    config: dict[str, t.Any] = {}
    for path in paths:
        config.update(json.loads(Path(path).read_text(encoding="utf-8")))
    return config


def names_problem(plugin: type[PluginBase], name: str, paths: list[str]) -> str | None:
    """A config key or `<PREFIX>_*` environment variable that names no setting, in one line.

    Another command's settings in a shared config file are accepted, with one note each.
    """
    known = plugin_setting_names(plugin)
    config = read_configs(paths)
    for note in others_settings(name, config, known):
        print(f"{name}: note: {note}", file=sys.stderr)
    return unknown_setting(name, config, known) or unknown_variable(name, known)


def settings_problem(plugin: type[PluginBase], name: str, paths: list[str]) -> str | None:
    """The first setting of the `--config` files that the plugin's schema refuses, in one line.

    The SDK checks the same schema, but logs each problem and "Config validation failed" on lines
    of their own, and in discovery only warns, so a mistyped setting first surfaces later and
    elsewhere. This says which setting and what it must be, before the plugin starts.
    """
    config = read_configs(paths)
    schema = copy.deepcopy(plugin.config_jsonschema)
    plugin.append_builtin_config(schema)
    errors = sorted(
        jsonschema.Draft7Validator(schema).iter_errors(config), key=lambda e: list(e.path)
    )
    if not errors:
        return None
    error = errors[0]
    if error.validator == "required":
        missing = [k for k in error.validator_value if k not in error.instance]
        return f"setting {', '.join(missing)} is required; add it to the config ({name} --about)"
    setting = ".".join(str(p) for p in error.absolute_path) or "config"
    what = (
        "is set"
        if setting.split(".")[0] in SECRET_SETTINGS
        else f"is {json.dumps(error.instance)[:80]}"
    )
    return f"setting {setting} {what} but {_rule(error)}; fix it in the config ({name} --about)"


def user_error(exc: BaseException) -> BaseException | None:
    """The user's mistake behind `exc` (itself or what caused it), if it is one."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, USER_ERRORS):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def run(load: t.Callable[[], type[PluginBase]], name: str, argv: list[str] | None = None) -> None:
    """Run the plugin `load()` returns as `name`, with one-line errors for user mistakes."""
    prefix = name.upper().replace("-", "_")
    debug = False
    try:
        level, args = take_log_level(sys.argv[1:] if argv is None else argv)
        if level:
            os.environ[f"{prefix}_LOGLEVEL"] = level
        chosen = level or os.environ.get(f"{prefix}_LOGLEVEL") or os.environ.get("LOGLEVEL")
        debug = (chosen or "").lower() == "debug"
        configs = []
        for option, path in file_arguments(args):
            check_file(option, path)
            if option == "--config":
                configs.append(path)
        plugin = load()
        describes = {"--about", "--version", "--help"} & set(args)  # no run, nothing to check
        if not describes and (problem := names_problem(plugin, name, configs)):
            raise UserError(problem)  # before the values: a misspelt name explains a "missing" one
        if configs and not describes and (problem := settings_problem(plugin, name, configs)):
            raise UserError(problem)
        command = plugin.cli  # sets up the SDK's console logging
        quiet_sdk_chatter()
        command.main(args=args, prog_name=name)
    except UserError as exc:
        fail(name, str(exc))
    except Exception as exc:
        mistake = user_error(exc)
        if mistake is None or debug:
            raise
        fail(name, str(mistake))


def fail(name: str, message: str) -> t.NoReturn:
    """One line on stderr, exit code 1."""
    sys.stdout.flush()
    print(f"{name}: error: {' '.join(message.split())}", file=sys.stderr)
    sys.exit(1)


def _load_tap() -> type[PluginBase]:
    from tap_capsule.tap import TapCapsule  # only once the arguments are checked

    return TapCapsule


def tap_setting_names() -> frozenset[str]:
    """The settings tap-capsule accepts (for commands that hand their config to it)."""
    return plugin_setting_names(_load_tap())


def main() -> None:
    """`tap-capsule`."""
    run(_load_tap, "tap-capsule")
