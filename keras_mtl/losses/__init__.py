"""Losses for dense prediction (one per file), each registered serializable.

Each masks invalid labels (an ignore label, missing depth, missing normals), averages
over each example's valid pixels and leaves the batch reduction to Keras.
"""

from keras_mtl.losses.depth_l1 import DepthL1
from keras_mtl.losses.normal_cosine import NormalCosine
from keras_mtl.losses.pixel_cross_entropy import PixelCrossEntropy
from keras_mtl.losses.scale_invariant_depth import ScaleInvariantDepth

__all__ = ["DepthL1", "NormalCosine", "PixelCrossEntropy", "ScaleInvariantDepth"]
