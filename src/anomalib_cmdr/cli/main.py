# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""``anomalib-cmdr``: anomalib's CLI with the plug-in loaded, plus the plug-in's own subcommands.

Every anomalib subcommand works unchanged (``anomalib-cmdr train --model CMDR ...``); the plug-in
adds:

- ``anomalib-cmdr synth ROOT``: write the embedded synthetic RGB + 3D dataset (MVTec 3D-AD layout).

Example:
    $ anomalib-cmdr synth ./datasets/Synthetic3D --image-size 128 --seed 0
    $ anomalib-cmdr train --model CMDR --data anomalib_cmdr.data.Synthetic3D
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

PLUGIN_COMMANDS: dict[str, tuple[str, Callable[[Sequence[str]], int]]] = {}


def _command(name: str, summary: str) -> Callable:
    def register(function: Callable[[Sequence[str]], int]) -> Callable[[Sequence[str]], int]:
        PLUGIN_COMMANDS[name] = (summary, function)
        return function

    return register


@_command("synth", "write the embedded synthetic RGB + 3D dataset (MVTec 3D-AD layout)")
def synth(argv: Sequence[str]) -> int:
    """Run ``anomalib-cmdr synth``.

    Args:
        argv (Sequence[str]): Arguments after ``synth``.

    Returns:
        int: Exit status.
    """
    from anomalib_cmdr.data.synthetic import CATEGORIES, DEFECT_TYPES, synthesize

    parser = argparse.ArgumentParser(
        prog="anomalib-cmdr synth",
        description="Synthesize RGB + organized point-cloud parts with geometric and appearance defects, laid out "
        "like MVTec 3D-AD. Existing categories are left untouched unless --overwrite is given.",
    )
    parser.add_argument("root", help="output folder (one sub-folder per category)")
    parser.add_argument("--categories", nargs="+", choices=CATEGORIES, default=None, help="default: all")
    parser.add_argument("--defect-types", nargs="+", choices=sorted(DEFECT_TYPES), default=None, help="default: all")
    parser.add_argument("--image-size", type=int, default=128, help="side of the images in pixels (default 128)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--num-train", type=int, default=20, help="normal training samples per category")
    parser.add_argument("--num-val", type=int, default=5, help="normal validation samples per category")
    parser.add_argument("--num-test-good", type=int, default=8, help="normal test samples per category")
    parser.add_argument("--num-test-defect", type=int, default=4, help="test samples per defect type and category")
    parser.add_argument("--overwrite", action="store_true", help="rewrite the generator's own files")
    parser.add_argument("--preview", default=None, help="also write a PNG preview of a few test samples here")
    args = parser.parse_args(list(argv))
    try:
        root = synthesize(
            args.root,
            categories=args.categories,
            image_size=args.image_size,
            seed=args.seed,
            num_train=args.num_train,
            num_val=args.num_val,
            num_test_good=args.num_test_good,
            num_test_defect=args.num_test_defect,
            defect_types=args.defect_types,
            overwrite=args.overwrite,
        )
    except ValueError as error:
        parser.error(str(error))
    print(f"Synthetic3D written to {root}")
    if args.preview:
        from anomalib_cmdr.data.synthetic import render_preview

        print(f"Preview written to {render_preview(root, args.preview)}")
    return 0


def _print_plugin_help() -> None:
    print("anomalib-cmdr: the anomalib CLI with the CMDR plug-in loaded.\n\nPlug-in commands:")
    for name, (summary, _) in PLUGIN_COMMANDS.items():
        print(f"  {name:<10} {summary}")
    print("\nanomalib commands (train, fit, test, predict, export, ...) follow:\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``anomalib-cmdr``.

    Args:
        argv (Sequence[str] | None): Arguments; ``None``: ``sys.argv[1:]``. Defaults to ``None``.

    Returns:
        int: Exit status.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in PLUGIN_COMMANDS:
        return PLUGIN_COMMANDS[argv[0]][1](argv[1:])
    if not argv or argv[0] in {"-h", "--help"}:
        _print_plugin_help()
    from anomalib.cli.cli import main as anomalib_main

    import anomalib_cmdr  # noqa: F401  registers CMDR and the data modules with anomalib's CLI

    sys.argv = ["anomalib-cmdr", *argv]
    anomalib_main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
