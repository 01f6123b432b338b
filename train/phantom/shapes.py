"""Approximate signed distances (mm, negative inside) of the primitives the knee is built from.

Exact distances are not needed: they only set a one-pixel anti-aliased edge, so each shape's
value is accurate near its surface and merely monotone elsewhere. `q` is the (x, y, z) triple of
knee-coordinate arrays: three contiguous arrays are much faster than one (..., 3) array.
"""

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Shape:
    kind: str
    params: dict
    tissue: str
    bound: tuple  # (centre xyz, radius) of a sphere holding the shape, for culling
    name: str = ""
    clip: list = field(default_factory=list)  # half-spaces (point, outward normal): inside keeps n.(q-p) <= 0
    within: "Shape | None" = None  # intersect with this shape (a tear stays inside its meniscus)


def _dot(q, point, normal):
    return (q[0] - point[0]) * normal[0] + (q[1] - point[1]) * normal[1] + (q[2] - point[2]) * normal[2]


def _ellipsoid(q, centre, axes):
    k = np.sqrt(sum(((q[a] - centre[a]) * (1.0 / axes[a])) ** 2 for a in range(3)))
    return (k - 1.0) * float(np.min(axes))


def _zcylinder(q, centre, axes, zlo, zhi):
    k = np.sqrt(((q[0] - centre[0]) * (1.0 / axes[0])) ** 2 + ((q[1] - centre[1]) * (1.0 / axes[1])) ** 2)
    d = (k - 1.0) * float(min(axes))
    return np.maximum(d, np.maximum(zlo - q[2], q[2] - zhi))


def _capsule(q, p0, p1, radius):
    seg = p1 - p0
    t = np.clip(_dot(q, p0, seg) * (1.0 / float(seg @ seg)), 0.0, 1.0)
    return np.sqrt(sum((q[a] - p0[a] - t * seg[a]) ** 2 for a in range(3))) - radius


def _meniscus(q, centre, r_in, r_out, height, inward_x, gap):
    """C-shaped wedge on the tibial plateau: thick at the rim, thin toward the notch, open at the notch."""
    dx, dy = q[0] - centre[0], q[1] - centre[1]
    r = np.sqrt(dx * dx + dy * dy)
    ring = np.maximum(r_in - r, r - r_out)
    h = height * np.clip((r - r_in) * (1.0 / (r_out - r_in)), 0.15, 1.0)
    wedge = np.abs(q[2] - centre[2]) - h
    opening = np.where(dx * inward_x > 0, gap - np.abs(dy), -np.inf)
    return np.maximum(np.maximum(ring, wedge), opening)


def signed_distance(shape, q):
    p = shape.params
    if shape.kind == "ellipsoid":
        d = _ellipsoid(q, p["centre"], p["axes"])
    elif shape.kind == "zcylinder":
        d = _zcylinder(q, p["centre"], p["axes"], p["zlo"], p["zhi"])
    elif shape.kind == "capsule":
        d = _capsule(q, p["p0"], p["p1"], p["radius"])
    elif shape.kind == "meniscus":
        d = _meniscus(q, p["centre"], p["r_in"], p["r_out"], p["height"], p["inward_x"], p["gap"])
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


def ellipsoid(centre, axes, tissue, name="", clip=()):
    c, a = np.asarray(centre, np.float32), np.asarray(axes, np.float32)
    return Shape("ellipsoid", {"centre": c, "axes": a}, tissue, (c, float(a.max())), name, _clips(clip))


def zcylinder(centre, axes, zlo, zhi, tissue, name=""):
    c, a = np.asarray(centre, np.float32), np.asarray(axes, np.float32)
    mid = np.array([c[0], c[1], (zlo + zhi) / 2], np.float32)
    radius = float(np.hypot(a.max(), (zhi - zlo) / 2))
    return Shape("zcylinder", {"centre": c, "axes": a, "zlo": zlo, "zhi": zhi}, tissue, (mid, radius), name)


def capsule(p0, p1, radius, tissue, name="", clip=()):
    p0, p1 = np.asarray(p0, np.float32), np.asarray(p1, np.float32)
    bound = ((p0 + p1) / 2, float(np.linalg.norm(p1 - p0) / 2 + radius))
    return Shape("capsule", {"p0": p0, "p1": p1, "radius": float(radius)}, tissue, bound, name, _clips(clip))


def meniscus(centre, r_in, r_out, height, inward_x, gap, tissue, name="", clip=()):
    c = np.asarray(centre, np.float32)
    params = {"centre": c, "r_in": r_in, "r_out": r_out, "height": height, "inward_x": inward_x, "gap": gap}
    return Shape("meniscus", params, tissue, (c, float(r_out + height)), name, _clips(clip))


def slab(point, normal, half_width, bound, tissue, name="", clip=()):
    n = np.asarray(normal, np.float32)
    params = {"point": np.asarray(point, np.float32), "normal": n / np.linalg.norm(n), "half_width": half_width}
    return Shape("slab", params, tissue, bound, name, _clips(clip))


def shell(centre, axes, half_width, tissue, name="", clip=()):
    c, a = np.asarray(centre, np.float32), np.asarray(axes, np.float32)
    params = {"centre": c, "axes": a, "half_width": half_width}
    return Shape("shell", params, tissue, (c, float(a.max() + half_width)), name, _clips(clip))


def _clips(clip):
    return [(np.asarray(p, np.float32), np.asarray(n, np.float32) / np.linalg.norm(n)) for p, n in clip]
