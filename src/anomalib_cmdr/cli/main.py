# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""``anomalib-cmdr``: anomalib's CLI with the plug-in loaded, plus the plug-in's own subcommands.

Every anomalib subcommand works unchanged (``anomalib-cmdr train --model CMDR ...``); the plug-in
adds:

- ``anomalib-cmdr synth ROOT``: write the embedded synthetic RGB + 3D dataset (MVTec 3D-AD layout).
- ``anomalib-cmdr synth-scans ROOT``: write synthetic raw profilometer scans (PLY + per-point labels) for
  :class:`~anomalib_cmdr.data.ScanFolder` (see ``docs/scans.md``).
- ``anomalib-cmdr benchmark --config FILE``: CMDR against anomalib's models, every model x category x seed
  through anomalib's Engine (see :mod:`anomalib_cmdr.benchmark`).
- ``anomalib-cmdr infer --model EXPORT --rgb PNG --xyz TIFF [--output DIR]``: score parts with an exported
  CMDR (OpenVINO or ONNX; see :mod:`anomalib_cmdr.deploy`).
- ``anomalib-cmdr --version`` (``-V``): the versions of anomalib-cmdr, anomalib, torch and OpenVINO.

Example:
    $ anomalib-cmdr synth ./datasets/Synthetic3D --image-size 128 --seed 0
    $ anomalib-cmdr train --model CMDR --data anomalib_cmdr.data.Synthetic3D
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

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

    Example:
        $ anomalib-cmdr synth ./datasets/Synthetic3D --categories disc --image-size 128 --seed 0
        $ anomalib-cmdr synth ./datasets/Synthetic3D --num-train 40 --overwrite --preview ./preview.png
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


@_command("synth-scans", "write synthetic profilometer scans (raw PLY point clouds with per-point labels)")
def synth_scans(argv: Sequence[str]) -> int:
    """Run ``anomalib-cmdr synth-scans``.

    Args:
        argv (Sequence[str]): Arguments after ``synth-scans``.

    Returns:
        int: Exit status.

    Example:
        $ anomalib-cmdr synth-scans ./datasets/FoamScans --seed 0
        $ anomalib-cmdr synth-scans ./datasets/FoamScans --defect-types burr tear --profiles 144 --overwrite
    """
    from anomalib_cmdr.data.scans.synthetic import DEFECT_TYPES, synthesize_scans

    parser = argparse.ArgumentParser(
        prog="anomalib-cmdr synth-scans",
        description="Synthesize laser-profilometer scans of cut foam blocks (burr, tear, missing material) as raw "
        "PLY point clouds with .labels.txt per-point labels, in the layout of anomalib_cmdr.data.ScanFolder. An "
        "existing folder is left untouched unless --overwrite is given.",
    )
    parser.add_argument("root", help="output folder (train/good, test/<good|defect type>)")
    parser.add_argument("--defect-types", nargs="+", choices=DEFECT_TYPES, default=None, help="default: all")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--num-train", type=int, default=10, help="normal training scans (default 10)")
    parser.add_argument("--num-test-good", type=int, default=4, help="normal test scans (default 4)")
    parser.add_argument("--num-test-defect", type=int, default=3, help="test scans per defect type (default 3)")
    parser.add_argument("--points-per-profile", type=int, default=192, help="points per profile (default 192)")
    parser.add_argument("--profiles", type=int, default=288, help="profiles per scan (default 288)")
    parser.add_argument("--overwrite", action="store_true", help="rewrite an existing folder's scans")
    args = parser.parse_args(list(argv))
    try:
        root = synthesize_scans(
            args.root,
            seed=args.seed,
            num_train=args.num_train,
            num_test_good=args.num_test_good,
            num_test_defect=args.num_test_defect,
            defect_types=args.defect_types,
            points_per_profile=args.points_per_profile,
            profiles=args.profiles,
            overwrite=args.overwrite,
        )
    except ValueError as error:
        parser.error(str(error))
    print(f"Synthetic scans written to {root}")
    return 0


@_command("benchmark", "benchmark CMDR against anomalib's models (model x category x seed)")
def benchmark(argv: Sequence[str]) -> int:
    """Run ``anomalib-cmdr benchmark``.

    Args:
        argv (Sequence[str]): Arguments after ``benchmark``.

    Returns:
        int: Exit status (1 when a job failed).

    Example:
        $ anomalib-cmdr benchmark --config configs/benchmark/synthetic.yaml
        $ anomalib-cmdr benchmark --config configs/benchmark/mvtec3d.yaml --categories bagel --seeds 0 1
    """
    parser = argparse.ArgumentParser(
        prog="anomalib-cmdr benchmark",
        description="Fit and test every model of the config on every category and seed with anomalib's Engine, "
        "each job in its own process; writes results.csv, summary.md and plots. Re-running resumes: finished jobs "
        "are skipped. The flags override the config.",
    )
    parser.add_argument("--config", required=True, help="benchmark YAML, e.g. configs/benchmark/synthetic.yaml")
    parser.add_argument("--root", help="data folder in the MVTec 3D-AD layout")
    parser.add_argument("--categories", nargs="+", help="default: the config's, else every folder under root")
    parser.add_argument("--models", nargs="+", help="labels of the config's models to run (default: all)")
    parser.add_argument("--seeds", nargs="+", type=int, help="seeds (default: the config's)")
    parser.add_argument("--output", help="output folder (default: the config's)")
    args = parser.parse_args(list(argv))

    from anomalib_cmdr.benchmark import BenchmarkConfig, run_benchmark
    from anomalib_cmdr.benchmark.runner import load_results

    try:
        config = BenchmarkConfig.from_yaml(args.config)
    except (OSError, ValueError) as error:
        parser.error(str(error))
    if args.root:
        config.root, config.synthetic = Path(args.root), None if Path(args.root).is_dir() else config.synthetic
    if args.categories:
        config.categories = args.categories
    if args.seeds:
        config.seeds = args.seeds
    if args.output:
        config.output = Path(args.output)
    if args.models:
        unknown = sorted(set(args.models) - {spec.label for spec in config.models})
        if unknown:
            parser.error(f"--models: {unknown} not in the config; its labels: {[s.label for s in config.models]}")
        config.models = [spec for spec in config.models if spec.label in args.models]
    path = run_benchmark(config)
    failed = int((load_results(path)["status"] != "ok").sum())
    print(f"Results: {path}; summary: {path.parent / 'summary.md'}" + (f"; {failed} failed job(s)" if failed else ""))
    return 1 if failed else 0


@_command("infer", "score RGB + point cloud files with an exported (OpenVINO/ONNX) CMDR")
def infer(argv: Sequence[str]) -> int:
    """Run ``anomalib-cmdr infer``.

    Args:
        argv (Sequence[str]): Arguments after ``infer``.

    Returns:
        int: Exit status.

    Example:
        $ anomalib-cmdr infer --model results/CMDR/latest/weights/openvino --rgb part.png --xyz part.tiff
        $ anomalib-cmdr infer --model results/CMDR/latest/weights/openvino --input ./parts --output ./scored
    """
    parser = argparse.ArgumentParser(
        prog="anomalib-cmdr infer",
        description="Score parts with a CMDR exported by `anomalib export --model CMDR --export_type openvino` "
        "(or onnx). Prints score and label per sample; with --output, writes a picture per sample and "
        "predictions.csv there.",
    )
    parser.add_argument("--model", required=True, help="export folder (.../weights/openvino) or its model.xml")
    parser.add_argument("--rgb", help="RGB image, or a folder of images (paired with --xyz by file name)")
    parser.add_argument("--xyz", help="organized point cloud TIFF, or a folder of them")
    parser.add_argument("--input", help="a folder of samples (rgb/NAME.png + xyz/NAME.tiff, or NAME.png + NAME.tiff)")
    parser.add_argument("--output", help="folder for the pictures and predictions.csv")
    parser.add_argument("--device", default="CPU", help="OpenVINO device: CPU (default), GPU or AUTO")
    args = parser.parse_args(list(argv))

    from anomalib_cmdr.data.io import DataFileError
    from anomalib_cmdr.deploy.folder_inference import infer_files
    from anomalib_cmdr.deploy.inferencer import DeviceUnavailableError

    try:
        rows = infer_files(args.model, args.rgb, args.xyz, args.input, args.output, args.device, report=print)
    except (DataFileError, DeviceUnavailableError, FileNotFoundError, ValueError) as error:
        parser.exit(2, f"anomalib-cmdr infer: error: {error}\n")
    anomalous = sum(1 for row in rows if row["pred_label"])
    print(
        f"{len(rows)} sample(s), {anomalous} anomalous"
        + (f"; pictures and predictions.csv in {args.output}" if args.output else "")
    )
    return 0


def pd_read(path: Path):
    """``results.csv`` as a table (pandas imported only for this command).

    Example:
        >>> pd_read(Path("results/benchmark/results.csv")).columns[:3].tolist()  # doctest: +SKIP
        ['model', 'category', 'seed']
    """
    import pandas as pd

    return pd.read_csv(path)


VERSION_FLAGS = ("--version", "-V")
"""Flags that print :func:`version_text` instead of running a command."""


def version_text() -> str:
    """The versions ``anomalib-cmdr --version`` prints: the plug-in's, then anomalib's, torch's and OpenVINO's.

    The plug-in's version is ``anomalib_cmdr.__version__``, read from the installed distribution's metadata
    (``importlib.metadata.version("anomalib-cmdr")``); the others come from their distributions' metadata too, so
    nothing heavy is imported.

    Returns:
        str: One ``<name> <version>`` line per package, ``anomalib-cmdr`` first.

    Example:
        >>> version_text().splitlines()[0].startswith("anomalib-cmdr ")
        True
    """
    from importlib.metadata import PackageNotFoundError, version

    from anomalib_cmdr import __version__

    lines = [f"anomalib-cmdr {__version__}"]
    for distribution in ("anomalib", "torch", "openvino"):
        try:
            lines.append(f"{distribution} {version(distribution)}")
        except PackageNotFoundError:
            lines.append(f"{distribution} not installed")
    return "\n".join(lines)


def _print_plugin_help() -> None:
    print("anomalib-cmdr: the anomalib CLI with the CMDR plug-in loaded.\n\nPlug-in commands:")
    for name, (summary, _) in PLUGIN_COMMANDS.items():
        print(f"  {name:<12} {summary}")
    print(f"  {VERSION_FLAGS[0]:<12} print the versions of anomalib-cmdr, anomalib, torch and openvino (also -V)")
    print("\nanomalib commands (train, fit, test, predict, export, ...) follow:\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``anomalib-cmdr``.

    Args:
        argv (Sequence[str] | None): Arguments; ``None``: ``sys.argv[1:]``. Defaults to ``None``.

    Returns:
        int: Exit status.

    Example:
        $ anomalib-cmdr --version
        $ anomalib-cmdr synth ./datasets/Synthetic3D
        $ anomalib-cmdr train --model CMDR --data anomalib_cmdr.data.Synthetic3D
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in VERSION_FLAGS:
        print(version_text())
        return 0
    if argv and argv[0] in PLUGIN_COMMANDS:
        return PLUGIN_COMMANDS[argv[0]][1](argv[1:])
    if not argv or argv[0] in {"-h", "--help"}:
        _print_plugin_help()
    from anomalib.cli.cli import main as anomalib_main

    import anomalib_cmdr  # noqa: F401  registers CMDR and the data modules with anomalib's CLI
    from anomalib_cmdr.cli.seed import seed_anomalib_cli

    seed_anomalib_cli()  # in case the plug-in was imported before the CLI

    sys.argv = ["anomalib-cmdr", *argv]
    anomalib_main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
