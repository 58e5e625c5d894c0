"""Sharing architectures: one per file, registered by name."""

from keras_mtl.architectures.registry import available, build, register
from keras_mtl.architectures import hard_sharing, single_task  # noqa: F401  (registers)
from keras_mtl.architectures import cross_stitch, dselect_k, mmoe, mtan, ple, soft_sharing, split  # noqa: F401  (registers)

__all__ = ["available", "build", "register"]
