"""Templates of a plugin distribution, one per kind of plugin, and the function
that writes one out (``healthcode plugins new``).

A distribution holds ``pyproject.toml`` (with the ``healthcode`` entry point),
the plugin module (every hook of its kind, each with a docstring saying what
to return; the example bodies keep the conformance suite's rules), a README,
and a test module that runs the conformance suite. The templates are the
``*.tmpl`` files beside this module, filled with ``string.Template``.
"""

from __future__ import annotations

import importlib.resources
import re
import string
from collections.abc import Mapping
from pathlib import Path

import healthcode
from healthcode.core.errors import InputError

__all__ = [
    "HOOKS_BY_KIND",
    "PLUGIN_KINDS",
    "InvalidPluginNameError",
    "PluginDirectoryNotEmptyError",
    "module_name",
    "render_plugin",
]

HOOKS_BY_KIND: Mapping[str, tuple[str, ...]] = {
    "document": (
        "healthcode_document_types",
        "healthcode_parse_document",
        "healthcode_validate_document",
        "healthcode_mask_document",
    ),
    "status-source": ("healthcode_resolve_status",),
    "face": (
        "healthcode_detect_faces",
        "healthcode_assess_face_quality",
        "healthcode_face_template",
        "healthcode_compare_templates",
        "healthcode_liveness_actions",
        "healthcode_check_liveness",
        "healthcode_presentation_attack_score",
        "healthcode_portrait_region",
    ),
    "ocr": ("healthcode_read_machine_zone",),
}
"""The hooks each kind of plugin's template implements."""

PLUGIN_KINDS = tuple(HOOKS_BY_KIND)

_NAME = re.compile(r"[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*")
_MAX_NAME = 60


class InvalidPluginNameError(InputError):
    """The name given to ``plugins new`` cannot name a distribution and its module."""

    code = "invalid_plugin_name"
    default_en = (
        "A plugin name is lower-case letters and digits, words joined by '-' or '_', "
        "beginning with a letter (at most 60 characters), e.g. healthcode-xx-card."
    )
    default_zh = (
        "插件名称只能由小写字母和数字组成，单词之间以“-”或“_”连接，并以字母开头"
        "（最多 60 个字符），例如 healthcode-xx-card。"
    )


class PluginDirectoryNotEmptyError(InputError):
    """``plugins new`` never writes over files: the target directory holds some."""

    code = "plugin_directory_not_empty"
    default_en = "The plugin's directory already exists and is not empty; choose another --dir."
    default_zh = "插件目录已存在且不为空，请用 --dir 另选目录。"


def module_name(name: str) -> str:
    """The plugin's import name: the distribution name with ``-`` as ``_``."""
    if len(name) > _MAX_NAME or not _NAME.fullmatch(name):
        raise InvalidPluginNameError(details={"length": len(name)})
    return name.replace("-", "_")


def _values(name: str, kind: str) -> dict[str, str]:
    module = module_name(name)
    words = [w for w in re.split(r"[-_]", name) if w != "healthcode"] or [name]
    letters = re.sub(r"[^a-z]", "", "".join(words)).upper()
    prefix = (letters + "ZZ")[:2]
    digits = "123456"
    weights = (7, 3, 1)
    check = str(sum(int(d) * weights[i % 3] for i, d in enumerate(digits)) % 10)
    hooks = "\n".join(f"- `{hook}`" for hook in HOOKS_BY_KIND[kind])
    return {
        "name": name,
        "module": module,
        "kind": kind,
        "kind_id": module,
        "title": " ".join(w.capitalize() for w in words),
        "prefix": prefix,
        "example": f"{prefix}{digits}{check}",
        "hooks": hooks,
        # The release generating the plugin: its hooks and rules are the ones
        # the generated code and tests use.
        "requires": ".".join(healthcode.__version__.split(".")[:2]),
    }


def _template(path: str) -> string.Template:
    text = importlib.resources.files(__name__).joinpath(path).read_text(encoding="utf-8")
    return string.Template(text)


def render_plugin(name: str, kind: str, directory: Path) -> list[Path]:
    """Write the distribution ``name`` of ``kind`` under ``directory / name``.

    Returns the files written. Raises ``InvalidPluginNameError`` and
    ``PluginDirectoryNotEmptyError``; ``kind`` is one of ``PLUGIN_KINDS``.
    """
    if kind not in HOOKS_BY_KIND:
        raise ValueError(f"kind must be one of {', '.join(PLUGIN_KINDS)}")
    values = _values(name, kind)
    module = values["module"]
    target = directory / name
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise PluginDirectoryNotEmptyError(details={"directory": str(target)})
    folder = kind.replace("-", "_")
    files = {
        Path("pyproject.toml"): "common/pyproject.toml.tmpl",
        Path("README.md"): "common/README.md.tmpl",
        Path(module) / "__init__.py": "common/__init__.py.tmpl",
        Path(module) / "plugin.py": f"{folder}/plugin.py.tmpl",
        Path("tests") / f"test_{module}.py": f"{folder}/test_plugin.py.tmpl",
    }
    written = []
    for relative, template in files.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_template(template).substitute(values), encoding="utf-8")
        written.append(path)
    return written
