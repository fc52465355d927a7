# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Start-up hook that lets the stock ``anomalib`` command find ``--model CMDR``.

anomalib 2.7 has no plug-in registry: its CLI resolves ``--model NAME`` among the *imported*
subclasses of ``AnomalibModule``. The ``anomalib_cmdr.pth`` file installed into site-packages calls
:func:`install` at interpreter start-up. It only registers a :class:`sys.meta_path` finder; nothing
heavy is imported. When (and only when) ``anomalib.cli.cli`` is imported, the finder lets the real
module load and then imports :mod:`anomalib_cmdr`, which registers ``CMDR`` and the data modules.

This module must stay import-light: it runs in every Python process of the environment.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from types import ModuleType

_TRIGGER = "anomalib.cli.cli"


class _LoadPluginAfter(importlib.abc.Loader):
    """Loader wrapper: runs the wrapped loader, then imports the plug-in."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        try:
            importlib.import_module("anomalib_cmdr")
        except Exception as error:  # pragma: no cover - a broken plug-in must not break anomalib
            sys.stderr.write(f"anomalib-cmdr: plug-in not loaded ({error!r}); use `anomalib-cmdr` for details.\n")


class _PluginFinder(importlib.abc.MetaPathFinder):
    """Finds ``anomalib.cli.cli`` with the other finders and wraps its loader."""

    def find_spec(self, fullname: str, path=None, target=None):
        if fullname != _TRIGGER:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _LoadPluginAfter(spec.loader)
                return spec
        return None


def install() -> None:
    """Register the finder once (idempotent); a no-op when anomalib's CLI is already imported."""
    if _TRIGGER in sys.modules:
        importlib.import_module("anomalib_cmdr")
        return
    if not any(isinstance(finder, _PluginFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _PluginFinder())
