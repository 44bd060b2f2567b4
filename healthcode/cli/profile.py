"""Holder profiles: what the holder CLI remembers between commands.

After ``healthcode holder enroll`` the server's URL, the subject id and the
path of the device key are kept in a small JSON file per profile name
(``--profile NAME``, default ``default``), so that later commands need none of
them::

    ~/.config/healthcode/profiles/default.json     (HEALTHCODE_PROFILE_DIR moves it)

The file is written with mode 0600 and holds no document number and no name:
the subject id is an opaque keyed hash, and the device key stays in its own
file (only its path is kept). Options given on the command line win over the
profile; the profile wins over nothing.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import attrs
import typer
from attrs import frozen

from healthcode.core.errors import InputError

if TYPE_CHECKING:
    from healthcode.core.passes import HolderDevice

PROFILE_DIR_ENV = "HEALTHCODE_PROFILE_DIR"
PROFILE_ENV = "HEALTHCODE_PROFILE"
DEFAULT_PROFILE = "default"
MAX_PROFILE_BYTES = 8192
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_SUBJECT = re.compile(r"[0-9a-f]{64}")
_FIELDS = ("server", "subject_id", "device_key")

ProfileOption = Annotated[
    str,
    typer.Option(
        "--profile",
        envvar=PROFILE_ENV,
        help="Holder profile: remembers the server, subject id and device key after enrollment.",
    ),
]


class ProfileInvalidError(InputError):
    code = "profile_invalid"
    default_en = "The holder profile file is damaged; enroll again or remove it."
    default_zh = "持有人配置文件已损坏，请重新登记或删除该文件。"


class ProfileMissingError(InputError):
    code = "profile_missing"
    default_en = "This command needs a value the holder profile does not have."
    default_zh = "此命令需要的信息在持有人配置中不存在。"


@frozen
class Profile:
    """What one holder profile remembers; never a document number or a name."""

    name: str
    server: str | None = None
    """Base URL of the service the holder enrolled with."""
    subject_id: str | None = None
    """The holder's subject id (64 hex characters, opaque)."""
    device_key: str | None = None
    """Absolute path of the holder's device key file (private PEM, 0600)."""

    def as_dict(self) -> dict[str, Any]:
        return {field: getattr(self, field) for field in _FIELDS}


def profile_dir() -> Path:
    """Where profiles live: ``$HEALTHCODE_PROFILE_DIR``, else the user config dir."""
    configured = os.environ.get(PROFILE_DIR_ENV, "").strip()
    if configured:
        return Path(configured)
    import platformdirs

    return platformdirs.user_config_path("healthcode", appauthor=False) / "profiles"


def profile_path(name: str) -> Path:
    if not _NAME.fullmatch(name):
        raise ProfileInvalidError(
            "A profile name is 1 to 64 letters, digits, '.', '_' or '-'.",
            "配置名须为 1 至 64 个字母、数字、“.”、“_”或“-”。",
            details={"reason": "name"},
        )
    return profile_dir() / f"{name}.json"


def load_profile(name: str) -> Profile:
    """The profile called ``name``; an empty one when none was saved yet."""
    path = profile_path(name)
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_PROFILE_BYTES + 1)
    except FileNotFoundError:
        return Profile(name)
    except OSError:
        raise ProfileInvalidError(details={"reason": "unreadable", "path": str(path)}) from None
    try:
        data = json.loads(raw.decode("utf-8")) if len(raw) <= MAX_PROFILE_BYTES else None
    except (ValueError, RecursionError):
        data = None
    if not isinstance(data, dict) or any(
        not (data.get(f) is None or isinstance(data.get(f), str)) for f in _FIELDS
    ):
        raise ProfileInvalidError(details={"reason": "format", "path": str(path)})
    subject = data.get("subject_id")
    if subject is not None and not _SUBJECT.fullmatch(subject):
        raise ProfileInvalidError(details={"reason": "subject_id", "path": str(path)})
    return Profile(name, data.get("server"), subject, data.get("device_key"))


def save_profile(profile: Profile) -> Path:
    """Write ``profile`` (mode 0600, replacing the old file at once); its path."""
    path = profile_path(profile.name)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(profile.as_dict(), fh, indent=2)
        fh.write("\n")
    os.replace(tmp, path)
    return path


def remember(
    name: str, *, server: str | None, subject_id: str | None, device_key: Path | None
) -> Path:
    """Update the profile with the values given (others kept); its path."""
    old = load_profile(name)
    new = attrs.evolve(
        old,
        server=server if server is not None else old.server,
        subject_id=subject_id if subject_id is not None else old.subject_id,
        device_key=str(device_key.resolve()) if device_key is not None else old.device_key,
    )
    return save_profile(new)


@frozen
class HolderSettings:
    """The server, device key and subject a holder command uses."""

    profile: str
    server: str | None
    key: Path | None
    subject: str | None

    def need_server(self) -> str:
        if self.server is None:
            raise _missing(self.profile, "--server URL (or HEALTHCODE_SERVER)", "server")
        return self.server.rstrip("/")

    def need_key(self) -> Path:
        if self.key is None:
            raise _missing(self.profile, "--key FILE (the file `passes device-key` wrote)", "key")
        return self.key

    def need_subject(self) -> str:
        if self.subject is None:
            raise _missing(self.profile, "--subject ID", "subject")
        return self.subject


def _missing(profile: str, option: str, what: str) -> ProfileMissingError:
    return ProfileMissingError(
        f"No {what} given and the holder profile '{profile}' has none: give {option}, "
        f"or enroll first with `healthcode holder enroll` (it remembers the {what}).",
        f"未提供{_ZH[what]}，持有人配置“{profile}”中也没有：请使用 {option}，"
        f"或先用 `healthcode holder enroll` 登记（登记后会记住{_ZH[what]}）。",
        details={"missing": what, "profile": profile},
    )


_ZH = {"server": "服务器地址", "key": "设备密钥", "subject": "主体编号"}


def holder_settings(
    profile: str, server: str | None, key: Path | None, subject: str | None
) -> HolderSettings:
    """Options given win; the profile fills in the rest."""
    saved = load_profile(profile)
    return HolderSettings(
        profile=profile,
        server=server or saved.server,
        key=key or (Path(saved.device_key) if saved.device_key else None),
        subject=subject or saved.subject_id,
    )


def load_device(path: Path) -> HolderDevice:
    """The holder's device key from ``path``; the error names the file to give."""
    from healthcode.core.passes import HolderDevice
    from healthcode.core.passes.errors import HolderKeyError

    try:
        return HolderDevice.load(path)
    except HolderKeyError as exc:
        raise HolderKeyError(
            f"The device key {path} cannot be used: give the private key file "
            "`healthcode passes device-key` wrote.",
            f"设备密钥 {path} 不可用：请使用 `healthcode passes device-key` 生成的私钥文件。",
            details=exc.details,
        ) from None
