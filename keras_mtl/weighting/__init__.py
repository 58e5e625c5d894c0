"""Task-weighting methods: one per file, registered by name."""

from keras_mtl.weighting.base import Weighting
from keras_mtl.weighting.registry import available, get, register
from keras_mtl.weighting.dtp import DTP
from keras_mtl.weighting.dwa import DWA
from keras_mtl.weighting.equal import Equal
from keras_mtl.weighting.famo import FAMO
from keras_mtl.weighting.fixed import Fixed
from keras_mtl.weighting.gls import GLS
from keras_mtl.weighting.gradnorm import GradNorm
from keras_mtl.weighting.rlw import RLW
from keras_mtl.weighting.uncertainty import Uncertainty

__all__ = [
    "DTP", "DWA", "Equal", "FAMO", "Fixed", "GLS", "GradNorm", "RLW", "Uncertainty",
    "Weighting", "available", "get", "register",
]
