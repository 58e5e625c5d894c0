"""Backbones: functions `(input_shape, **options) -> keras.Model`, registered by
name; `taps(name)` lists the layers a head may read."""

from keras_mtl.backbones.registry import available, get, register, taps
from keras_mtl.backbones.conv import conv
from keras_mtl.backbones.mlp import mlp
from keras_mtl.backbones.segnet import segnet
from keras_mtl.backbones import keras_applications

__all__ = ["available", "conv", "get", "keras_applications", "mlp", "register", "segnet", "taps"]
