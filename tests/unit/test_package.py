# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""The package reports the version that pyproject.toml defines (the one place it is written)."""

import ast
import re

import anomalib_cmdr
from tests.helpers import REPO_ROOT


def test_version_comes_from_pyproject() -> None:
    version = re.search(r'^version = "([^"]+)"', (REPO_ROOT / "pyproject.toml").read_text(), re.MULTILINE)
    assert version is not None and anomalib_cmdr.__version__ == version.group(1)


def test_changelog_has_unreleased_and_the_package_version_as_newest_release() -> None:
    """Keep a Changelog: an [Unreleased] section first, then the released versions, newest (the package's) first."""
    headings = re.findall(
        r"^## \[([^\]]+)\](?: - (\d{4}-\d{2}-\d{2}))?$", (REPO_ROOT / "CHANGELOG.md").read_text(), re.M
    )
    assert headings[0] == ("Unreleased", "")
    assert headings[1][0] == anomalib_cmdr.__version__ and headings[1][1], headings[:3]


def test_every_python_file_has_the_licence_header() -> None:
    files = [*REPO_ROOT.joinpath("src").rglob("*.py"), *REPO_ROOT.joinpath("tests").rglob("*.py")]
    missing = [str(path) for path in files if "SPDX-License-Identifier: Apache-2.0" not in path.read_text()[:200]]
    assert not missing


def test_every_public_class_and_function_has_an_example() -> None:
    definitions = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    offenders = []
    for path in sorted(REPO_ROOT.joinpath("src", "anomalib_cmdr").rglob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, definitions) and not node.name.startswith("_"):
                doc = ast.get_docstring(node) or ""
                if not re.search(r"^\s*Examples?:", doc, re.MULTILINE) and ">>>" not in doc:
                    offenders.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno} {node.name}")
    assert not offenders, "docstrings without an Example section:\n" + "\n".join(offenders)
