"""Scenes: shapes, determinism, and the geometry of the analytic labels."""

import numpy as np
import pytest

from keras_mtl.datasets.scenes import (CLASS_NAMES, NUM_CLASSES, TASKS, intrinsics, scenes,
                                       scenes_arrays)

H, W = 48, 64
FLOOR, WALL = CLASS_NAMES.index("floor"), CLASS_NAMES.index("wall")


@pytest.fixture(scope="module")
def data():
    return scenes_arrays(24, H, W, seed=5)


def _rays(height, width):
    """Camera-frame rays with z = 1 through the pixel centres, (H, W, 3)."""
    fx, fy, cx, cy = intrinsics(height, width)
    v, u = np.meshgrid((np.arange(height) + 0.5 - cy) / fy, (np.arange(width) + 0.5 - cx) / fx,
                       indexing="ij")
    return np.stack([u, v, np.ones_like(u)], -1)


def test_shapes_types_and_ranges(data):
    images, labels = data
    assert images.shape == (24, H, W, 3) and images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() <= 1.0 and images.std() > 0.1
    assert labels["segmentation"].shape == (24, H, W) and labels["segmentation"].dtype == np.int32
    assert labels["depth"].shape == (24, H, W, 1) and labels["normals"].shape == (24, H, W, 3)
    assert labels["object_count"].shape == (24,) and labels["classes_present"].shape == (24, NUM_CLASSES)
    assert set(np.unique(labels["segmentation"])) == set(range(NUM_CLASSES))
    assert 1 <= labels["object_count"].min() and labels["object_count"].max() <= 6
    depth = labels["depth"][labels["depth"] > 0]
    assert 0.5 < depth.min() and depth.max() < 15.0


def test_same_seed_same_data_and_prefix_stability(data):
    images, labels = data
    again_images, again_labels = scenes_arrays(24, H, W, seed=5)
    np.testing.assert_array_equal(images, again_images)
    for key in TASKS:
        np.testing.assert_array_equal(labels[key], again_labels[key])
    prefix_images, prefix_labels = scenes_arrays(3, H, W, seed=5)
    np.testing.assert_array_equal(prefix_images, images[:3])
    np.testing.assert_array_equal(prefix_labels["depth"], labels["depth"][:3])
    other_images, _ = scenes_arrays(3, H, W, seed=6)
    assert np.abs(other_images - images[:3]).mean() > 0.05


def test_invalid_pixels_are_sky_and_normals_are_unit_and_face_the_camera(data):
    _, labels = data
    sky = labels["segmentation"] == 0
    depth, normals = labels["depth"][..., 0], labels["normals"]
    np.testing.assert_array_equal(depth == 0, sky)
    assert np.all(normals[sky] == 0)
    np.testing.assert_allclose(np.linalg.norm(normals[~sky], axis=-1), 1.0, atol=1e-5)
    facing = np.sum(normals * _rays(H, W), -1)
    assert np.all(facing[~sky] < 0)


def test_normals_agree_with_finite_differences_of_depth_on_planes(data):
    _, labels = data
    points = labels["depth"] * _rays(H, W)  # back-projected, camera frame
    normals, seg, inst = labels["normals"], labels["segmentation"], labels["instances"]
    centre = (slice(None), slice(1, -1), slice(1, -1))
    planar = seg[centre] > 0
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            shifted = (slice(None), slice(1 + dy, H - 1 + dy), slice(1 + dx, W - 1 + dx))
            planar &= (seg[shifted] == seg[centre]) & (inst[shifted] == inst[centre])
            planar &= np.all(normals[shifted] == normals[centre], axis=-1)
    along_u = points[:, 1:-1, 2:] - points[:, 1:-1, :-2]
    along_v = points[:, 2:, 1:-1] - points[:, :-2, 1:-1]
    estimate = np.cross(along_u.astype(np.float64), along_v)[planar]
    estimate /= np.linalg.norm(estimate, axis=-1, keepdims=True)
    cosine = np.abs(np.sum(estimate * normals[centre][planar], -1))
    assert planar.sum() > 0.5 * planar.size  # floors, walls, box faces, cylinder tops
    assert np.isin(seg[centre][planar], [FLOOR, WALL, 4, 5]).all()
    assert cosine.min() > 0.999


def test_depth_order_agrees_with_occlusion_in_the_segmentation(data):
    """Nothing visible lies behind a floor or wall plane: along every pixel's ray the
    labelled surface is nearer than each background plane (fitted to its pixels)."""
    _, labels = data
    rays = _rays(H, W)
    checked = 0
    for i in range(len(labels["depth"])):
        depth, normals, seg = labels["depth"][i, ..., 0], labels["normals"][i], labels["segmentation"][i]
        points = depth[..., None] * rays
        background = np.isin(seg, [FLOOR, WALL])
        for normal in np.unique(normals[background], axis=0):
            on_plane = background & np.all(normals == normal, -1)
            offsets = points[on_plane] @ normal
            assert np.ptp(offsets) < 1e-3 * np.abs(offsets).mean()  # really one plane
            along = rays @ normal  # the ray depth where it meets the plane: offset / along
            with np.errstate(divide="ignore"):
                plane_depth = offsets.mean() / along
            ahead = (depth > 0) & (plane_depth > 0)
            assert np.all(depth[ahead] <= plane_depth[ahead] * (1 + 1e-4))
            objects = ahead & (seg >= 3)
            assert np.all(depth[objects] < plane_depth[objects])
            checked += objects.sum()
    assert checked > 1000


def test_image_level_labels_follow_the_pixels(data):
    _, labels = data
    for i in range(len(labels["object_count"])):
        instances = labels["instances"][i]
        ids = np.unique(instances[instances > 0])
        assert labels["object_count"][i] == len(ids)
        for k in ids:
            assert len(np.unique(labels["segmentation"][i][instances == k])) == 1
        present = np.isin(np.arange(NUM_CLASSES), labels["segmentation"][i])
        np.testing.assert_array_equal(labels["classes_present"][i], present.astype(np.float32))
    assert np.all((labels["instances"] > 0) == (labels["segmentation"] >= 3))


def test_dataset_yields_image_and_labels_by_task():
    data = scenes(6, 16, 24, seed=1, tasks=("segmentation", "depth", "object_count"), batch_size=4)
    image, labels = next(iter(data))
    assert tuple(image.shape) == (4, 16, 24, 3)
    assert sorted(labels) == ["depth", "object_count", "segmentation"]
    assert tuple(labels["segmentation"].shape) == (4, 16, 24)
    assert tuple(labels["depth"].shape) == (4, 16, 24, 1)
    _, arrays = scenes_arrays(6, 16, 24, seed=1)
    np.testing.assert_array_equal(labels["object_count"].numpy(), arrays["object_count"][:4])


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="height"):
        scenes_arrays(2, height=0)
    with pytest.raises(ValueError, match="tasks"):
        scenes(2, 8, 8, tasks=("segmentation", "albedo"))


def test_object_boxes_are_the_exact_extent_of_every_visible_object(data):
    # Reference: a loop over every pixel of every image.
    _, labels = data
    boxes, classes, mask = labels["boxes"], labels["box_classes"], labels["box_mask"]
    assert boxes.shape == (len(boxes), 6, 4) and mask.sum() > len(boxes)
    np.testing.assert_array_equal(mask.sum(1), labels["object_count"])
    for n in range(len(boxes)):
        extent = {}
        for i, j in zip(*np.nonzero(labels["instances"][n])):
            k = labels["instances"][n, i, j] - 1
            x1, y1, x2, y2, c = extent.get(k, (j, i, j + 1, i + 1, labels["segmentation"][n, i, j]))
            extent[k] = (min(x1, j), min(y1, i), max(x2, j + 1), max(y2, i + 1), c)
        for k in range(6):
            if k in extent:
                assert mask[n, k]
                np.testing.assert_array_equal(boxes[n, k], extent[k][:4])
                assert classes[n, k] == extent[k][4] == 3 + k // 2
            else:
                assert not mask[n, k] and np.all(boxes[n, k] == 0) and classes[n, k] == 0


def test_box_labels_batch_in_tf_data_and_map_to_rpn_targets():
    from keras_mtl import detection
    from keras_mtl.datasets.scenes import BOX_LABELS

    anchor_boxes = detection.anchors((6, 8), 8, scales=(8.0, 16.0))
    data = scenes(6, 48, 64, seed=2, tasks=BOX_LABELS, batch_size=4).map(
        lambda x, y: (x, *detection.rpn_targets(anchor_boxes, y["boxes"], y["box_mask"], num_samples=32, seed=0)))
    batches = list(data.as_numpy_iterator())
    assert [len(x) for x, _, _ in batches] == [4, 2]
    for _, y, w in batches:
        assert y["objectness"].shape[1:] == (len(anchor_boxes), 1) and y["boxes"].shape[2] == 4
        np.testing.assert_array_equal(w["objectness"].sum(1), 32)
        assert np.all(w["boxes"] <= y["objectness"][..., 0])
