# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""``anomalib-cmdr --version`` / ``-V``: the plug-in's version and those of anomalib, torch and OpenVINO."""

from importlib.metadata import version

import pytest

import anomalib_cmdr
from anomalib_cmdr.cli.main import main


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_flag_prints_the_versions(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([flag]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"anomalib-cmdr {version('anomalib-cmdr')}",
        f"anomalib {version('anomalib')}",
        f"torch {version('torch')}",
        f"openvino {version('openvino')}",
    ]
    assert lines[0] == f"anomalib-cmdr {anomalib_cmdr.__version__}"


def test_help_lists_the_version_flag(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import anomalib.cli.cli

    monkeypatch.setattr(anomalib.cli.cli, "main", lambda: None)  # the plug-in's part of the help only
    assert main(["--help"]) == 0
    assert "  --version    print the versions of anomalib-cmdr" in capsys.readouterr().out
