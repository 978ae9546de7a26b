"""kubernetes_asyncio's generated client, imported name by name when first used.

The package's `client`, `client.api` and `client.models` modules import every one of their
840 generated classes up front: 860 modules and about 58 MiB of resident memory in each
operator, CLI and web process, and most of a second of start-up, for the dozen classes
alecton uses. Installed before kubernetes_asyncio is first imported, these three packages
become lazy (PEP 562 module `__getattr__`): `client.CoreV1Api` or `models.V1Lease` imports its
own module on first access, exactly as the eager `from ... import ...` line would have.
Anything unexpected (another layout, already imported) leaves the eager import in place.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
import types
from pathlib import Path

_PACKAGES = ("kubernetes_asyncio.client", "kubernetes_asyncio.client.api", "kubernetes_asyncio.client.models")
# The generated `__init__.py` files are one `from <module> import <Name>` line per class.
_IMPORT_LINE = re.compile(r"^from (kubernetes_asyncio\.client[\w.]*) import (\w+)\s*$", re.MULTILINE)


class _LazyPackage(types.ModuleType):
    """A package whose public names are imported from their modules on first access."""

    def __init__(self, name: str, init: Path, where: dict[str, str]) -> None:
        super().__init__(name)
        self.__file__ = str(init)
        self.__path__ = [str(init.parent)]
        self.__package__ = name
        self.__spec__ = importlib.util.spec_from_file_location(
            name, init, submodule_search_locations=self.__path__
        )
        self.__all__ = sorted(where)
        self._where = where

    def __getattr__(self, attribute: str) -> object:
        module = self.__dict__.get("_where", {}).get(attribute)
        if module is None:
            # Not one of the package's names: the import system then tries a submodule.
            raise AttributeError(f"module {self.__name__!r} has no attribute {attribute!r}")
        value = getattr(importlib.import_module(module), attribute)
        setattr(self, attribute, value)  # the next access is a plain attribute read
        return value


def install() -> bool:
    """Make the generated packages lazy; False when they are already imported or not found."""
    if any(name in sys.modules for name in ("kubernetes_asyncio", *_PACKAGES)):
        return False
    spec = importlib.util.find_spec("kubernetes_asyncio")  # finds it without running it
    if spec is None or not spec.submodule_search_locations:
        return False
    root = Path(next(iter(spec.submodule_search_locations)))
    packages: dict[str, _LazyPackage] = {}
    for name in _PACKAGES:
        init = root.joinpath(*name.split(".")[1:], "__init__.py")
        try:
            where = {attribute: module for module, attribute in _IMPORT_LINE.findall(init.read_text())}
        except OSError:
            return False
        if not where:
            return False
        packages[name] = _LazyPackage(name, init, where)
    sys.modules.update(packages)
    # `client.api` and `client.models` are also attributes of `client`, as after an eager import.
    client = packages["kubernetes_asyncio.client"]
    client.api = packages["kubernetes_asyncio.client.api"]  # type: ignore[attr-defined]
    client.models = packages["kubernetes_asyncio.client.models"]  # type: ignore[attr-defined]
    return True
