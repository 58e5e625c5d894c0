"""Metrics (one per file), each registered serializable. The dense-prediction
metrics accumulate over all pixels of an epoch in variables, not as batch means;
the pair metrics (`PairDistanceAUC`, `VerificationAccuracy`, `RecallAtOne`) read
all pairs of embeddings within each batch and accumulate their counts."""

from keras_mtl.metrics.depth_abs_error import DepthAbsError
from keras_mtl.metrics.depth_rel_error import DepthRelError
from keras_mtl.metrics.landmark_error import LandmarkMeanError
from keras_mtl.metrics.landmark_failure_rate import LandmarkFailureRate
from keras_mtl.metrics.mean_iou import MeanIoU
from keras_mtl.metrics.normal_angle_mean import NormalAngleMean
from keras_mtl.metrics.normal_angle_median import NormalAngleMedian
from keras_mtl.metrics.normal_angle_within import NormalAngleWithin
from keras_mtl.metrics.pair_distance_auc import PairDistanceAUC
from keras_mtl.metrics.pixel_accuracy import PixelAccuracy
from keras_mtl.metrics.recall_at_one import RecallAtOne
from keras_mtl.metrics.verification_accuracy import VerificationAccuracy

__all__ = [
    "DepthAbsError",
    "DepthRelError",
    "LandmarkFailureRate",
    "LandmarkMeanError",
    "MeanIoU",
    "NormalAngleMean",
    "NormalAngleMedian",
    "NormalAngleWithin",
    "PairDistanceAUC",
    "PixelAccuracy",
    "RecallAtOne",
    "VerificationAccuracy",
]
