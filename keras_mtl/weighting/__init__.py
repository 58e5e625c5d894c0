"""Task-weighting methods: one per file, registered by name."""

from keras_mtl.weighting.base import Weighting
from keras_mtl.weighting.registry import available, get, register
from keras_mtl.weighting.equal import Equal
from keras_mtl.weighting.fixed import Fixed

__all__ = ["Equal", "Fixed", "Weighting", "available", "get", "register"]
