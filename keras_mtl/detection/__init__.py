"""Object detection as multi-task learning: Faster R-CNN's region proposal network
(Ren et al., NeurIPS 2015) as two keras_mtl tasks, anchor classification and box
regression, on a shared trunk. One concept per file, `keras.ops` only."""

from keras_mtl.detection.anchors import anchors
from keras_mtl.detection.average_precision import MeanAveragePrecision
from keras_mtl.detection.box_coding import decode_boxes, encode_boxes
from keras_mtl.detection.detection_evaluation import DetectionEvaluation
from keras_mtl.detection.iou import iou
from keras_mtl.detection.matching import IGNORED, NEGATIVE, POSITIVE, match_anchors
from keras_mtl.detection.nms import non_max_suppression
from keras_mtl.detection.proposal_layer import ProposalLayer
from keras_mtl.detection.proposals import proposals
from keras_mtl.detection.rpn import rpn_tasks
from keras_mtl.detection.sampling import sample_anchors
from keras_mtl.detection.smooth_l1 import SmoothL1
from keras_mtl.detection.targets import rpn_targets

__all__ = ["DetectionEvaluation", "IGNORED", "MeanAveragePrecision", "NEGATIVE", "POSITIVE", "ProposalLayer", "SmoothL1", "anchors", "decode_boxes",
           "encode_boxes", "iou", "match_anchors", "non_max_suppression", "proposals", "rpn_targets",
           "rpn_tasks", "sample_anchors"]
