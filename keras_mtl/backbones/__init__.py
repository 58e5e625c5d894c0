"""Backbones: functions `(input_shape, **options) -> keras.Model`, registered by name."""

from keras_mtl.backbones.registry import get, register
from keras_mtl.backbones.conv import conv
from keras_mtl.backbones.mlp import mlp
from keras_mtl.backbones.segnet import segnet

__all__ = ["conv", "get", "mlp", "register", "segnet"]
