"""Models of anomalib-cmdr."""

from .cmdr import CMDR, CMDRModel, load_official_heads

__all__ = ["CMDR", "CMDRModel", "load_official_heads"]
