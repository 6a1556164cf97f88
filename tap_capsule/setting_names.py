"""Setting names: every command that reads a config refuses a name it does not know.

A misspelt setting is otherwise ignored in silence, and some of those slips are harmful: `dryrun`
instead of `dry_run` turns a rehearsal into real writes. So a config key, or an environment
variable with the plugin's prefix, that names no setting ends the command before any request, in
one line that names it and, where one is close, the setting that was probably meant.

What Meltano (4.4) passes besides a plugin's declared settings is listed here, in one place:

- in the config file: nothing (`meltano invoke --dump=config` shows only declared settings);
- in the environment: its extras, as `<PREFIX>__<EXTRA>` with a double underscore
  (`TAP_CAPSULE__SELECT`, `__METADATA`, `__SCHEMA`, `__LOAD_SCHEMA`, `__SELECT_FILTER`,
  `__USE_CACHED_CATALOG`, `__LOG_PARSER`, `TARGET_CAPSULE__DIALECT`, ...), and every setting again
  under the prefix of a plugin that inherits from ours (`TAP_CAPSULE_CSV_START_DATE` for
  `tap-capsule-csv`), whose name it gives in `MELTANO_EXTRACTOR_NAME` / `MELTANO_LOADER_NAME`.

Variables read besides settings: `<PREFIX>_LOGLEVEL` (the SDK's, and `--log-level`'s).
"""

from __future__ import annotations

import copy
import difflib
import os
import typing as t

if t.TYPE_CHECKING:
    from singer_sdk.plugin_base import PluginBase

# Config keys Meltano adds to a plugin's config file (none in Meltano 4.4).
MELTANO_CONFIG_KEYS: frozenset[str] = frozenset()
# Meltano's extras in the environment: `<PREFIX>__<EXTRA>`.
MELTANO_EXTRA_MARK = "__"
# Where Meltano names the plugin it runs (an inheriting plugin has a prefix of its own).
MELTANO_PLUGIN_NAME_VARIABLES = (
    "MELTANO_EXTRACTOR_NAME",
    "MELTANO_LOADER_NAME",
    "MELTANO_UTILITY_NAME",
)
# Variables with the plugin's prefix that are read, though they are not settings.
OWN_VARIABLES = frozenset({"LOGLEVEL"})
# The prefixes of this distribution's Singer executables: one may begin with another's.
OUR_PREFIXES = ("TAP_CAPSULE", "TARGET_CAPSULE", "TARGET_CAPSULE_BACKUP", "TARGET_CAPSULE_DUCKDB")


# The own settings of each command of this distribution (connection settings and the SDK's are
# everyone's). One config file may serve several commands (`tap-capsule --config b.json |
# target-capsule-backup --config b.json`; `capsule restore` and `capsule verify` on one file), so a
# command accepts another's setting and says it ignores it; a name that none knows is refused.
# tests/target/test_target_setting_names.py checks every plugin's settings are listed here.
COMMAND_SETTINGS: dict[str, frozenset[str]] = {
    "tap-capsule": frozenset(
        {
            "start_date",
            "page_size",
            "tombstones",
            "child_streams",
            "date_times_as_text",
            "entries_mode",
            "entries_lookback_days",
            "tasks_mode",
            "emit_activate_version_messages",
        }
    ),
    "target-capsule": frozenset(
        {
            "dry_run",
            "rejects_path",
            "change_log_path",
            "fail_on_rejects",
            "upsert_keys",
            "match_on_content",
            "nested_lists",
            "max_deletes",
            "max_changed_share",
            "force",
            "fill_empty",
            "retry_rejected",
            "pending_path",
            "plan_path",
        }
    ),
    "target-capsule-backup": frozenset({"backup_dir", "attachments"}),
    "capsule restore": frozenset({"default_owner", "owner_map"}),
}


def owner_of(name: str, program: str) -> str | None:
    """The other command whose setting `name` is, if any."""
    return next(
        (c for c, names in COMMAND_SETTINGS.items() if name in names and c != program), None
    )


def env_prefix(program: str) -> str:
    """`target-capsule` -> `TARGET_CAPSULE` (the SDK's and Meltano's variable prefix)."""
    return program.upper().replace("-", "_")


def plugin_setting_names(plugin: type[PluginBase]) -> frozenset[str]:
    """Every setting a Singer plugin class accepts.

    Its schema, the SDK's built-in settings, and any it names in `names_beyond_schema`: settings
    refused later with a reason of their own, or another command's settings in a config file the
    two share (known, and ignored).
    """
    schema = copy.deepcopy(plugin.config_jsonschema)
    plugin.append_builtin_config(schema)
    beyond = getattr(plugin, "names_beyond_schema", ())
    return frozenset(schema.get("properties", {})) | frozenset(beyond) | MELTANO_CONFIG_KEYS


def _hint(name: str, known: t.Iterable[str], shown: t.Callable[[str], str]) -> str:
    folded = {k.casefold(): k for k in known}
    close = difflib.get_close_matches(name.casefold(), list(folded), n=1, cutoff=0.6)
    return f"; did you mean {shown(folded[close[0]])}?" if close else ""


def _refusal(what: str, hint: str, listed_by: str) -> str:
    return f"{what}{hint or '.'} Nothing was done; {listed_by} lists the settings"


def unknown_setting(
    program: str,
    config: t.Mapping[str, t.Any],
    known: t.Iterable[str],
    listed_by: str | None = None,
    *,
    shared: bool = True,
) -> str | None:
    """One line naming the first config key that is no setting of `program`, or None.

    `listed_by`: what shows the settings, when not `<program> --about`; `shared`: the config may
    be shared with the other commands (their settings pass).
    """
    names = frozenset(known)
    for name in config:
        if name not in names and (not shared or owner_of(name, program) is None):
            hint = _hint(name, names, lambda k: f"`{k}`")
            return _refusal(
                f"unknown setting `{name}` in the config", hint, listed_by or f"`{program} --about`"
            )
    return None


def others_settings(
    program: str, config: t.Mapping[str, t.Any], known: t.Iterable[str]
) -> list[str]:
    """One line per setting of another command in the config: accepted, and ignored here."""
    names = frozenset(known)
    return [
        f"`{name}` is a setting of {owner}; {program} ignores it"
        for name in config
        if name not in names and (owner := owner_of(name, program)) is not None
    ]


def unknown_variable(
    program: str,
    known: t.Iterable[str],
    environ: t.Mapping[str, str] | None = None,
    *,
    prefix: str | None = None,
    listed_by: str | None = None,
) -> str | None:
    """One line naming the first `<PREFIX>_*` environment variable that is no setting, or None.

    `prefix`: the variables' prefix when it is not the program's name in capitals (`capsule
    sync` reads `CAPSULE_SYNC_*`); `listed_by`: what shows the settings, when not `--about`.

    Allowed besides `<PREFIX>_<SETTING>`: Meltano's extras (`<PREFIX>__*`), the variables of
    another of our executables whose prefix begins with ours (`TARGET_CAPSULE_BACKUP_*` for
    `target-capsule`), those of a Meltano plugin inheriting from ours (`<PREFIX>_<NAME>_<SETTING>`,
    as Meltano passes them), and `<PREFIX>_LOGLEVEL`.
    """
    environ = os.environ if environ is None else environ
    names = frozenset(known)
    upper = {k.upper(): k for k in names}
    prefix = prefix or env_prefix(program)
    others = [p + "_" for p in OUR_PREFIXES if p.startswith(prefix + "_")]
    others += [
        env_prefix(environ[v]) + "_"
        for v in MELTANO_PLUGIN_NAME_VARIABLES
        if environ.get(v) and env_prefix(environ[v]) != prefix
    ]
    for variable in sorted(environ):
        if not variable.startswith(prefix + "_"):
            continue
        rest = variable[len(prefix) + 1 :]
        if (
            rest in upper
            or rest in OWN_VARIABLES
            or rest.startswith("_")
            or MELTANO_EXTRA_MARK in rest
            or any(variable.startswith(other) for other in others)
            or any(rest.endswith("_" + setting) for setting in upper)  # an inheriting plugin's
        ):
            continue
        hint = _hint(rest, upper, lambda k: f"{prefix}_{k}")
        return _refusal(
            f"environment variable {variable} names no setting of {program}",
            hint,
            listed_by or f"`{program} --about`",
        )
    return None


def account_config_problem(
    program: str, config: t.Mapping[str, t.Any], plugin: type[PluginBase], *extra: str
) -> str | None:
    """An account command's config check: the keys `plugin` accepts, plus its own `extra`."""
    known = plugin_setting_names(plugin) | frozenset(extra)
    listed = f"`{plugin.name} --about`" + (f" (plus {', '.join(extra)})" if extra else "")
    return unknown_setting(program, config, known, listed)
