"""Checks of `keras_mtl.detection` against float64 numpy references written from
Faster R-CNN (Ren et al., NeurIPS 2015), run on TensorFlow by
`tests/test_detection.py` and on JAX by `tests/jax/test_detection.py`."""

import itertools
import math

import keras
import numpy as np

from keras_mtl import detection

# Ratios 1/4, 1 and 4 with even scales and strides keep every anchor coordinate a
# multiple of 1/2: IoUs of integer boxes are then exact ratios in float32 and
# float64 alike, so ties are ties on both sides.
SCALES, RATIOS, STRIDE = (8.0, 16.0), (0.25, 1.0, 4.0), 8.0


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


# ---------------------------------------------------------------- references


def reference_anchors(feature_shape, stride, scales, ratios):
    out = []
    for i, j in itertools.product(range(feature_shape[0]), range(feature_shape[1])):
        cx, cy = (j + 0.5) * stride, (i + 0.5) * stride
        for r, s in itertools.product(ratios, scales):
            w, h = s / math.sqrt(r), s * math.sqrt(r)
            out.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
    return np.array(out, np.float64)


def reference_iou(a, b):
    out = np.zeros((len(a), len(b)))
    for i, j in itertools.product(range(len(a)), range(len(b))):
        iw = min(a[i][2], b[j][2]) - max(a[i][0], b[j][0])
        ih = min(a[i][3], b[j][3]) - max(a[i][1], b[j][1])
        inter = max(iw, 0.0) * max(ih, 0.0)
        area_a = max(a[i][2] - a[i][0], 0.0) * max(a[i][3] - a[i][1], 0.0)
        area_b = max(b[j][2] - b[j][0], 0.0) * max(b[j][3] - b[j][1], 0.0)
        union = area_a + area_b - inter
        out[i, j] = inter / union if union > 0 else 0.0
    return out


def reference_match(anchors, boxes, mask, positive_threshold, negative_threshold):
    """Brute force, one image: labels and matched box per anchor."""
    real = [j for j in range(len(boxes)) if mask[j]]
    overlaps = reference_iou(anchors, boxes[real]) if real else np.zeros((len(anchors), 0))
    labels = np.full(len(anchors), -1)
    matched = np.zeros(len(anchors), int)
    for a in range(len(anchors)):
        best = max(overlaps[a], default=-1.0)
        if real:
            matched[a] = real[int(np.argmax(overlaps[a]))]  # numpy: the first maximum
        best_of_some_box = any(
            overlaps[:, g].max() > 0 and overlaps[a, g] == overlaps[:, g].max() for g in range(len(real)))
        if best >= positive_threshold or best_of_some_box:
            labels[a] = 1
        elif best < negative_threshold:
            labels[a] = 0
    return labels, matched, overlaps


def reference_encode(anchor, box):
    wa, ha = anchor[2] - anchor[0], anchor[3] - anchor[1]
    xa, ya = anchor[0] + wa / 2, anchor[1] + ha / 2
    w, h = box[2] - box[0], box[3] - box[1]
    x, y = box[0] + w / 2, box[1] + h / 2
    return np.array([(x - xa) / wa, (y - ya) / ha, math.log(w / wa), math.log(h / ha)])


def reference_nms(boxes, scores, max_output_size, iou_threshold, score_threshold):
    order = [i for i in np.argsort(-scores, kind="stable") if scores[i] >= score_threshold]
    kept = []
    while order and len(kept) < max_output_size:
        best = order.pop(0)
        kept.append(best)
        order = [i for i in order if reference_iou(boxes[[best]], boxes[[i]])[0, 0] <= iou_threshold]
    return kept


def reference_smooth_l1(difference, beta):
    d = np.abs(difference)
    if beta == 0:
        return d.sum(-1)
    return np.where(d < beta, 0.5 * d ** 2 / beta, d - 0.5 * beta).sum(-1)


def random_boxes(rng, n, low=0.0, high=64.0, min_size=1.0, max_size=40.0, integer=False):
    size = rng.uniform(min_size, max_size, size=(n, 2))
    corner = rng.uniform(low, high, size=(n, 2))
    boxes = np.concatenate([corner, corner + size], -1)
    return np.round(boxes) if integer else boxes


# -------------------------------------------------------------------- checks


def check_anchors():
    shape = (3, 5)
    got = _np(detection.anchors(shape, STRIDE, SCALES, RATIOS))
    reference = reference_anchors(shape, STRIDE, SCALES, RATIOS)
    np.testing.assert_allclose(got, reference, rtol=1e-6, atol=1e-6)
    # The paper's set: areas s^2 and height / width ratios r on a stride-16 map.
    paper = _np(detection.anchors((2, 3), 16, (128, 256, 512), (0.5, 1.0, 2.0)))
    np.testing.assert_allclose(paper, reference_anchors((2, 3), 16, (128, 256, 512), (0.5, 1.0, 2.0)),
                               rtol=1e-6)
    w, h = paper[:, 2] - paper[:, 0], paper[:, 3] - paper[:, 1]
    np.testing.assert_allclose(w * h, np.tile(np.repeat([[128.0, 256, 512]], 3, 0).ravel() ** 2, 6), rtol=1e-6)
    np.testing.assert_allclose(h / w, np.tile(np.repeat([0.5, 1.0, 2.0], 3), 6), rtol=1e-6)


def check_iou():
    rng = np.random.default_rng(0)
    a = random_boxes(rng, 30)
    b = np.concatenate([random_boxes(rng, 20), a[:3],            # identical boxes
                        [[10, 10, 10, 20], [5, 5, 2, 2],          # empty, inverted
                         [a[0, 0] + 1, a[0, 1] + 1, a[0, 2] - 1, a[0, 3] - 1],  # nested
                         [500, 500, 510, 510]]])                  # disjoint
    np.testing.assert_allclose(_np(detection.iou(a.astype("float32"), b.astype("float32"))),
                               reference_iou(a, b), atol=1e-6)
    batched = _np(detection.iou(a[None, :5].astype("float32"), np.stack([b[:4], b[4:8]]).astype("float32")))
    np.testing.assert_allclose(batched[1], reference_iou(a[:5], b[4:8]), atol=1e-6)


def _check_gaps(overlaps, thresholds, what, distinct=True):
    """The test's premise: no IoU within 1e-5 of a threshold, and (`distinct`)
    distinct IoUs more than 1e-5 apart, so float32 decides as float64 does."""
    values = np.unique(overlaps)
    assert not distinct or np.all(np.diff(values) > 1e-5), what
    for t in thresholds:
        assert np.all(np.abs(values - t) > 1e-5), (what, t)


def check_matching():
    rng = np.random.default_rng(1)
    anchor_boxes = detection.anchors((6, 8), STRIDE, SCALES, RATIOS)
    anchors64 = _np(anchor_boxes).astype(np.float64)
    m, images = 5, []
    for _ in range(4):
        images.append((random_boxes(rng, m, high=56.0, min_size=4.0, max_size=30.0, integer=True),
                       rng.random(m) < 0.8))
    boxes, mask = np.stack([b for b, _ in images]), np.stack([k for _, k in images])
    mask[0] = True
    boxes[0, 1] = boxes[0, 0]                       # a duplicated box: tied best anchors
    boxes[0, 2] = [2000, 2000, 2010, 2010]          # overlaps no anchor
    boxes[0, 3] = [8, 8, 24, 24]                    # equidistant from anchor centres: ties
    boxes[1] = 0.0                                  # all padding (the zeros are not boxes)
    mask[1] = False
    boxes[2, 4] = [-500, -500, -490, -490]          # a padded entry far away
    mask[2, 4] = False
    for positive_threshold, negative_threshold in ((0.7, 0.3), (0.5, 0.4), (0.61, 0.61)):
        labels, matched = detection.match_anchors(anchor_boxes, boxes.astype("float32"), mask,
                                                  positive_threshold, negative_threshold)
        labels, matched = _np(labels), _np(matched)
        for i in range(len(boxes)):
            ref_labels, ref_matched, overlaps = reference_match(
                anchors64, boxes[i], mask[i], positive_threshold, negative_threshold)
            _check_gaps(overlaps, (positive_threshold, negative_threshold), f"image {i}")
            np.testing.assert_array_equal(labels[i], ref_labels, err_msg=f"image {i}")
            np.testing.assert_array_equal(matched[i], ref_matched, err_msg=f"image {i}")
    # The tie cases did happen: several best anchors for box 3 and the duplicate.
    _, _, overlaps = reference_match(anchors64, boxes[0], mask[0], 0.7, 0.3)
    assert np.sum(overlaps[:, 3] == overlaps[:, 3].max()) > 1
    assert np.all(overlaps[:, 2] == 0)
    np.testing.assert_array_equal(labels[1], 0)
    # At a threshold exactly (IoU 1/2 is exact): >= for positives, < for negatives.
    exact = np.array([[0, 0, 16, 16], [0, 0, 16, 8]], "float32")
    for thresholds, expected in (((0.5, 0.3), [1, 1]), ((0.9, 0.5), [-1, 1]), ((0.9, 0.51), [0, 1])):
        labels, _ = detection.match_anchors(exact, exact[None, 1:], None, *thresholds)
        np.testing.assert_array_equal(_np(labels)[0], expected, err_msg=str(thresholds))
    for arg in ((0.3, 0.7), (1.5, 0.3), (0.7, -0.1)):
        try:
            detection.match_anchors(anchor_boxes, boxes, mask, *arg)
        except ValueError as error:
            assert "threshold" in str(error)
        else:
            raise AssertionError(f"thresholds {arg} accepted")


def check_box_coding():
    rng = np.random.default_rng(2)
    # Sizes within a factor 1000 / 16 of the anchors', where decoding does not clip.
    anchors = random_boxes(rng, 200, low=-20.0, high=300.0, min_size=10.0, max_size=300.0)
    boxes = random_boxes(rng, 200, low=-20.0, high=300.0, min_size=0.5, max_size=300.0)
    deltas = _np(detection.encode_boxes(anchors.astype("float32"), boxes.astype("float32")))
    reference = np.stack([reference_encode(a, b) for a, b in zip(anchors, boxes)])
    np.testing.assert_allclose(deltas, reference, rtol=1e-6, atol=1e-6 * np.abs(anchors).max() / 2.0)
    decoded = _np(detection.decode_boxes(anchors.astype("float32"), reference.astype("float32")))
    scale = np.abs(boxes).max()
    np.testing.assert_allclose(decoded, boxes, rtol=1e-6, atol=1e-6 * scale)
    round_trip = _np(detection.decode_boxes(anchors.astype("float32"), deltas))
    np.testing.assert_allclose(round_trip, boxes, rtol=1e-6, atol=1e-6 * scale)
    # A wild prediction decodes to a finite, clipped size.
    wild = _np(detection.decode_boxes(anchors[:2].astype("float32"), np.array([[0, 0, 1e10, 1e10]] * 2, "float32")))
    assert np.all(np.isfinite(wild))
    np.testing.assert_allclose(wild[:, 2] - wild[:, 0], (anchors[:2, 2] - anchors[:2, 0]) * 1000 / 16, rtol=1e-5)


def check_sampling():
    rng = np.random.default_rng(3)
    num = 2000
    labels = np.full((4, num), -1, np.int32)
    labels[0, rng.permutation(num)[:300]] = 1                    # more positives than 128
    rest = np.flatnonzero(labels[0] != 1)
    labels[0, rng.choice(rest, 900, replace=False)] = 0
    labels[1, :5], labels[1, 5:1500] = 1, 0                      # few positives
    labels[2, :100] = 0                                          # fewer anchors than 256
    # image 3: all ignored
    classification, regression = (_np(w) for w in detection.sample_anchors(labels, seed=0))
    positive, negative = labels == 1, labels == 0
    expected_positive = np.minimum(positive.sum(1), 128)
    expected_negative = np.minimum(negative.sum(1), 256 - expected_positive)
    np.testing.assert_array_equal(regression.sum(1), expected_positive)
    np.testing.assert_array_equal(classification.sum(1), expected_positive + expected_negative)
    np.testing.assert_array_equal(regression, classification * positive)
    assert np.all(classification[labels == -1] == 0)
    # 200 independent draws for image 0 (one per row): each of its 300 positives is
    # drawn with probability 128 / 300, a binomial count; likewise its negatives.
    draws = 200
    classification, regression = (_np(w) for w in detection.sample_anchors(
        np.repeat(labels[:1], draws, 0), seed=keras.random.SeedGenerator(0)))
    for pool, taken in ((labels[0] == 1, 128), (labels[0] == 0, 128)):
        p = taken / pool.sum()
        frequency = classification[:, pool].sum(0, dtype=np.float64)
        np.testing.assert_allclose(frequency.mean(), draws * p, rtol=1e-9)
        sd = math.sqrt(draws * p * (1 - p))
        assert np.abs(frequency - draws * p).max() < 4.5 * sd
        assert frequency.std() > 0.5 * sd                   # not a fixed subset
    half = _np(detection.sample_anchors(labels, num_samples=10, positive_fraction=0.0, seed=1)[1])
    assert half.sum() == 0


def check_smooth_l1():
    rng = np.random.default_rng(4)
    y_true = rng.normal(size=(3, 7, 4))
    y_pred = y_true + rng.normal(scale=2.0, size=(3, 7, 4))
    y_pred[0, 0] = [1e10, -1e10, 0.0, 1.0]
    for beta in (1.0, 1.0 / 9.0, 0.0):
        loss = detection.SmoothL1(beta=beta, reduction=None)
        got = _np(loss(y_true.astype("float32"), y_pred.astype("float32")))
        np.testing.assert_allclose(got, reference_smooth_l1(y_pred - y_true, beta), rtol=1e-5, atol=1e-5)
        again = keras.losses.deserialize(keras.losses.serialize(loss))
        assert isinstance(again, detection.SmoothL1) and again.beta == beta
    try:
        detection.SmoothL1(beta=-1.0)
    except ValueError as error:
        assert "beta=-1.0" in str(error)
    else:
        raise AssertionError("beta=-1 accepted")


def check_nms():
    rng = np.random.default_rng(5)
    centres = rng.uniform(0, 100, size=(6, 2))
    boxes = np.concatenate([np.concatenate([c + rng.normal(0, 3, (10, 2)), c + 20 + rng.normal(0, 3, (10, 2))], -1)
                            for c in centres])   # clusters of overlapping boxes
    boxes = np.stack([boxes, random_boxes(rng, 60, high=100.0)])
    scores = rng.uniform(size=(2, 60))
    scores[0, 10:14] = scores[0, 3]              # tied scores
    scores[1, :5] = np.nan                       # NaN scores are never kept
    boxes, scores = boxes.astype("float32"), scores.astype("float32")
    for max_output_size, iou_threshold, score_threshold in ((20, 0.5, -np.inf), (60, 0.3, 0.2), (3, 0.7, -np.inf)):
        indices, valid = (_np(v) for v in detection.non_max_suppression(
            boxes, scores, max_output_size, iou_threshold, score_threshold))
        for i in range(2):
            overlaps = reference_iou(boxes[i].astype(np.float64), boxes[i].astype(np.float64))
            _check_gaps(overlaps, (iou_threshold,), f"nms image {i}", distinct=False)
            kept = reference_nms(boxes[i].astype(np.float64), scores[i].astype(np.float64),
                                 max_output_size, iou_threshold, score_threshold)
            assert kept, "the reference keeps nothing: a vacuous case"
            np.testing.assert_array_equal(indices[i][valid[i]], kept)
            np.testing.assert_array_equal(valid[i], np.arange(max_output_size) < len(kept))
            np.testing.assert_array_equal(indices[i][~valid[i]], 0)


def check_targets():
    anchor_boxes = detection.anchors((6, 8), STRIDE, SCALES, RATIOS)
    anchors64 = _np(anchor_boxes).astype(np.float64)
    boxes = np.array([[[5, 6, 30, 40], [40, 10, 60, 30], [0, 0, 0, 0]],
                      [[0, 0, 0, 0]] * 3], np.float32)
    mask = np.array([[True, True, False], [False] * 3])
    y, w = detection.rpn_targets(anchor_boxes, boxes, mask, num_samples=64, seed=0)
    y, w = {k: _np(v) for k, v in y.items()}, {k: _np(v) for k, v in w.items()}
    assert all(np.all(np.isfinite(v)) for v in list(y.values()) + list(w.values()))
    ref_labels, ref_matched, _ = reference_match(anchors64, boxes[0].astype(np.float64), mask[0], 0.7, 0.3)
    positive = ref_labels == 1
    np.testing.assert_array_equal(y["objectness"][0, :, 0], positive)
    reference = np.stack([reference_encode(a, boxes[0, j]) for a, j in zip(anchors64[positive], ref_matched[positive])])
    np.testing.assert_allclose(y["boxes"][0][positive], reference, rtol=1e-6, atol=1e-6)
    assert np.all(y["boxes"][0][~positive] == 0) and np.all(y["boxes"][1] == 0)
    np.testing.assert_array_equal(w["boxes"][0], w["objectness"][0] * positive)
    assert w["objectness"][0].sum() == 64 and w["boxes"][0].sum() == positive.sum()
    assert w["objectness"][1].sum() == 64 and w["boxes"][1].sum() == 0


CHECKS = {"anchors": check_anchors, "iou": check_iou, "matching": check_matching, "box_coding": check_box_coding,
          "sampling": check_sampling, "smooth_l1": check_smooth_l1, "nms": check_nms, "targets": check_targets}


def rectangles(n, size=32, seed=0):
    """Images of one or two bright rectangles on noise, their boxes and box masks."""
    rng = np.random.default_rng(seed)
    images = rng.normal(0.0, 0.05, size=(n, size, size, 3)).astype("float32")
    boxes = np.zeros((n, 2, 4), "float32")
    mask = np.zeros((n, 2), bool)
    for i in range(n):
        for j in range(1 + (i % 2)):
            w, h = rng.integers(6, 16, size=2)
            x, y = rng.integers(0, size - w), rng.integers(0, size - h)
            images[i, y:y + h, x:x + w] += 1.0
            boxes[i, j], mask[i, j] = (x, y, x + w, y + h), True
    return images, boxes, mask


def check_rpn_trains_saves_and_reloads(path):
    """An RPN head on the conv backbone's stride-4 tap trains with fit (uncertainty
    weighting in the place of the paper's lambda), logs the
    epoch's mAP, and reloads from a `.keras` file with the same predictions."""
    import keras_mtl

    images, boxes, mask = rectangles(16)
    anchor_boxes = detection.anchors((8, 8), 4, scales=(8.0, 12.0), aspect_ratios=(0.5, 1.0, 2.0))
    y, w = detection.rpn_targets(anchor_boxes, boxes, mask, num_samples=64, seed=0)
    y, w = {k: _np(v) for k, v in y.items()}, {k: _np(v) for k, v in w.items()}
    tasks = detection.rpn_tasks(num_anchors=6, tap="block2", channels=16)
    model = keras_mtl.build("hard_sharing", tasks, backbone="conv", input_shape=(32, 32, 3))
    model.compile(optimizer=keras.optimizers.Adam(3e-3), weighting="uncertainty")
    layer = detection.ProposalLayer((8, 8), 4, (8.0, 12.0), (0.5, 1.0, 2.0), image_size=(32, 32),
                                    max_output_size=10, iou_threshold=0.5)
    np.testing.assert_array_equal(_np(layer.anchors), _np(anchor_boxes))
    again = detection.ProposalLayer.from_config(layer.get_config())
    assert again.get_config() == layer.get_config()
    evaluation = detection.DetectionEvaluation([(images, boxes, mask)], layer)
    history = model.fit(images, y, sample_weight=w, batch_size=8, epochs=3, verbose=0,
                        callbacks=[evaluation]).history
    for name in ("objectness_loss", "boxes_loss", "val_map", "val_map50"):
        assert len(history[name]) == 3 and np.all(np.isfinite(history[name])), name
    assert history["objectness_loss"][-1] < history["objectness_loss"][0]
    assert history["boxes_loss"][-1] < history["boxes_loss"][0]
    assert 0.0 <= history["val_map"][-1] <= history["val_map50"][-1] <= 1.0
    file = str(path / "rpn.keras")
    model.save(file)
    again = keras.models.load_model(file)
    for name, value in model.predict(images, verbose=0).items():
        np.testing.assert_allclose(again.predict(images, verbose=0)[name], value, rtol=1e-5, atol=1e-5)
