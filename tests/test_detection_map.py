"""`keras_mtl.detection.MeanAveragePrecision`: a hand-computed case, and agreement with
pycocotools' COCOeval on the same random detections (marked `peers`)."""

import contextlib
import io

import numpy as np
import pytest

from keras_mtl.detection import MeanAveragePrecision


def test_hand_computed_average_precision():
    # Two boxes, three detections by decreasing score: hit, miss, hit. Precision
    # (made monotone) is 1 up to recall 1/2 (51 of COCO's 101 recall levels) and
    # 2/3 above it (50 levels), at every IoU threshold (the hits are exact).
    truth = np.array([[[0, 0, 10, 10], [20, 20, 30, 30], [0, 0, 0, 0]]], float)
    found = np.array([[[0, 0, 10, 10], [50, 50, 60, 60], [20, 20, 30, 30]]], float)
    metric = MeanAveragePrecision()
    metric.update_state(truth, np.zeros((1, 3)), np.array([[1, 1, 0]]), found, np.array([[0.9, 0.8, 0.7]]),
                        np.zeros((1, 3)), np.ones((1, 3)))
    expected = (51 + 50 * 2 / 3) / 101
    assert metric.result() == pytest.approx({"map": expected, "map50": expected}, abs=1e-12)
    metric.reset_state()
    assert np.isnan(metric.result()["map"])


def _random_batches(seed=0, images=12, classes=3):
    rng = np.random.default_rng(seed)
    batches = []
    for start in range(0, images, 4):
        b, m, k = 4, 6, 130
        corner = rng.uniform(0, 80, size=(b, m, 2))
        gt = np.concatenate([corner, corner + rng.uniform(4, 30, size=(b, m, 2))], -1)
        gt_classes = rng.integers(0, classes - 1, size=(b, m))     # the last class has no box
        gt_mask = rng.random((b, m)) < 0.7
        gt_mask[0] = False                                          # an image without boxes
        near = gt[:, rng.integers(0, m, size=k)] + rng.normal(0, 3, size=(b, k, 4))
        far = np.concatenate([c := rng.uniform(0, 80, size=(b, k, 2)), c + rng.uniform(4, 30, size=(b, k, 2))], -1)
        found = np.where(rng.random((b, k, 1)) < 0.6, near, far)
        # Proper boxes (COCO counts an inverted box's negative area as out of range).
        found = np.concatenate([np.minimum(found[..., :2], found[..., 2:] - 1), np.maximum(found[..., 2:], found[..., :2] + 1)], -1)
        found[:, 0] = gt[:, 0]                                      # exact hits
        scores = np.round(rng.random((b, k)), 2)                    # ties within and across images
        found_classes = rng.integers(0, classes, size=(b, k))
        found_classes[:, :125] = 0                                  # over 100 detections of class 0
        mask = rng.random((b, k)) < 0.9
        mask[1] = False                                             # an image without detections
        batches.append((gt, gt_classes, gt_mask, found, scores, found_classes, mask))
    return batches


@pytest.mark.peers
def test_agrees_with_pycocotools():
    coco = pytest.importorskip("pycocotools.coco")
    cocoeval = pytest.importorskip("pycocotools.cocoeval")
    batches = _random_batches()
    metric = MeanAveragePrecision()
    images, annotations, results = [], [], []
    for batch in batches:
        metric.update_state(*batch)
        for gt, gt_classes, gt_mask, found, scores, found_classes, mask in zip(*batch):
            image = len(images) + 1
            images.append({"id": image, "width": 120, "height": 120})
            for box, c in zip(gt[gt_mask], gt_classes[gt_mask]):
                w, h = box[2] - box[0], box[3] - box[1]
                annotations.append({"id": len(annotations) + 1, "image_id": image, "category_id": int(c) + 1,
                                    "bbox": [box[0], box[1], w, h], "area": w * h, "iscrowd": 0})
            for box, s, c in zip(found[mask], scores[mask], found_classes[mask]):
                results.append({"image_id": image, "category_id": int(c) + 1, "score": float(s),
                                "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]]})
    truth = coco.COCO()
    truth.dataset = {"images": images, "annotations": annotations,
                     "categories": [{"id": c + 1, "name": str(c)} for c in range(3)]}
    with contextlib.redirect_stdout(io.StringIO()):
        truth.createIndex()
        evaluation = cocoeval.COCOeval(truth, truth.loadRes(results), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    assert max(int(np.sum(b[6][i] & (b[5][i] == 0))) for b in batches for i in range(4)) > 100
    ours = metric.result()
    assert 0.01 < ours["map"] < ours["map50"] < 0.5           # a non-trivial case
    assert ours["map"] == pytest.approx(evaluation.stats[0], abs=1e-6)
    assert ours["map50"] == pytest.approx(evaluation.stats[1], abs=1e-6)
    precision = evaluation.eval["precision"][:, :, :, 0, 2]   # area "all", 100 detections
    per_class = metric.average_precisions()
    assert sorted(per_class) == [0, 1]
    for c, ap in per_class.items():
        np.testing.assert_allclose(ap, precision[:, :, c].mean(1), atol=1e-6)
    assert np.all(precision[:, :, 2] == -1)
