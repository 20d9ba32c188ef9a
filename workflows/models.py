"""Django finds the models of the ``workflows`` app here: each programme's own models module.

The models live with their programme (``workflows/<programme>/models.py``); the app label
stays ``workflows`` for all of them.
"""

from workflows.defector import models as defector
from workflows.gvi import models as gvi
from workflows.sig import models as sig
from workflows.sspf import models as sspf

__all__ = ["defector", "gvi", "sig", "sspf"]
