"""Resolve agents, policies and recipes "by path if it exists, else by built-in name".

Built-ins live at the repository root (agents/, policies/, recipes/) in a source checkout and
under aidsafe/_builtin/ inside an installed wheel (see pyproject's force-include).
"""

from __future__ import annotations

from pathlib import Path

from aidsafe.errors import AidsafeError

__all__ = ["ResourceNotFoundError", "builtin_dir", "builtin_names", "resolve_resource"]


class ResourceNotFoundError(AidsafeError):
    """`resolve_resource` found neither a file nor a built-in by that name (callers catch the type)."""


_PACKAGE_DIR = Path(__file__).resolve().parent.parent  # aidsafe/


def builtin_dir(kind: str) -> Path:
    """The folder of built-in `kind` files ("agents", "policies", "recipes")."""
    installed = _PACKAGE_DIR / "_builtin" / kind
    if installed.is_dir():
        return installed
    return _PACKAGE_DIR.parent / kind


def builtin_names(kind: str, subdir: str = "") -> list[str]:
    folder = builtin_dir(kind) / subdir
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def resolve_resource(ref: str | Path, kind: str, subdir: str = "") -> Path:
    """A YAML file path for `ref`: an existing path, else a built-in of that name."""
    path = Path(ref).expanduser()
    if path.is_file():
        return path.resolve()
    candidate = builtin_dir(kind) / subdir / f"{ref}.yaml"
    if "/" not in str(ref) and candidate.is_file():
        return candidate
    if path.exists():  # a directory, a FIFO, a device: the loader names what it is
        return path
    label = f"{kind}/{subdir}".rstrip("/")
    names = ", ".join(builtin_names(kind, subdir)) or "none"
    raise ResourceNotFoundError(f"{ref}: no such file and no built-in {label} of that name; built-ins: {names}")
