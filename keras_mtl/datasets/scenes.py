"""Scenes: ray-cast 3-D scenes with analytic dense labels, a small stand-in for NYUv2.

Each image shows a floor, a back wall and sometimes a side wall (both of finite height,
with sky above), and a few spheres, boxes and vertical cylinders resting on the floor,
seen by a random camera and lit by a directional light with shadows, Lambertian and
specular shading, per-surface colours and checker or stripe textures. Every label is
computed from the same ray cast as the image, so it is exact at every pixel centre.

Conventions:
    * camera: pinhole, fixed horizontal field of view of 60 degrees, principal point
      at the image centre, square pixels (`intrinsics(height, width)`).
    * depth: metric z-depth along the optical axis (not the distance along the ray);
      0 marks invalid pixels (sky: no surface is hit).
    * normals: unit vectors in the camera frame (x right, y down, z forward, as in
      OpenCV), pointing towards the camera; (0, 0, 0) marks invalid pixels (sky).
    * segmentation: class index per pixel, classes `CLASS_NAMES`; every pixel labelled.
    * boxes: `(x1, y1, x2, y2)` in pixels, the smallest box holding every visible pixel
      of an object (`x2 - x1` its width in pixels), one row per object slot, padded:
      `box_mask` marks the objects that are visible, `box_classes` their class.
"""

import numpy as np

from keras_mtl._tensorflow import require_tensorflow

CLASS_NAMES = ("sky", "floor", "wall", "sphere", "box", "cylinder")
NUM_CLASSES = len(CLASS_NAMES)
DENSE_TASKS = ("segmentation", "depth", "normals")
BOX_LABELS = ("boxes", "box_classes", "box_mask")
TASKS = DENSE_TASKS + ("instances", "object_count", "classes_present") + BOX_LABELS
HORIZONTAL_FOV_DEGREES = 60.0

_EPS = 1e-4
_RAYS_PER_CHUNK = 1 << 19


def intrinsics(height, width):
    """Returns the pinhole intrinsics `(fx, fy, cx, cy)` of every Scenes image."""
    fx = (width / 2.0) / np.tan(np.radians(HORIZONTAL_FOV_DEGREES) / 2.0)
    return fx, fx, width / 2.0, height / 2.0


# ----------------------------------------------------------------- scene sampling


def _sample_scene(rng, max_per_class):
    """Draws one scene's parameters (camera, room, objects, light, appearance)."""
    wall_z = rng.uniform(6.0, 9.0)
    wall_h = rng.uniform(2.6, 3.6)
    side = rng.choice([-1.0, 0.0, 1.0])
    side_x = rng.uniform(2.2, 3.5)
    cam = np.array([rng.uniform(-0.6, 0.6), rng.uniform(1.1, 1.9), rng.uniform(-0.5, 0.5)])
    yaw, pitch = rng.uniform(-0.3, 0.3), rng.uniform(0.08, 0.42)
    forward = np.array([np.sin(yaw) * np.cos(pitch), -np.sin(pitch), np.cos(yaw) * np.cos(pitch)])
    right = np.array([np.cos(yaw), 0.0, -np.sin(yaw)])
    rotation = np.stack([right, np.cross(right, forward), forward])

    counts = rng.integers(0, max_per_class + 1, size=3)
    if counts.sum() == 0:
        counts[rng.integers(3)] = 1
    m = max_per_class
    present = np.zeros(3 * m, bool)
    centre = np.zeros((3 * m, 3))
    size = np.zeros((3 * m, 3))  # sphere: (r, r, r); box: half extents; cylinder: (r, height, r)
    yaw_obj = np.zeros(3 * m)
    placed = []  # (x, z, footprint radius)
    half_tan = np.tan(np.radians(HORIZONTAL_FOV_DEGREES) / 2.0) * 0.75
    for kind in range(3):
        for j in range(counts[kind]):
            if kind == 0:
                r = rng.uniform(0.25, 0.6)
                dims, footprint = (r, r, r), r
            elif kind == 1:
                dims = (rng.uniform(0.2, 0.55), rng.uniform(0.2, 0.7), rng.uniform(0.2, 0.55))
                footprint = np.hypot(dims[0], dims[2])
            else:
                r = rng.uniform(0.18, 0.45)
                dims, footprint = (r, rng.uniform(0.4, 1.6), r), r
            z = rng.uniform(cam[2] + 1.8, wall_z - footprint - 0.1, size=16)
            x = cam[0] + (z - cam[2]) * (np.tan(yaw) + half_tan * rng.uniform(-1.0, 1.0, size=16))
            ok = (side == 0) | (side * x < side_x - footprint)
            for px, pz, pr in placed:
                ok &= np.hypot(x - px, z - pz) > footprint + pr + 0.05
            if not ok.any():
                continue
            i = int(np.argmax(ok))
            slot = kind * m + j
            present[slot] = True
            size[slot] = dims
            centre_y = dims[0] if kind == 0 else (dims[1] if kind == 1 else 0.0)
            centre[slot] = (x[i], centre_y, z[i])  # resting on the floor
            yaw_obj[slot] = rng.uniform(0.0, np.pi / 2)
            placed.append((x[i], z[i], footprint))

    surfaces = 3 + 3 * m
    colour1 = rng.uniform(0.15, 0.95, size=(surfaces, 3))
    colour2 = colour1 * rng.uniform(0.45, 0.8, size=(surfaces, 1))
    pattern = rng.integers(0, 3, size=surfaces)  # 0 plain, 1 checker, 2 stripes
    scale = rng.uniform(0.25, 0.8, size=surfaces)
    specular = np.concatenate([np.zeros(3), rng.uniform(0.0, 0.5, size=3 * m)])
    shininess = rng.uniform(8.0, 64.0, size=surfaces)
    azimuth = rng.uniform(0.6 * np.pi, 1.4 * np.pi)  # light from the camera's side
    elevation = rng.uniform(np.radians(30), np.radians(70))
    light = np.array([np.cos(elevation) * np.sin(azimuth), np.sin(elevation),
                      np.cos(elevation) * np.cos(azimuth)])
    sky = np.stack([rng.uniform(0.7, 1.0, size=3),
                    [rng.uniform(0.2, 0.5), rng.uniform(0.4, 0.7), rng.uniform(0.75, 1.0)]])
    return {
        "camera": cam, "rotation": rotation, "wall": np.array([wall_z, wall_h, side, side_x]),
        "present": present, "centre": centre, "size": size, "yaw": yaw_obj,
        "colour1": colour1, "colour2": colour2, "pattern": pattern, "scale": scale,
        "specular": specular, "shininess": shininess, "light": light,
        "ambient": rng.uniform(0.25, 0.45), "sky": sky,
    }


# ------------------------------------------------------------------- ray casting
# Vectors are tuples of three arrays (x, y, z), each (B, P) or (B, 1): per-component
# arithmetic is several times faster in numpy than reductions over a length-3 axis.
# Per-image parameters have a leading B axis. Intersections return the ray parameter
# t of the nearest hit in front of the origin, inf where the ray misses.


def _plane(o, d, axis, offset, low, high):
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (offset[:, None] - o[axis]) / d[axis]
        ok = t > _EPS
        for i in range(3):
            if i != axis:
                p = o[i] + t * d[i]
                ok &= (p >= low[:, i, None]) & (p <= high[:, i, None])
    return np.where(ok, t, np.inf)


def _sphere(o, d, centre, radius):
    ox, oy, oz = (o[i] - centre[:, i, None] for i in range(3))
    a = d[0] * d[0] + d[1] * d[1] + d[2] * d[2]
    b = ox * d[0] + oy * d[1] + oz * d[2]
    disc = b * b - a * (ox * ox + oy * oy + oz * oz - radius[:, None] ** 2)
    t = (-b - np.sqrt(np.maximum(disc, 0))) / a
    return np.where((disc >= 0) & (t > _EPS), t, np.inf)


def _to_box(v, yaw):
    """Rotates world vector components into a box's frame (yaw about the y axis)."""
    c, s = np.cos(yaw)[:, None], np.sin(yaw)[:, None]
    return c * v[0] - s * v[2], v[1], s * v[0] + c * v[2]


def _box(o, d, centre, half, yaw):
    ol = _to_box([o[i] - centre[:, i, None] for i in range(3)], yaw)
    dl = _to_box(d, yaw)
    t_near, t_far = -np.inf, np.inf
    for i in range(3):
        inverse = 1.0 / np.where(np.abs(dl[i]) < 1e-9, 1e-9, dl[i])
        t1 = (-half[:, i, None] - ol[i]) * inverse
        t2 = (half[:, i, None] - ol[i]) * inverse
        t_near = np.maximum(t_near, np.minimum(t1, t2))
        t_far = np.minimum(t_far, np.maximum(t1, t2))
    return np.where((t_near <= t_far) & (t_near > _EPS), t_near, np.inf)


def _cylinder(o, d, centre, radius, height):
    ox, oz = o[0] - centre[:, 0, None], o[2] - centre[:, 2, None]
    r2, top = radius[:, None] ** 2, height[:, None]
    a = d[0] * d[0] + d[2] * d[2]
    b = ox * d[0] + oz * d[2]
    disc = b * b - a * (ox * ox + oz * oz - r2)
    with np.errstate(invalid="ignore", divide="ignore"):
        t_side = (-b - np.sqrt(np.maximum(disc, 0))) / a
        y = o[1] + t_side * d[1]
        t_side = np.where((disc >= 0) & (t_side > _EPS) & (y >= 0) & (y <= top), t_side, np.inf)
        t_cap = (top - o[1]) / d[1]
        cx, cz = ox + t_cap * d[0], oz + t_cap * d[2]
        t_cap = np.where((t_cap > _EPS) & (cx * cx + cz * cz <= r2), t_cap, np.inf)
    return np.minimum(t_side, t_cap)


def _object_hits(o, d, scene, m):
    """Yields `(slot, t)` for each object slot; only images holding that object are
    ray-cast."""
    present, centre, size, yaw = scene["present"], scene["centre"], scene["size"], scene["yaw"]
    shape = np.broadcast_shapes(*(v.shape for v in o), *(v.shape for v in d))
    for j in range(3 * m):
        rows = np.flatnonzero(present[:, j])
        t = np.full(shape, np.inf, np.float32)
        if len(rows):
            o_j = [v[rows] for v in o]
            d_j = [v[rows] for v in d]
            if j < m:
                t[rows] = _sphere(o_j, d_j, centre[rows, j], size[rows, j, 0])
            elif j < 2 * m:
                t[rows] = _box(o_j, d_j, centre[rows, j], size[rows, j], yaw[rows, j])
            else:
                t[rows] = _cylinder(o_j, d_j, centre[rows, j], size[rows, j, 0], size[rows, j, 1])
        yield 3 + j, t


def _surface_normals(point, slot, scene, m):
    """World-frame unit normals of the surfaces `slot` at the hit points `point`.

    Object formulas run on the object pixels only (a small part of most images)."""
    side = scene["wall"][:, 2, None]
    normal = [np.where(slot == 2, -side, 0.0), (slot == 0).astype(np.float32),
              -(slot == 1).astype(np.float32)]
    image, pixel = np.nonzero(slot >= 3)
    obj = slot[image, pixel] - 3
    kind = obj // m
    p = [point[i][image, pixel] for i in range(3)]
    rel = [p[i] - scene["centre"][image, obj, i] for i in range(3)]
    size = [scene["size"][image, obj, i] for i in range(3)]
    yaw = scene["yaw"][image, obj]

    sphere = [r / size[0] for r in rel]
    c, s = np.cos(yaw), np.sin(yaw)
    local = (c * rel[0] - s * rel[2], rel[1], s * rel[0] + c * rel[2])
    axis = np.argmax(np.stack([np.abs(local[i]) / size[i] for i in range(3)]), 0)
    face = [np.where(axis == i, np.sign(local[i]), 0.0) for i in range(3)]
    box = [c * face[0] + s * face[2], face[1], -s * face[0] + c * face[2]]
    radial = np.hypot(rel[0], rel[2])
    on_cap = np.abs(p[1] - size[1]) < np.abs(radial - size[0])
    cylinder = [np.where(on_cap, 0.0, rel[0] / radial), on_cap.astype(np.float32),
                np.where(on_cap, 0.0, rel[2] / radial)]
    curved = [np.select([kind == 0, kind == 1], [sphere[i], box[i]], cylinder[i]) for i in range(3)]
    # Renormalised: hit points carry float32 rounding, and labels should be unit.
    length = np.sqrt(curved[0] ** 2 + curved[1] ** 2 + curved[2] ** 2)
    for i in range(3):
        normal[i][image, pixel] = curved[i] / length
    return normal


def _render(scene, height, width, m, noise):
    """Ray-casts a batch of scenes. Returns image, depth, normals and surface ids
    (0 sky, 1 + slot otherwise; slots: floor, back wall, side wall, objects)."""
    b = len(scene["camera"])
    fx, fy, cx, cy = intrinsics(height, width)
    v, u = np.meshgrid((np.arange(height, dtype=np.float32) + 0.5 - cy) / fy,
                       (np.arange(width, dtype=np.float32) + 0.5 - cx) / fx, indexing="ij")
    u, v = u.ravel()[None], v.ravel()[None]
    rotation = scene["rotation"]
    # Forward component 1, so the ray parameter t is the z-depth.
    d = [u * rotation[:, 0, i, None] + v * rotation[:, 1, i, None] + rotation[:, 2, i, None]
         for i in range(3)]
    o = [scene["camera"][:, i, None] for i in range(3)]

    best_t = np.full(d[0].shape, np.inf, np.float32)
    best_id = np.zeros(d[0].shape, np.int32)

    def keep(t, slot):
        closer = t < best_t
        best_t[closer] = t[closer]
        best_id[closer] = slot + 1

    wall_z, wall_h, side, side_x = scene["wall"].T
    inf, zeros = np.full(b, np.inf, np.float32), np.zeros(b, np.float32)
    unbounded = np.stack([inf, inf, inf], -1)
    keep(_plane(o, d, 1, zeros, -unbounded, unbounded), 0)
    keep(_plane(o, d, 2, wall_z, np.stack([-inf, zeros, -inf], -1),
                np.stack([inf, wall_h, inf], -1)), 1)
    side_t = _plane(o, d, 0, side * side_x, np.stack([-inf, zeros, -inf], -1),
                    np.stack([inf, wall_h, wall_z], -1))
    keep(np.where((side != 0)[:, None], side_t, np.inf), 2)
    for slot, t in _object_hits(o, d, scene, m):
        keep(t, slot)

    hit = best_id > 0
    depth = np.where(hit, best_t, 0.0)
    point = [o[i] + depth * d[i] for i in range(3)]
    slot = np.maximum(best_id - 1, 0)
    normal = _surface_normals(point, slot, scene, m)
    light = [scene["light"][:, i, None] for i in range(3)]
    shadow_origin = [point[i] + 1e-3 * normal[i] for i in range(3)]
    shadow = np.zeros(hit.shape, bool)
    for _, t in _object_hits(shadow_origin, light, scene, m):
        shadow |= np.isfinite(t)
    lit = ~shadow

    per_pixel = lambda table: np.take_along_axis(table, slot, 1)
    pattern, scale = per_pixel(scene["pattern"]), per_pixel(scene["scale"])
    horizontal = point[0] + point[2]
    first = np.where(slot == 0, point[0], np.where(slot < 3, horizontal, point[1]))
    second = np.where(slot == 0, point[2], np.where(slot < 3, point[1], horizontal))
    cell_a, cell_b = np.floor(first / scale), np.floor(second / scale)
    alternate = np.where(pattern == 1, (cell_a + cell_b) % 2 == 1, (pattern == 2) & (cell_a % 2 == 1))

    diffuse = np.clip(sum(normal[i] * light[i] for i in range(3)), 0.0, None) * lit
    ambient = scene["ambient"][:, None]
    length = np.sqrt(d[0] ** 2 + d[1] ** 2 + d[2] ** 2)
    halfway = [light[i] - d[i] / length for i in range(3)]
    halfway_length = np.sqrt(sum(h * h for h in halfway))
    highlight = np.clip(sum(normal[i] * halfway[i] for i in range(3)) / halfway_length, 0.0, None)
    highlight = per_pixel(scene["specular"]) * highlight ** per_pixel(scene["shininess"]) * lit
    up = np.clip(d[1] / length * 2.5, 0.0, 1.0)
    image = np.empty((b, height, width, 3), np.float32)
    for i in range(3):
        albedo = np.where(alternate, per_pixel(scene["colour2"][..., i]),
                          per_pixel(scene["colour1"][..., i]))
        shade = albedo * (ambient + (1 - ambient) * diffuse) + highlight
        sky = scene["sky"][:, 0, i, None] * (1 - up) + scene["sky"][:, 1, i, None] * up
        image[..., i] = np.where(hit, shade, sky).reshape(b, height, width)
    image += noise * scene["noise"]

    normals = np.stack([sum(normal[j] * rotation[:, i, j, None] for j in range(3)) * hit
                        for i in range(3)], -1)
    shape = (b, height, width)
    return (np.clip(image, 0.0, 1.0),
            depth.reshape(shape + (1,)),
            normals.reshape(shape + (3,)),
            best_id.reshape(shape))


# --------------------------------------------------------------------- public API


def object_boxes(instances, segmentation, max_objects):
    """Exact boxes of the objects of instance maps.

    Args:
        instances: `(N, H, W)` int, 0 for no object, else 1 + the object's slot
            (`scenes_arrays`' `instances`).
        segmentation: `(N, H, W)` class indices.
        max_objects: the number of slots (`3 * max_per_class`).

    Returns:
        `(boxes, classes, mask)`: `(N, max_objects, 4)` float32 boxes
        `(x1, y1, x2, y2)` around each object's pixels (pixel `(i, j)` spans
        `[j, j + 1) x [i, i + 1)`; 0 for an object that is not visible), `(N,
        max_objects)` int32 classes (from `segmentation`; 0 when not visible) and
        `(N, max_objects)` bool, True for visible objects.
    """
    n, height, width = instances.shape
    boxes = np.zeros((n, max_objects, 4), np.float32)
    classes = np.zeros((n, max_objects), np.int32)
    mask = np.zeros((n, max_objects), bool)
    first = lambda a: np.argmax(a, 1)
    last = lambda a: a.shape[1] - np.argmax(a[:, ::-1], 1)
    for slot in range(max_objects):
        pixels = instances == slot + 1
        columns, rows = pixels.any(1), pixels.any(2)
        visible = columns.any(1)
        boxes[:, slot] = np.where(visible[:, None],
                                  np.stack([first(columns), first(rows), last(columns), last(rows)], -1), 0)
        classes[:, slot] = np.where(visible, np.max(np.where(pixels, segmentation, 0), axis=(1, 2)), 0)
        mask[:, slot] = visible
    return boxes, classes, mask


def scenes_arrays(num_examples=1000, height=96, width=128, seed=0, max_per_class=2, noise=0.02):
    """Generates Scenes images and labels as numpy arrays.

    Image `i` depends only on `(seed, i)`, so the first `n` examples of a larger set
    are the same as a set of `n`.

    Args:
        num_examples: number of images.
        height, width: image size in pixels (default 96x128, NYUv2's 3:4 aspect).
        seed: the data's seed.
        max_per_class: at most this many objects of each class (sphere, box,
            cylinder) per image; at least one object in all.
        noise: standard deviation of the Gaussian pixel noise.

    Returns:
        `(images, labels)`: float32 images in [0, 1] of shape (N, H, W, 3), and a dict
        with `segmentation` (N, H, W) int32 class indices, `depth` (N, H, W, 1) float32
        metres (0 = invalid), `normals` (N, H, W, 3) float32 unit camera-frame
        normals (0 = invalid), `instances` (N, H, W) int32 (0 for sky, floor and
        walls, else 1 + the object's slot), `object_count` (N,) int32 (objects with at
        least one visible pixel) and `classes_present` (N, NUM_CLASSES) float32
        multi-hot, and `boxes` (N, 3 max_per_class, 4) float32, `box_classes`
        (N, 3 max_per_class) int32 and `box_mask` (N, 3 max_per_class) bool (see
        `object_boxes`: every visible object's exact box, padded).

    Example:

    ```python
    images, labels = scenes_arrays(2000, height=48, width=64, seed=1)
    ```
    """
    for arg, value, low in (("num_examples", num_examples, 0), ("height", height, 2),
                            ("width", width, 2), ("max_per_class", max_per_class, 1)):
        if int(value) != value or value < low:
            raise ValueError(f"{arg} must be an integer >= {low}. Received: {arg}={value!r}")
    if not noise >= 0:
        raise ValueError(f"noise must be >= 0. Received: noise={noise!r}")
    n, h, w, m = int(num_examples), int(height), int(width), int(max_per_class)
    images = np.zeros((n, h, w, 3), np.float32)
    depth = np.zeros((n, h, w, 1), np.float32)
    normals = np.zeros((n, h, w, 3), np.float32)
    surface = np.zeros((n, h, w), np.int32)
    chunk = max(1, _RAYS_PER_CHUNK // (h * w))
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        rngs = [np.random.default_rng([seed, i]) for i in range(start, stop)]
        samples = [_sample_scene(rng, m) for rng in rngs]
        scene = {k: np.stack([s[k] for s in samples]) for k in samples[0]}
        scene = {k: v.astype(np.float32) if v.dtype == np.float64 else v for k, v in scene.items()}
        scene["noise"] = np.stack([rng.standard_normal((h, w, 3), np.float32) for rng in rngs])
        images[start:stop], depth[start:stop], normals[start:stop], surface[start:stop] = (
            _render(scene, h, w, m, noise))

    surfaces = 4 + 3 * m  # sky, floor, back wall, side wall, objects
    slot_class = np.array([0, 1, 2, 2] + [3] * m + [4] * m + [5] * m, np.int32)
    segmentation = slot_class[surface]
    instances = np.where(surface >= 4, surface - 3, 0).astype(np.int32)
    flat = surface.reshape(n, -1) + surfaces * np.arange(n)[:, None]
    visible = np.bincount(flat.ravel(), minlength=n * surfaces).reshape(n, surfaces) > 0
    object_count = visible[:, 4:].sum(1)
    classes_present = np.stack([visible[:, slot_class == c].any(1) for c in range(NUM_CLASSES)], -1)
    labels = {
        "segmentation": segmentation,
        "depth": depth,
        "normals": normals,
        "instances": instances,
        "object_count": np.asarray(object_count, np.int32).reshape(n),
        "classes_present": classes_present.astype(np.float32),
    }
    labels.update(zip(BOX_LABELS, object_boxes(instances, segmentation, 3 * m)))
    return images, labels


def scenes(num_examples=1000, height=96, width=128, seed=0, tasks=DENSE_TASKS,
           batch_size=None, shuffle=False, max_per_class=2, noise=0.02):
    """Scenes as a `tf.data.Dataset` of `(image, {task: label})`.

    Args:
        num_examples, height, width, seed, max_per_class, noise: as in `scenes_arrays`.
        tasks: which labels to include, from `TASKS`.
        batch_size: batch the dataset when given.
        shuffle: reshuffle the examples every epoch (seeded by `seed`).

    Example:

    ```python
    train = scenes(2000, 48, 64, seed=0, batch_size=32, shuffle=True)
    val = scenes(500, 48, 64, seed=1, batch_size=32)
    ```
    """
    tf = require_tensorflow("The Scenes tf.data pipeline (keras_mtl.datasets.scenes.scenes)")
    tasks = tuple(tasks)
    unknown = [t for t in tasks if t not in TASKS]
    if unknown or not tasks:
        raise ValueError(f"tasks must be a non-empty subset of {TASKS}. Received: tasks={tasks!r}")
    images, labels = scenes_arrays(num_examples, height, width, seed, max_per_class, noise)
    data = tf.data.Dataset.from_tensor_slices((images, {t: labels[t] for t in tasks}))
    if shuffle:
        data = data.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    if batch_size:
        data = data.batch(batch_size)
    return data
