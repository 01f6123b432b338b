"""A right knee in millimetres: x lateral, y anterior, z superior, joint line at z = 0.

Shapes are painted in list order (later ones cover earlier ones), so the list reads from the
outside in: skin fat, muscle, fluid recesses, cartilage, bone, then the small structures that
sit in the joint. Each exam jitters the proportions so no two knees are the same.

Two drawings of the knee (STYLES), so that no recipe is judged on one renderer: "anatomical"
(the default: one ellipsoidal femur with a carved notch, a domed tibia, thick cortices) and
"geometric" (two separate femoral condyles, a flat tibial plateau, thin cortices, a thinner ACL
and menisci of another cross-section). Both return the same landmarks, which is all the
findings need to place a lesion in its structure.
"""

import numpy as np

from phantom.shapes import capsule, ellipsoid, meniscus, zcylinder

# Named landmarks a finding is placed on (see findings.py); filled per exam by `knee`.
MENISCUS_CENTRES = {"medial": -21.0, "lateral": 21.0}


STYLES = ("anatomical", "geometric")


NO_JITTER = {"bone": 1.0, "meniscus": 1.0, "meniscus_inner": 1.0, "meniscus_height": 1.0, "meniscus_gap": 1.0,
             "meniscus_shift": (0.0, 0.0)}


def shape_jitter(rng):
    """Proportions beyond one style's own spread, for the randomised corpus (a localiser trained on it
    must find menisci of any size, section and position, not one drawing's): bone width, the
    meniscus's outer and inner radius (so its rim's width), height, the opening at the notch, and its
    centre moved on the plateau (mm). Drawn from the corpus's own stream."""
    return {"bone": float(rng.uniform(0.85, 1.15)), "meniscus": float(rng.uniform(0.85, 1.2)),
            "meniscus_inner": float(rng.uniform(0.75, 1.3)), "meniscus_height": float(rng.uniform(0.75, 1.35)),
            "meniscus_gap": float(rng.uniform(0.5, 1.7)), "meniscus_shift": tuple(rng.uniform(-2.5, 2.5, 2))}


def knee(rng, fluid_scale=1.0, style="anatomical", jitter=None):
    """Return (shapes, landmarks) for one knee with random but plausible proportions; `jitter`
    (shape_jitter's dict) widens them for the randomised corpus and takes nothing from `rng`."""
    jitter = jitter or NO_JITTER
    if style == "geometric":
        return geometric_knee(rng, fluid_scale, jitter)
    if style != "anatomical":
        raise ValueError(f"style {style!r} not in {STYLES}")
    s = lambda lo, hi: float(rng.uniform(lo, hi))  # noqa: E731
    w = s(0.92, 1.08) * jitter["bone"]  # bone width factor
    fem_c = np.array([0.0, -2.0, 27.0 + s(-1.5, 1.5)], np.float32)
    fem_a = np.array([40 * w, 30 * w, 25.0], np.float32)
    tib_c = np.array([0.0, -2.0, -19.0 + s(-1.0, 1.0)], np.float32)
    tib_a = np.array([40 * w, 29 * w, 16.0], np.float32)
    femur_bottom = fem_c[2] - fem_a[2]
    tibia_top = tib_c[2] + tib_a[2]
    joint_z = (femur_bottom + tibia_top) / 2
    cart = s(1.8, 2.6)
    pat_c = np.array([0.0, 40.0 * w + 4, 30.0 + s(-3, 3)], np.float32)
    pat_a = np.array([21 * w, 7.5, 19.0], np.float32)
    body = np.array([72 * w + s(0, 12), 66 * w + s(0, 10)], np.float32)

    shapes = [
        zcylinder([0, -4, 0], body, -200, 200, "fat", "subcutaneous fat"),
        zcylinder([0, -14, 0], body * np.array([0.86, 0.78]), -200, 200, "muscle", "muscle"),
        ellipsoid([0, 26, joint_z], [20, 14, 16], "fat", "Hoffa fat pad"),
        ellipsoid([0, pat_c[1] - 12, pat_c[2] + 12], [24, 4.5 * fluid_scale, 20], "fluid", "suprapatellar recess"),
        ellipsoid([0, -4, joint_z], [44 * w, 33 * w, 3.0 * fluid_scale], "fluid", "joint fluid"),
        ellipsoid([0, -26 * w, joint_z + 4], [30, 5 * fluid_scale, 10], "fluid", "posterior recess"),
        # cartilage: bone ellipsoids grown by the cartilage thickness, facing the joint
        ellipsoid(fem_c, fem_a + cart, "cartilage", "femoral cartilage", clip=[(fem_c - [0, 0, 8], [0, 0, 1])]),
        ellipsoid(tib_c, tib_a + cart, "cartilage", "tibial cartilage", clip=[(tib_c + [0, 0, 8], [0, 0, -1])]),
        ellipsoid(pat_c, pat_a + [0, cart + 0.6, 0], "cartilage", "patellar cartilage", clip=[(pat_c, [0, 1, 0])]),
        # bones: marrow inside a thin dark cortex
        # cortices first, then marrows, so a shaft and its condyle merge without an inner wall
        ellipsoid(fem_c, fem_a, "cortex", "femoral cortex"),
        zcylinder([0, -4, 0], [17 * w, 16 * w], fem_c[2], 200, "cortex", "femoral shaft cortex"),
        ellipsoid(fem_c, fem_a - 1.2, "marrow", "femur"),
        zcylinder([0, -4, 0], [15.5 * w, 14.5 * w], fem_c[2] - 5, 200, "marrow", "femoral shaft"),
        ellipsoid(tib_c, tib_a, "cortex", "tibial cortex"),
        zcylinder([0, -4, 0], [18 * w, 16 * w], -200, tib_c[2], "cortex", "tibial shaft cortex"),
        ellipsoid(tib_c, tib_a - 1.2, "marrow", "tibia"),
        zcylinder([0, -4, 0], [16.5 * w, 14.5 * w], -200, tib_c[2] + 5, "marrow", "tibial shaft"),
        ellipsoid([28 * w, -14, tib_c[2] - 14], [8, 8, 10], "marrow", "fibular head"),
        ellipsoid(pat_c, pat_a, "cortex", "patellar cortex"),
        ellipsoid(pat_c, pat_a - 1.2, "marrow", "patella"),
        # intercondylar notch, cut into the femur, then the cruciates that run through it
        ellipsoid([0, -14, femur_bottom + 12], [10 * w, 20, 13], "fat", "intercondylar notch"),
        capsule([0, pat_c[1] - 2, pat_c[2] - pat_a[2] + 2], [0, 31 * w, tib_c[2] - 10], 4.0, "ligament",
                "patellar tendon"),
        capsule([0, pat_c[1] - 4, pat_c[2] + pat_a[2] - 2], [0, 22, 90], 5.0, "ligament", "quadriceps tendon"),
        capsule([-43 * w, -4, joint_z + 30], [-42 * w, -2, joint_z - 30], 1.6, "ligament", "MCL"),
        capsule([41 * w, -12, joint_z + 25], [30 * w, -14, tib_c[2] - 14], 1.6, "ligament", "LCL"),
    ]
    acl = (np.array([7.5 * w, -14 * w, femur_bottom + 15], np.float32),
           np.array([-3.0, 9 * w, tibia_top + 0.5], np.float32))
    pcl = (np.array([-7.5 * w, 2 * w, femur_bottom + 13], np.float32),
           np.array([1.0, -22 * w, tibia_top - 5], np.float32))
    shapes += [
        capsule(*acl, s(3.2, 4.0), "ligament", "ACL"),
        capsule(*pcl, s(4.2, 5.0), "ligament", "PCL"),
    ]
    menisci = {}
    m, (dx, dy) = jitter["meniscus"], jitter["meniscus_shift"]
    for side, cx in MENISCUS_CENTRES.items():
        centre = np.array([cx * w + dx, -3.0 + dy, joint_z], np.float32)
        geometry = dict(r_in=8.0 * w * m * jitter["meniscus_inner"], r_out=18.5 * w * m,
                        height=s(2.6, 3.4) * jitter["meniscus_height"], inward_x=-np.sign(cx),
                        gap=4.0 * jitter["meniscus_gap"])
        menisci[side] = {"centre": centre, **geometry}
        shapes.append(meniscus(centre, tissue="meniscus", name=f"{side} meniscus", **geometry))

    landmarks = {
        "femur": (fem_c, fem_a), "tibia": (tib_c, tib_a), "patella": (pat_c, pat_a),
        "cartilage": cart, "joint_z": joint_z, "acl": acl, "menisci": menisci,
        "femur_bottom": femur_bottom, "tibia_top": tibia_top,
    }
    return shapes, landmarks


def geometric_knee(rng, fluid_scale=1.0, jitter=NO_JITTER):
    """The second drawing: separate condyles, a flat plateau, thin cortices (see the module docstring)."""
    s = lambda lo, hi: float(rng.uniform(lo, hi))  # noqa: E731
    w = s(0.9, 1.1) * jitter["bone"]
    condyle_x = 19.0 * w
    con_a = np.array([17 * w, 28 * w, 22.0], np.float32)
    fem_c = np.array([0.0, -2.0, 24.0 + s(-1.5, 1.5)], np.float32)
    femur_bottom = fem_c[2] - con_a[2]
    tibia_top = -3.0 + s(-1.0, 1.0)
    tib_c = np.array([0.0, -2.0, tibia_top - 16.0], np.float32)
    tib_axes = np.array([38 * w, 27 * w], np.float32)
    joint_z = (femur_bottom + tibia_top) / 2
    cart = s(2.0, 2.8)
    pat_c = np.array([0.0, 38.0 * w + 4, 29.0 + s(-3, 3)], np.float32)
    pat_a = np.array([19 * w, 8.0, 17.0], np.float32)
    body = np.array([70 * w + s(0, 14), 64 * w + s(0, 12)], np.float32)
    condyles = [fem_c + np.array([side * condyle_x, 0, 0], np.float32) for side in (-1, 1)]

    shapes = [
        zcylinder([0, -6, 0], body, -200, 200, "fat", "subcutaneous fat"),
        zcylinder([0, -12, 0], body * np.array([0.82, 0.8]), -200, 200, "muscle", "muscle"),
        ellipsoid([0, 25, joint_z + 2], [18, 12, 14], "fat", "Hoffa fat pad"),
        ellipsoid([0, pat_c[1] - 11, pat_c[2] + 14], [22, 4.0 * fluid_scale, 18], "fluid", "suprapatellar recess"),
        ellipsoid([0, -4, joint_z], [42 * w, 31 * w, 2.6 * fluid_scale], "fluid", "joint fluid"),
        ellipsoid([0, -24 * w, joint_z + 5], [26, 4.5 * fluid_scale, 9], "fluid", "posterior recess"),
        *[ellipsoid(c, con_a + cart, "cartilage", "femoral cartilage", clip=[(c - [0, 0, 6], [0, 0, 1])])
          for c in condyles],
        zcylinder(tib_c, tib_axes, tibia_top - 1, tibia_top + cart, "cartilage", "tibial cartilage"),
        ellipsoid(pat_c, pat_a + [0, cart, 0], "cartilage", "patellar cartilage", clip=[(pat_c, [0, 1, 0])]),
        *[ellipsoid(c, con_a, "cortex", "femoral cortex") for c in condyles],
        zcylinder([0, -4, 0], [16 * w, 15 * w], fem_c[2], 200, "cortex", "femoral shaft cortex"),
        zcylinder(tib_c, tib_axes, -200, tibia_top, "cortex", "tibial cortex"),
        ellipsoid(condyles[0], con_a - 0.7, "marrow", "femur"),
        ellipsoid(condyles[1], con_a - 0.7, "marrow", "lateral femoral condyle"),
        zcylinder([0, -4, 0], [15.2 * w, 14.2 * w], fem_c[2] - 4, 200, "marrow", "femoral shaft"),
        zcylinder(tib_c, tib_axes - 0.7, -200, tibia_top - 0.7, "marrow", "tibia"),
        ellipsoid([27 * w, -13, tibia_top - 30], [7, 7, 9], "marrow", "fibular head"),
        ellipsoid(pat_c, pat_a, "cortex", "patellar cortex"),
        ellipsoid(pat_c, pat_a - 0.7, "marrow", "patella"),
        ellipsoid([0, -12, femur_bottom + 11], [condyle_x - 13 * w, 18, 12], "fat", "intercondylar notch"),
        capsule([0, pat_c[1] - 2, pat_c[2] - pat_a[2] + 2], [0, 29 * w, tibia_top - 12], 3.6, "ligament",
                "patellar tendon"),
        capsule([0, pat_c[1] - 4, pat_c[2] + pat_a[2] - 2], [0, 20, 90], 4.5, "ligament", "quadriceps tendon"),
        capsule([-41 * w, -4, joint_z + 28], [-40 * w, -2, joint_z - 28], 1.4, "ligament", "MCL"),
        capsule([39 * w, -12, joint_z + 24], [28 * w, -13, tibia_top - 30], 1.4, "ligament", "LCL"),
    ]
    acl = (np.array([6.5 * w, -12 * w, femur_bottom + 13], np.float32),
           np.array([-2.5, 8 * w, tibia_top + 0.5], np.float32))
    pcl = (np.array([-6.5 * w, 2 * w, femur_bottom + 12], np.float32),
           np.array([1.0, -20 * w, tibia_top - 4], np.float32))
    shapes += [capsule(*acl, s(2.8, 3.4), "ligament", "ACL"), capsule(*pcl, s(3.6, 4.4), "ligament", "PCL")]
    menisci = {}
    m, (dx, dy) = jitter["meniscus"], jitter["meniscus_shift"]
    for side, cx in (("medial", -20.0), ("lateral", 20.0)):
        centre = np.array([cx * w + dx, -3.0 + dy, joint_z], np.float32)
        geometry = dict(r_in=9.5 * w * m * jitter["meniscus_inner"], r_out=17.5 * w * m,
                        height=s(3.0, 3.8) * jitter["meniscus_height"], inward_x=-np.sign(cx),
                        gap=6.0 * jitter["meniscus_gap"])
        menisci[side] = {"centre": centre, **geometry}
        shapes.append(meniscus(centre, tissue="meniscus", name=f"{side} meniscus", **geometry))
    landmarks = {
        "femur": (fem_c, con_a), "condyle_x": condyle_x, "tibia": (tib_c, np.array([*tib_axes, 16.0], np.float32)),
        "plateau_z": tibia_top, "patella": (pat_c, pat_a), "cartilage": cart, "joint_z": joint_z, "acl": acl,
        "menisci": menisci, "femur_bottom": femur_bottom, "tibia_top": tibia_top,
    }
    return shapes, landmarks


def cartilage_point(landmarks, x, bone):
    """The point of the weight-bearing cartilage above (femur) or below (tibia) lateral position x."""
    if bone == "tibia" and "plateau_z" in landmarks:  # geometric: a flat plateau
        c = landmarks["tibia"][0]
        return np.array([x, c[1], landmarks["plateau_z"] + landmarks["cartilage"] / 2], np.float32)
    c, a = landmarks[bone]
    across = x - np.sign(x) * landmarks["condyle_x"] if bone == "femur" and "condyle_x" in landmarks else x
    half = a[2] * np.sqrt(max(0.0, 1 - (across / a[0]) ** 2)) + landmarks["cartilage"] / 2
    z = c[2] - half if bone == "femur" else c[2] + half
    return np.array([x, c[1], z], np.float32)


# Tissues a distractor may be drawn in: dark ones (ligament, meniscus, cortex: what a meniscus looks
# like on fat-sat sequences) and bright ones (fluid, fat, cartilage).
DISTRACTOR_TISSUES = ("ligament", "meniscus", "cortex", "fluid", "fat", "cartilage", "muscle")


def distractors(rng, landmarks):
    """Soft-tissue clutter for the randomised corpus: vessels and tendons (capsules, mostly running
    up and down), cysts, fat pads and fibrous bands (ellipsoids), dark and bright, scattered around
    the joint. Painted before the joint's own structures, so they show only in soft tissue and never
    hide a meniscus or the ACL: a real sagittal slice is crowded, and a localiser trained on clean
    phantoms learns the meniscus as the only dark wedge in the picture."""
    joint = landmarks["joint_z"]
    shapes = []
    for k in range(int(rng.integers(4, 12))):
        tissue = str(rng.choice(DISTRACTOR_TISSUES))
        centre = np.array([rng.uniform(-50, 50), rng.uniform(-45, 45), joint + rng.uniform(-35, 35)], np.float32)
        if rng.random() < 0.5:
            direction = np.array([rng.uniform(-0.4, 0.4), rng.uniform(-0.4, 0.4), 1.0], np.float32)
            half = direction / np.linalg.norm(direction) * rng.uniform(8, 40)
            shapes.append(capsule(centre - half, centre + half, rng.uniform(1.0, 4.0), tissue, f"distractor {k}"))
        else:
            shapes.append(ellipsoid(centre, rng.uniform([2, 2, 1.5], [12, 10, 8]), tissue, f"distractor {k}"))
    return shapes
