"""Labels drawn from the real joint distribution, and lesions placed in the anatomy they belong to.

Every lesion is a shape painted over the normal knee, named so tests and explanations can find
it again. Size and contrast are drawn per exam: some tears are obvious, some are a faint line.

The difficulty ladder scales what was drawn, never the draws themselves: `scale` multiplies a
tear's dimensions and `contrast` its fluid signal, after the random numbers are taken, so the
default rung (1, 1) is the plain phantom and every rung has the same exams, labels and lesion
positions, only smaller or fainter lesions. Lesions take their tissue's signal (fluid, oedema).
"""

import numpy as np

from phantom.anatomy import cartilage_point
from phantom.shapes import capsule, ellipsoid, meniscus, slab

# Real training split (CONTRACT.md): both tears, ACL only, meniscus only, abnormal without tear, normal.
JOINT = {(1, 1, 1): 125, (1, 1, 0): 83, (1, 0, 1): 272, (1, 0, 0): 433, (0, 0, 0): 217}


def draw_labels(rng):
    combos = list(JOINT)
    p = np.array([JOINT[c] for c in combos], float)
    return combos[rng.choice(len(combos), p=p / p.sum())]


# Named rungs of the ladder: (lesion scale, lesion contrast). "faint" is about v2's tears (ACL gap
# 3.6-7 mm, meniscal tears 1.1-1.8 mm thick at 0.6-0.75 contrast), on which no recipe took off.
RUNGS = {"v3": (1.0, 1.0), "subtle": (0.8, 0.88), "faint": (0.6, 0.75)}


def acl_tear(rng, landmarks, scale=1.0, contrast=1.0):
    """Fibre discontinuity: a fluid-filled gap in the ACL, with fluid pooling in the notch."""
    p0, p1 = landmarks["acl"]
    t = rng.uniform(0.35, 0.65)
    gap = rng.uniform(6.0, 12.0) * scale
    axis = (p1 - p0) / np.linalg.norm(p1 - p0)
    mid = p0 + t * (p1 - p0)
    signal = min(1.0, rng.uniform(0.75, 1.0) * contrast)
    notch = rng.uniform([6, 7, 6], [9, 11, 9]) * scale
    return [
        ellipsoid(mid + [0, 0, 1.0], notch, ("fluid", signal * 0.8), "ACL notch fluid", label="fluid"),
        # the gap stays wider than the ligament (radius <= 4 mm) on every rung: a tear, not a nick
        capsule(mid - axis * gap / 2, mid + axis * gap / 2, 5.5 * scale ** 0.5, ("fluid", signal), "ACL tear",
                label="fluid"),
    ]


def meniscal_tear(rng, landmarks, scale=1.0, contrast=1.0):
    """A bright line through the dark meniscus: one side, one horn, horizontal or vertical."""
    side = rng.choice(["medial", "lateral"])
    horn = rng.choice(["anterior", "posterior"], p=[0.3, 0.7])
    m = landmarks["menisci"][side]
    c = m["centre"]
    sign = 1.0 if horn == "anterior" else -1.0
    # mid-rim of the horn, in units of the ellipse (1 = outer rim), moved a little inward or outward
    k = (m["inner"] + 1) / 2 + rng.uniform(-1.5, 2.5) / m["ay"]
    angle = rng.uniform(-0.5, 0.5)
    dy = sign * k * m["ay"] * np.cos(angle)
    point = c + np.array([k * m["ax"] * np.sin(angle), dy, m["slope"] * dy + rng.uniform(-0.6, 0.6)], np.float32)
    if rng.random() < 0.6:  # horizontal cleavage tear
        normal = [rng.uniform(-0.15, 0.15), rng.uniform(-0.15, 0.15), 1.0]
    else:  # vertical tear through the horn, radial-ish
        normal = [np.cos(angle), sign * np.sin(angle) * 0.3, rng.uniform(-0.3, 0.3)]
    half_width = rng.uniform(0.9, 1.5) * scale
    extent = rng.uniform(7.0, 10.0) * scale
    # keep the line inside one horn: a box of `extent` mm around the tear point
    clip = [(point + e * extent * np.array(ax, np.float32), e * np.array(ax, np.float32))
            for ax in ([1, 0, 0], [0, 1, 0]) for e in (1, -1)]
    signal = min(1.0, rng.uniform(0.8, 1.0) * contrast)
    tear = slab(point, normal, half_width, extent * 1.5, ("fluid", signal),
                f"meniscal tear {side} {horn}", clip=clip, label="fluid")
    tear.within = meniscus(**m)
    return [tear], side


def other_findings(rng, landmarks, abnormal, required):
    """Effusion, bone-marrow oedema, cartilage defect: none in a normal knee, at least one when `required`."""
    kinds = [k for k in ("effusion", "oedema", "cartilage defect") if rng.random() < 0.45]
    if not abnormal:
        kinds = []
    if required and not kinds:
        kinds = [rng.choice(["effusion", "oedema", "cartilage defect"])]
    shapes, fluid_scale = [], 1.0
    for kind in kinds:
        if kind == "effusion":
            fluid_scale = rng.uniform(2.2, 3.4)
        elif kind == "oedema":
            bone = rng.choice(["femur", "tibia"])
            x = rng.choice([-1, 1]) * rng.uniform(14, 32)
            surface = cartilage_point(landmarks, x, bone)
            depth = 1 if bone == "femur" else -1
            centre = surface + np.array([0, rng.uniform(-10, 10), depth * rng.uniform(7, 12)], np.float32)
            shapes.append(ellipsoid(centre, rng.uniform([5, 5, 4], [12, 12, 9]), ("oedema", rng.uniform(0.5, 1.0)),
                                    f"marrow oedema {bone}", clip=[(surface, [0, 0, -depth])], label="oedema"))
        else:
            bone = rng.choice(["femur", "tibia"])
            x = rng.choice([-1, 1]) * rng.uniform(15, 33)
            centre = cartilage_point(landmarks, x, bone) + np.array([0, rng.uniform(-8, 8), 0], np.float32)
            shapes.append(ellipsoid(centre, rng.uniform([2.5, 2.5, 1.6], [5, 5, 2.2]), ("fluid", rng.uniform(0.7, 1.0)),
                                    f"cartilage defect {bone}", label="fluid"))
    return shapes, fluid_scale, kinds
