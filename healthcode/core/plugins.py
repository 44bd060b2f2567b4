"""Building the plugin manager.

Built-in plugins are declared in the ``healthcode`` entry-point group of this
distribution, exactly like third-party plugins, so nothing built in is
privileged. ``HEALTHCODE_DISABLE_PLUGIN_AUTOLOAD=1`` keeps only the built-ins
(for tests and for locked-down deployments).
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import os
from collections.abc import Iterable
from types import ModuleType

import attrs
import pluggy

from healthcode.core import hookspecs
from healthcode.core.errors import PluginError

ENTRY_POINT_GROUP = "healthcode"
DISTRIBUTION = "healthcode"
DISABLE_AUTOLOAD_ENV = "HEALTHCODE_DISABLE_PLUGIN_AUTOLOAD"

# The built-in plugins, in the order the entry points of this distribution
# declare them. Used only when the package runs from a source tree without
# installed metadata; otherwise the entry points are the source of truth.
BUILTIN_PLUGINS: tuple[str, ...] = (
    "healthcode.plugins.id_card",
    "healthcode.plugins.fpr_card",
    "healthcode.plugins.hkmo_permit",
    "healthcode.plugins.passport",
    "healthcode.plugins.mrz_ocr",
    "healthcode.plugins.face",
    "healthcode.plugins.authority_status",
    "healthcode.plugins.peer_status",
)


def autoload_disabled() -> bool:
    return os.environ.get(DISABLE_AUTOLOAD_ENV, "").strip().lower() not in ("", "0", "false", "no")


def _entry_points() -> Iterable[importlib.metadata.EntryPoint]:
    return importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)


def new_plugin_manager(*, autoload: bool | None = None) -> pluggy.PluginManager:
    """A fresh plugin manager with hook specs and plugins loaded and checked.

    ``autoload=None`` follows ``HEALTHCODE_DISABLE_PLUGIN_AUTOLOAD``;
    ``False`` loads only the built-in plugins.
    """
    if autoload is None:
        autoload = not autoload_disabled()
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    loaded_builtin = False
    for ep in _entry_points():
        builtin = ep.dist is not None and ep.dist.name == DISTRIBUTION
        if not builtin and not autoload:
            continue
        plugin = ep.load()
        if pm.has_plugin(ep.name) or pm.is_registered(plugin):
            continue
        pm.register(plugin, name=ep.name)
        loaded_builtin = loaded_builtin or builtin
    if not loaded_builtin:
        # Running from a source tree without installed metadata.
        for module_name in BUILTIN_PLUGINS:
            module = importlib.import_module(module_name)
            if not pm.is_registered(module):
                pm.register(module, name=module_name.rsplit(".", 1)[-1])
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(
            f"A plugin implements an unknown hook: {exc}",
            f"插件实现了未定义的钩子：{exc}",
            details={"plugin": str(exc.plugin)},
        ) from exc
    return pm


@functools.cache
def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, built on first use."""
    return new_plugin_manager()


@attrs.frozen
class PluginInfo:
    name: str
    version: str
    hooks: tuple[str, ...]
    module: str


def list_plugins(pm: pluggy.PluginManager | None = None) -> list[PluginInfo]:
    """Each registered plugin with its distribution version and the hooks it implements."""
    pm = pm or get_plugin_manager()
    versions = {ep.name: ep.dist.version for ep in _entry_points() if ep.dist is not None}
    infos = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:
            continue
        hooks = tuple(sorted(caller.name for caller in pm.get_hookcallers(plugin) or ()))
        version = versions.get(name) or _module_version(plugin)
        module = plugin.__name__ if isinstance(plugin, ModuleType) else type(plugin).__module__
        infos.append(PluginInfo(name=name, version=version, hooks=hooks, module=module))
    return sorted(infos, key=lambda info: info.name)


def _module_version(plugin: object) -> str:
    version = getattr(plugin, "__version__", None)
    if isinstance(version, str):
        return version
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
