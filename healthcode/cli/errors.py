"""The one place where errors become exit codes and stderr messages."""

from __future__ import annotations

import json
import sys
from typing import NoReturn

from healthcode.core.errors import DocumentError, HealthcodeError, InputError, PluginError
from healthcode.core.storage.errors import DatabaseUnavailableError, SecretsError, StorageError

EXIT_OK = 0
EXIT_INVALID = 1
"""The input is not a well-formed document (or a check failed)."""
EXIT_USAGE = 2
"""Wrong options or arguments (Click's own convention)."""
EXIT_SOFTWARE = 3
"""A plugin, the installation or the operator's set-up is broken."""
EXIT_DO_NOT_ADMIT = 4
"""``verify``: the pass is genuine and current, but not green: do not admit."""
EXIT_UNAVAILABLE = 69
"""A service the command needs (the database) cannot be reached (sysexits' EX_UNAVAILABLE)."""


def exit_code_for(error: HealthcodeError) -> int:
    if isinstance(error, InputError | DocumentError):
        return EXIT_INVALID
    if isinstance(error, DatabaseUnavailableError):
        return EXIT_UNAVAILABLE
    if isinstance(error, PluginError | SecretsError | StorageError):
        return EXIT_SOFTWARE
    return EXIT_INVALID


def fail(error: HealthcodeError, *, as_json: bool) -> NoReturn:
    """Report ``error`` on stderr (JSON for scripts) and exit with its code."""
    if as_json:
        # Scripts read stdout; keep the error object there too, and the
        # human line on stderr.
        print(json.dumps({"ok": False, "error": error.as_dict()}, ensure_ascii=False))
    print(f"error [{error.code}]: {error.message_en}\n错误：{error.message_zh}", file=sys.stderr)
    raise SystemExit(exit_code_for(error))
