"""Mean average precision of detections, as COCO evaluates it."""

import numpy as np
from keras import ops

COCO_IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
RECALL_THRESHOLDS = np.linspace(0.0, 1.0, int(np.round((1.0 - 0.0) / 0.01)) + 1, endpoint=True)


def _numpy(value):
    return np.asarray(ops.convert_to_numpy(value))


def _iou(boxes1, boxes2):
    """Pairwise IoU in float64, `(N, M)`."""
    low = np.maximum(boxes1[:, None, :2], boxes2[None, :, :2])
    high = np.minimum(boxes1[:, None, 2:], boxes2[None, :, 2:])
    intersection = np.prod(np.maximum(high - low, 0.0), axis=-1)
    area = lambda b: np.prod(np.maximum(b[:, 2:] - b[:, :2], 0.0), axis=-1)
    union = area(boxes1)[:, None] + area(boxes2)[None, :] - intersection
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, intersection / union, 0.0)


def _match(ious, threshold):
    """COCO's greedy matching: detections by decreasing score each take the unmatched
    box of highest IoU >= `threshold` (the last such box among equal IoUs). Returns
    the detections' 0/1 matches."""
    matched_box = np.zeros(ious.shape[1], bool)
    matched = np.zeros(ious.shape[0])
    for d in range(ious.shape[0]):
        best, m = min(threshold, 1 - 1e-10), -1
        for g in range(ious.shape[1]):
            if matched_box[g] or ious[d, g] < best:
                continue
            best, m = ious[d, g], g
        if m >= 0:
            matched[d], matched_box[m] = 1.0, True
    return matched


class MeanAveragePrecision:
    """Mean average precision over classes, accumulated over batches of detections.

    COCO's evaluation (Lin et al., "Microsoft COCO", ECCV 2014; the `pycocotools`
    `COCOeval` for boxes, area range "all", no crowd boxes): per image and class, at
    most `max_detections` detections by decreasing score are matched greedily to the
    ground-truth boxes at each IoU threshold; per class, precision is made monotone
    and read at 101 recall levels; AP is their mean. `result()` averages over the
    classes that have a ground-truth box and over the IoU thresholds: `map` over
    0.50:0.05:0.95 (COCO's AP), `map50` at 0.5. A Keras metric cannot hold a
    variable number of scored detections in fixed-size variables, so this one keeps
    them in numpy between `reset_state()` calls; `DetectionEvaluation` runs it after
    every epoch.

    Boxes are `(x1, y1, x2, y2)`. Batches are padded: masks say which entries are real.

    Example:

    ```python
    metric = MeanAveragePrecision()
    metric.update_state(gt_boxes, gt_classes, gt_mask, boxes, scores, classes, valid)
    metric.result()  # {"map": ..., "map50": ...}
    ```
    """

    def __init__(self, max_detections=100):
        if int(max_detections) != max_detections or max_detections < 1:
            raise ValueError(f"max_detections must be an integer >= 1. Received: max_detections={max_detections!r}")
        self.max_detections = int(max_detections)
        self.reset_state()

    def reset_state(self):
        # Per class: [(scores (D,), matches (T, D)) per image], and its number of boxes.
        self._detections = {}
        self._num_boxes = {}

    def update_state(self, gt_boxes, gt_classes, gt_mask, boxes, scores, classes, mask):
        """Adds a batch: ground truth `(B, M, 4)`, `(B, M)`, `(B, M)` and detections
        `(B, K, 4)`, `(B, K)`, `(B, K)`, `(B, K)`."""
        gt_boxes, gt_classes, gt_mask = (_numpy(v) for v in (gt_boxes, gt_classes, gt_mask))
        boxes, scores, classes, mask = (_numpy(v) for v in (boxes, scores, classes, mask))
        if not np.all(np.isfinite(scores[mask.astype(bool)])):
            raise ValueError("MeanAveragePrecision.update_state: scores must be finite where mask is True.")
        for i in range(len(gt_boxes)):
            real_gt, real = gt_mask[i].astype(bool), mask[i].astype(bool)
            for c in np.union1d(gt_classes[i][real_gt], classes[i][real]).astype(int):
                truth = gt_boxes[i][real_gt & (gt_classes[i] == c)].astype(np.float64)
                mine = real & (classes[i] == c)
                order = np.argsort(-scores[i][mine].astype(np.float64), kind="mergesort")
                order = order[:self.max_detections]
                found = boxes[i][mine][order].astype(np.float64)
                ious = _iou(found, truth)
                matches = np.stack([_match(ious, t) for t in COCO_IOU_THRESHOLDS])
                self._detections.setdefault(c, []).append((scores[i][mine][order].astype(np.float64), matches))
                self._num_boxes[c] = self._num_boxes.get(c, 0) + len(truth)

    def average_precisions(self):
        """`{class: (T,) AP per IoU threshold}` for each class with a ground-truth box."""
        result = {}
        for c, images in self._detections.items():
            if self._num_boxes[c] == 0:
                continue
            scores = np.concatenate([s for s, _ in images])
            matches = np.concatenate([m for _, m in images], axis=1)
            order = np.argsort(-scores, kind="mergesort")
            true_positives = np.cumsum(matches[:, order], axis=1)
            false_positives = np.cumsum(1.0 - matches[:, order], axis=1)
            ap = np.zeros(len(COCO_IOU_THRESHOLDS))
            for t in range(len(COCO_IOU_THRESHOLDS)):
                recall = true_positives[t] / self._num_boxes[c]
                precision = true_positives[t] / (true_positives[t] + false_positives[t] + np.spacing(1))
                precision = np.maximum.accumulate(precision[::-1])[::-1]
                at = np.searchsorted(recall, RECALL_THRESHOLDS, side="left")
                ap[t] = np.sum(precision[at[at < len(precision)]]) / len(RECALL_THRESHOLDS)
            result[c] = ap
        return result

    def result(self):
        """`{"map": AP@[0.5:0.95], "map50": AP@0.5}`, NaN before any ground-truth box."""
        per_class = list(self.average_precisions().values())
        if not per_class:
            return {"map": float("nan"), "map50": float("nan")}
        per_class = np.stack(per_class)
        return {"map": float(per_class.mean()), "map50": float(per_class[:, 0].mean())}
