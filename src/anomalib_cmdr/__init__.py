"""anomalib-cmdr: CMDR-IAD for RGB + 3D industrial anomaly detection, as an anomalib plug-in.

Importing the package registers ``CMDR`` and the RGB + xyz data modules with anomalib's CLI
(``anomalib train --model CMDR``); the installed start-up hook does this for the stock ``anomalib``
command.

Example:
    >>> from anomalib_cmdr import CMDR
    >>> from anomalib_cmdr.data import Synthetic3D
"""

from .models import CMDR, CMDRModel, load_official_heads

__version__ = "0.1.0"

__all__ = ["CMDR", "CMDRModel", "__version__", "load_official_heads"]
