"""crembo: robust model compression with deep hypotheses (MEMO and CREMBO)."""
from . import _core

__version__ = getattr(_core, "__version__", "0.0.0")
