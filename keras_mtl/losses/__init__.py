"""Losses (one per file), each registered serializable.

The dense-prediction losses mask invalid labels (an ignore label, missing depth,
missing normals), average over each example's valid pixels and leave the batch
reduction to Keras. The metric-learning losses (`ContrastiveLoss`, `TripletLoss`)
read the whole batch of embeddings and identity labels (see `pairwise`).
`FunctionLoss` wraps a plain loss function.
"""

from keras_mtl.losses.contrastive import ContrastiveLoss
from keras_mtl.losses.depth_l1 import DepthL1
from keras_mtl.losses.function_loss import FunctionLoss
from keras_mtl.losses.normal_cosine import NormalCosine
from keras_mtl.losses.pixel_cross_entropy import PixelCrossEntropy
from keras_mtl.losses.scale_invariant_depth import ScaleInvariantDepth
from keras_mtl.losses.triplet import TripletLoss

__all__ = ["ContrastiveLoss", "DepthL1", "FunctionLoss", "NormalCosine", "PixelCrossEntropy", "ScaleInvariantDepth",
           "TripletLoss"]
