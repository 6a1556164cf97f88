r"""Secret settings never reach a log line, an error message or a file, in any form.

A secret can show up in forms other than the string in the settings: with the whitespace a copy and
paste left around it (`Invalid header value b'Bearer …\\n'`), percent- or base64-encoded, JSON- or
repr-escaped, or cut short by a message that truncates. `Redactor` masks all of these: every form
of each secret, and any run of `WINDOW` or more characters copied from one. Both plugins put it in
front of every log handler (so SDK and library messages are covered too) and of uncaught
exceptions; the target's rejects file uses it for reasons and record values.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import sys
import traceback
import typing as t
from urllib.parse import quote, quote_plus

if t.TYPE_CHECKING:
    import types

SECRET_SETTINGS = ("access_token", "refresh_token", "client_id", "client_secret")
MASK = "***"
WINDOW = 8  # a run of this many characters copied from a secret is masked as well


def secret_values(
    config: t.Mapping[str, t.Any], keys: t.Iterable[str] = SECRET_SETTINGS
) -> list[str]:
    """The secret settings' values as given and as used (stripped of surrounding whitespace)."""
    values: set[str] = set()
    for key in keys:
        value = config.get(key)
        if value:
            values.update({str(value), str(value).strip()})
    return sorted(values - {""}, key=len, reverse=True)


def _forms(secret: str) -> set[str]:
    forms = {secret, quote(secret, safe=""), quote_plus(secret), repr(secret)[1:-1]}
    forms.add(json.dumps(secret)[1:-1])
    raw = secret.encode()
    forms.add(base64.b64encode(raw).decode().rstrip("="))
    forms.add(base64.urlsafe_b64encode(raw).decode().rstrip("="))
    return {f for f in forms if f}


class Redactor:
    """Masks every form of a set of secrets in text."""

    def __init__(self, secrets: t.Iterable[str], min_length: int = 1) -> None:
        """Prepare the forms and the windows of each secret of at least `min_length` characters."""
        self.forms: list[str] = []
        self.windows: set[str] = set()
        for secret in {s for s in secrets if s and len(s.strip()) >= min_length}:
            forms = _forms(secret) | _forms(secret.strip())
            self.forms.extend(forms)
            for form in forms:
                if len(form) >= WINDOW:
                    self.windows.update(form[i : i + WINDOW] for i in range(len(form) - WINDOW + 1))
        self.forms.sort(key=len, reverse=True)

    def __bool__(self) -> bool:
        """Whether there is anything to mask."""
        return bool(self.forms)

    def redact(self, text: str) -> str:
        """`text` with every form of every secret, and every long run of one, masked."""
        if not self.forms or not text:
            return text
        for form in self.forms:
            if form in text:
                text = text.replace(form, MASK)
        if not self.windows or len(text) < WINDOW:
            return text
        covered = [False] * len(text)
        hit = False
        for i in range(len(text) - WINDOW + 1):
            if text[i : i + WINDOW] in self.windows:
                hit = True
                for j in range(i, i + WINDOW):
                    covered[j] = True
        if not hit:
            return text
        out: list[str] = []
        for i, ch in enumerate(text):
            if not covered[i]:
                out.append(ch)
            elif i == 0 or not covered[i - 1]:
                out.append(MASK)
        return "".join(out)


class RedactingFormatter(logging.Formatter):
    """Formats with the handler's own formatter, then masks secrets in the whole line."""

    def __init__(self, inner: logging.Formatter | None, redactor: Redactor) -> None:
        """Wrap `inner` (the SDK's console formatter, or the default)."""
        super().__init__()
        self.inner = inner or logging.Formatter()
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        """The inner formatter's text (message, exception, stack), masked."""
        return self.redactor.redact(self.inner.format(record))


def install(config: t.Mapping[str, t.Any], keys: t.Iterable[str] = SECRET_SETTINGS) -> Redactor:
    """Mask the settings' secrets in every log handler of the process and in uncaught errors."""
    # A secret of a few characters would mask that text everywhere in the log; none is that short.
    redactor = Redactor(secret_values(config, keys), min_length=4)
    if not redactor:
        return redactor
    loggers = [logging.getLogger()] + [
        lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)
    ]
    for lg in loggers:
        for handler in lg.handlers:
            current = handler.formatter
            if isinstance(current, RedactingFormatter):
                current.redactor = _merged(current.redactor, redactor)
            else:
                handler.setFormatter(RedactingFormatter(current, redactor))
    global _for_uncaught  # one process-wide hook, fed by every plugin instance
    _for_uncaught = redactor if _for_uncaught is None else _merged(_for_uncaught, redactor)
    if sys.excepthook is not _uncaught:
        sys.excepthook = _uncaught
    return redactor


_for_uncaught: Redactor | None = None


def _uncaught(
    kind: type[BaseException], error: BaseException, tb: types.TracebackType | None
) -> None:
    """Print an uncaught error's traceback as Python would, with every secret masked."""
    text = "".join(traceback.format_exception(kind, error, tb))
    sys.stderr.write(_for_uncaught.redact(text) if _for_uncaught else text)


def _merged(a: Redactor, b: Redactor) -> Redactor:
    merged = Redactor(())
    merged.forms = sorted(set(a.forms) | set(b.forms), key=len, reverse=True)
    merged.windows = a.windows | b.windows
    return merged


def install_early(config: object, env_prefix: str) -> Redactor:
    """`install` from a plugin's raw `config` argument, before the SDK parses or logs it.

    `config` is what the SDK's plugin class takes: a dict, a file path or a list of them; the
    plugin's settings may also come from environment variables (`TARGET_CAPSULE_ACCESS_TOKEN`).
    """
    merged: dict[str, t.Any] = {}
    items = config if isinstance(config, (list, tuple)) else [config]
    for item in items:
        if isinstance(item, dict):
            merged.update(item)
        elif isinstance(item, (str, os.PathLike)) and str(item) != "ENV":
            try:
                with open(item, encoding="utf-8") as handle:
                    loaded = json.load(handle)
            except (OSError, ValueError):
                continue
            if isinstance(loaded, dict):
                merged.update(loaded)
    found = [merged.get(key) for key in SECRET_SETTINGS]
    found += [os.environ.get(f"{env_prefix}_{key}".upper()) for key in SECRET_SETTINGS]
    values = {  # a number given as a token is still a token (and the SDK would print it)
        str(i): str(v)
        for i, v in enumerate(found)
        if isinstance(v, (str, int, float)) and not isinstance(v, bool)
    }
    return install(values, keys=values)
