"""Approximate signed distances (mm, negative inside) of the primitives the knee is built from.

Exact distances are not needed: they only set a one-pixel anti-aliased edge, so each shape's
value is accurate near its surface and merely monotone elsewhere. `q` is the (x, y, z) triple of
knee-coordinate arrays: three contiguous arrays are much faster than one (..., 3) array.

A shape may be turned about a pivot (`frame`): a flexed femur. It is then evaluated at the point
turned back, so its clips and the shape it stays `within` turn with it. Each shape carries a box
that holds it (`bound`, cut by its clips that face along an axis): the renderer evaluates a shape
only on the voxels of that box, and a long thin vessel or tendon has a thin box.
"""

from dataclasses import dataclass, field, replace

import numpy as np


@dataclass
class Shape:
    kind: str
    params: dict
    tissue: str
    bound: tuple  # (lowest, highest) corners of a box holding the shape (its own frame), for culling
    name: str = ""
    clip: list = field(default_factory=list)  # half-spaces (point, outward normal): inside keeps n.(q-p) <= 0
    within: "Shape | None" = None  # intersect with this shape (a tear stays inside its meniscus)
    label: str = ""  # the sub-label whose signal it takes (render.py): e.g. "Hoffa fat" of tissue fat
    texture: str = ""  # render.TEXTURES: trabecular marrow, striated muscle, fat septa
    frame: tuple = None  # (rotation, pivot): the shape turned by the rotation about the pivot


def _dot(q, point, normal):
    return (q[0] - point[0]) * normal[0] + (q[1] - point[1]) * normal[1] + (q[2] - point[2]) * normal[2]


def _ellipsoid(q, centre, axes):
    k = np.sqrt(sum(((q[a] - centre[a]) * (1.0 / axes[a])) ** 2 for a in range(3)))
    return (k - 1.0) * float(np.min(axes))


def _zcylinder(q, centre, axes, zlo, zhi):
    k = np.sqrt(((q[0] - centre[0]) * (1.0 / axes[0])) ** 2 + ((q[1] - centre[1]) * (1.0 / axes[1])) ** 2)
    d = (k - 1.0) * float(min(axes))
    return np.maximum(d, np.maximum(zlo - q[2], q[2] - zhi))


def _segment_distance(q, p0, p1, axes=(0, 1, 2)):
    seg = p1 - p0
    t = sum((q[a] - p0[a]) * seg[a] for a in axes) * (1.0 / float(sum(seg[a] ** 2 for a in axes)))
    t = np.clip(t, 0.0, 1.0)
    return np.sqrt(sum((q[a] - p0[a] - t * seg[a]) ** 2 for a in axes))


def _capsule(q, p0, p1, radius):
    return _segment_distance(q, p0, p1) - radius


def _band(q, p0, p1, radius, half_width, axis):
    """A flat band (a tendon, a collateral ligament): the capsule of p0-p1 seen in the plane across
    `axis`, extruded along `axis` by half_width either side of the segment's midpoint."""
    across = tuple(a for a in range(3) if a != axis)
    middle = (p0[axis] + p1[axis]) / 2
    return np.maximum(_segment_distance(q, p0, p1, across) - radius, np.abs(q[axis] - middle) - half_width)


def _meniscus(q, centre, ax, ay, inner, height, inward_x, gap, slope, section):
    """A C-shaped meniscus on the tibial plateau: an elliptical ring (outer semi-axes ax, ay; inner
    edge at `inner` of them), open toward the notch (|y| < gap on the inward side), lying on the
    plateau's posterior slope (z rises by `slope` per mm toward anterior). Its section is a wedge
    thick at the rim and thin inside ("wedge"), or thickest mid-ring ("round")."""
    dx, dy = q[0] - centre[0], q[1] - centre[1]
    k = np.sqrt((dx * (1.0 / ax)) ** 2 + (dy * (1.0 / ay)) ** 2)
    ring = np.maximum(inner - k, k - 1.0) * min(ax, ay)
    t = np.clip((k - inner) * (1.0 / (1.0 - inner)), 0.0, 1.0)
    if section == "wedge":
        h = height * np.clip(t, 0.15, 1.0)
    else:
        h = height * np.sqrt(np.clip(1.0 - (2.0 * t - 1.0) ** 2, 0.02, 1.0))
    wedge = np.abs(q[2] - centre[2] - slope * dy) - h
    opening = np.where(dx * inward_x > 0, gap - np.abs(dy), -np.inf)
    return np.maximum(np.maximum(ring, wedge), opening)


def in_frame(shape, q):
    """The knee-coordinate point turned back into the shape's own frame."""
    if shape.frame is None:
        return q
    rot, pivot = shape.frame
    d = [q[a] - pivot[a] for a in range(3)]
    # q' = pivot + R^T (q - pivot)
    return tuple(pivot[b] + rot[0, b] * d[0] + rot[1, b] * d[1] + rot[2, b] * d[2] for b in range(3))


def signed_distance(shape, q):
    q = in_frame(shape, q)
    p = shape.params
    if shape.kind == "ellipsoid":
        d = _ellipsoid(q, p["centre"], p["axes"])
    elif shape.kind == "zcylinder":
        d = _zcylinder(q, p["centre"], p["axes"], p["zlo"], p["zhi"])
    elif shape.kind == "capsule":
        d = _capsule(q, p["p0"], p["p1"], p["radius"])
    elif shape.kind == "band":
        d = _band(q, p["p0"], p["p1"], p["radius"], p["half_width"], p["axis"])
    elif shape.kind == "meniscus":
        d = _meniscus(q, p["centre"], p["ax"], p["ay"], p["inner"], p["height"], p["inward_x"], p["gap"],
                      p["slope"], p["section"])
    elif shape.kind == "slab":  # |n.(q-p)| <= half_width, restricted by clip half-spaces
        d = np.abs(_dot(q, p["point"], p["normal"])) - p["half_width"]
    elif shape.kind == "shell":  # |distance to an ellipsoid surface| <= half_width
        d = np.abs(_ellipsoid(q, p["centre"], p["axes"])) - p["half_width"]
    else:
        raise ValueError(f"unknown shape kind {shape.kind}")
    for point, normal in shape.clip:
        d = np.maximum(d, _dot(q, point, normal))
    if shape.within is not None:
        d = np.maximum(d, signed_distance(shape.within, q))
    return d


def turned(shape, rotation, pivot):
    """The shape turned by `rotation` (3 x 3) about `pivot` (a shape is turned once: its frame is one turn)."""
    if shape.frame is not None:
        raise ValueError(f"{shape.name}: already turned")
    return replace(shape, frame=(np.asarray(rotation, np.float32), np.asarray(pivot, np.float32)))


def corners(shape):
    """The 8 corners (8, 3) of the shape's box in knee coordinates (turned with its frame)."""
    lo, hi = shape.bound
    points = np.array([[(lo, hi)[(i >> a) & 1][a] for a in range(3)] for i in range(8)], np.float32)
    if shape.frame is None:
        return points
    rotation, pivot = shape.frame
    return pivot + (points - pivot) @ rotation.T


def _new(kind, params, tissue, bound, name, clip, label, texture):
    """A Shape with its box cut by the clips that face along an axis (a half-space x <= a, y >= b...)."""
    clip = _clips(clip)
    lo, hi = (np.asarray(b, np.float32).copy() for b in bound)
    for point, normal in clip:
        axis = int(np.argmax(np.abs(normal)))
        if abs(normal[axis]) > 0.999:  # inside keeps normal * (q - point) <= 0
            if normal[axis] > 0:
                hi[axis] = min(hi[axis], point[axis])
            else:
                lo[axis] = max(lo[axis], point[axis])
    return Shape(kind, params, tissue, (lo, hi), name, clip, label=label or name, texture=texture)


def _box(centre, half):
    centre, half = np.asarray(centre, np.float32), np.asarray(half, np.float32)
    return centre - half, centre + half


def ellipsoid(centre, axes, tissue, name="", clip=(), label="", texture=""):
    c, a = np.asarray(centre, np.float32), np.asarray(axes, np.float32)
    return _new("ellipsoid", {"centre": c, "axes": a}, tissue, _box(c, a), name, clip, label, texture)


def zcylinder(centre, axes, zlo, zhi, tissue, name="", clip=(), label="", texture=""):
    c, a = np.asarray(centre, np.float32), np.asarray(axes, np.float32)
    bound = ([c[0] - a[0], c[1] - a[1], zlo], [c[0] + a[0], c[1] + a[1], zhi])
    return _new("zcylinder", {"centre": c, "axes": a, "zlo": float(zlo), "zhi": float(zhi)}, tissue, bound,
                name, clip, label, texture)


def capsule(p0, p1, radius, tissue, name="", clip=(), label="", texture=""):
    p0, p1 = np.asarray(p0, np.float32), np.asarray(p1, np.float32)
    bound = (np.minimum(p0, p1) - radius, np.maximum(p0, p1) + radius)
    return _new("capsule", {"p0": p0, "p1": p1, "radius": float(radius)}, tissue, bound, name, clip, label, texture)


def band(p0, p1, radius, half_width, tissue, name="", axis=0, clip=(), label="", texture=""):
    p0, p1 = np.asarray(p0, np.float32), np.asarray(p1, np.float32)
    lo, hi = np.minimum(p0, p1) - radius, np.maximum(p0, p1) + radius
    middle = (p0[axis] + p1[axis]) / 2
    lo[axis], hi[axis] = middle - half_width, middle + half_width
    bound = (lo, hi)
    params = {"p0": p0, "p1": p1, "radius": float(radius), "half_width": float(half_width), "axis": int(axis)}
    return _new("band", params, tissue, bound, name, clip, label, texture)


def meniscus(centre, ax, ay, inner, height, inward_x, gap, slope=0.0, section="wedge", tissue="meniscus", name="",
             clip=(), label="", texture=""):
    c = np.asarray(centre, np.float32)
    params = {"centre": c, "ax": float(ax), "ay": float(ay), "inner": float(inner), "height": float(height),
              "inward_x": float(inward_x), "gap": float(gap), "slope": float(slope), "section": section}
    bound = _box(c, [ax, ay, height + abs(slope) * ay])
    return _new("meniscus", params, tissue, bound, name, clip, label, texture)


def slab(point, normal, half_width, extent, tissue, name="", clip=(), label="", texture=""):
    """A slab |n.(q - point)| <= half_width, kept within `extent` mm of the point (and its clips)."""
    n = np.asarray(normal, np.float32)
    params = {"point": np.asarray(point, np.float32), "normal": n / np.linalg.norm(n), "half_width": half_width}
    return _new("slab", params, tissue, _box(point, [extent] * 3), name, clip, label, texture)


def shell(centre, axes, half_width, tissue, name="", clip=(), label="", texture=""):
    c, a = np.asarray(centre, np.float32), np.asarray(axes, np.float32)
    params = {"centre": c, "axes": a, "half_width": half_width}
    return _new("shell", params, tissue, _box(c, a + half_width), name, clip, label, texture)


def _clips(clip):
    return [(np.asarray(p, np.float32), np.asarray(n, np.float32) / np.linalg.norm(n)) for p, n in clip]
