"""The programme models live with their flows (``workflows/sig.py`` …); Django finds them here."""

from workflows.sig import SigCase, SigProcess

__all__ = ["SigCase", "SigProcess"]
