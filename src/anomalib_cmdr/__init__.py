# Copyright (C) 2026 anomalib-cmdr developers
# SPDX-License-Identifier: Apache-2.0

"""anomalib-cmdr: CMDR-IAD for RGB + 3D industrial anomaly detection, as an anomalib plug-in.

Importing the package registers ``CMDR`` and the RGB + xyz data modules with anomalib's CLI
(``anomalib train --model CMDR``); the installed start-up hook does this for the stock ``anomalib``
command.

Example:
    >>> from anomalib_cmdr import CMDR
    >>> from anomalib_cmdr.data import Synthetic3D
"""

import sys
from importlib.metadata import PackageNotFoundError, version

from .models import CMDR, CMDRModel, load_official_heads

if "anomalib.cli.cli" in sys.modules:  # loaded with anomalib's CLI: make --seed_everything seed the run
    from .cli.seed import seed_anomalib_cli

    seed_anomalib_cli()

try:
    __version__ = version("anomalib-cmdr")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["CMDR", "CMDRModel", "__version__", "load_official_heads"]
