"""A right knee at real scale, in millimetres: x lateral, y anterior, z superior, joint line near z = 0.

The sizes are a real knee's (../shared/REAL_KNEE.md gives them in pixels of real MRNet series;
phantom/geometry.py measures ours the same way): femoral condyles about 62 mm front to back on the
slices through either compartment, a tibial plateau about 78 mm across with its posterior slope,
C-shaped menisci whose horns stop at the edge of a 20 mm intercondylar notch (so the central
sagittal slices show the cruciates and no horn, as a real knee's do), the patella with its tendons
and Hoffa's fat pad in front, the gastrocnemius heads and the popliteal vessels behind, the soft
tissue filling the field of view.

Shapes are painted in list order (later ones cover earlier ones), so the list reads from the outside
in: subcutaneous fat, muscles, fat pads and fluid recesses, cartilage, bone, then the ligaments and
menisci that sit in the joint. Bones are a cortex painted first and a marrow inside it, so shapes of
one bone merge without inner walls. Textures (render.TEXTURES) fill marrow, muscle and fat.

Two drawings of the same measured knee (STYLES), so that no recipe is judged on one renderer:
"anatomical" (the default: each condyle a posterior and a distal-anterior ellipsoid, a plateau
sloping down toward posterior, wedge-section menisci, flat tendons, thick cortices, trabecular
marrow) and "geometric" (each condyle one ellipsoid, a flat plateau, round-section menisci, round
tendons and muscles, thin cortices, other textures). Both return the same landmarks, which is all
the findings need to place a lesion in its structure.
"""

import numpy as np

from phantom.shapes import band, capsule, ellipsoid, meniscus, turned, zcylinder

STYLES = ("anatomical", "geometric")
SIDES = {"medial": -1.0, "lateral": 1.0}  # the side of x each compartment is on, in a right knee

NO_JITTER = {"bone": 1.0, "meniscus": 1.0, "meniscus_inner": 1.0, "meniscus_height": 1.0, "notch": 1.0,
             "meniscus_shift": (0.0, 0.0), "flexion": 0.0, "slope": 0.0}


def shape_jitter(rng):
    """Proportions beyond one style's own spread, for the randomised corpus (a localiser trained on it
    must find menisci of any size, section and position, not one drawing's): bone size, the
    meniscus's size, rim width and height, the notch's width, the menisci moved on the plateau (mm),
    extra flexion and tibial slope (degrees). Drawn from the corpus's own stream."""
    return {"bone": float(rng.uniform(0.85, 1.15)), "meniscus": float(rng.uniform(0.85, 1.15)),
            "meniscus_inner": float(rng.uniform(0.8, 1.2)), "meniscus_height": float(rng.uniform(0.75, 1.3)),
            "notch": float(rng.uniform(0.75, 1.3)), "meniscus_shift": tuple(rng.uniform(-2.5, 2.5, 2)),
            "flexion": float(rng.uniform(0.0, 15.0)), "slope": float(rng.uniform(-3.0, 4.0))}


def measures(rng, jitter):
    """One knee's dimensions (mm, degrees), drawn the same way for both drawings."""
    s = lambda lo, hi: float(rng.uniform(lo, hi))  # noqa: E731
    w = s(0.92, 1.08) * jitter["bone"]
    m = jitter["meniscus"]
    dx, dy = jitter["meniscus_shift"]
    return {
        "w": w, "joint_z": s(-1.5, 1.5), "cart": s(1.8, 2.6), "patella_cart": s(2.8, 3.8),
        "slope": s(4.0, 10.0) + jitter["slope"],  # posterior tibial slope
        "flexion": s(0.0, 8.0) + jitter["flexion"],
        "notch": s(9.2, 11.0) * w * jitter["notch"],  # half-width of the intercondylar notch
        "centre_y": -3.0 + s(-1.5, 1.5),  # the plateau's centre, front to back
        "condyle_hw": {"medial": 15.0 * w, "lateral": 14.0 * w},  # half-widths across
        "meniscus_ay": {"medial": s(20.0, 22.5) * w * m, "lateral": s(18.0, 20.5) * w * m},
        "meniscus_inner": s(0.45, 0.55) * jitter["meniscus_inner"],
        "meniscus_height": s(2.6, 3.3) * jitter["meniscus_height"],
        "meniscus_shift": (dx, dy), "meniscus_scale": m,
        "patella_z": s(29.0, 37.0) * w, "body": (s(64.0, 72.0) * w, s(74.0, 82.0) * w),
        # genicular vessels in the fat around the joint: (angle round the knee, height) of each
        "vessels": [(s(0, 2 * np.pi), s(-40, 40), s(1.2, 2.2), s(4, 14)) for _ in range(24)],
        "fat": s(4.0, 9.0), "acl_radius": s(3.2, 4.0), "pcl_radius": s(4.2, 5.0),
    }


def flexion_turn(degrees):
    """The femur's turn about x in a knee flexed by `degrees` with the tibia held upright: the shaft
    comes forward (toward +y)."""
    a = -np.deg2rad(degrees)
    return np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]], np.float32)


def knee(rng, fluid_scale=1.0, style="anatomical", jitter=None):
    """Return (shapes, landmarks) for one knee with random but plausible proportions; `jitter`
    (shape_jitter's dict) widens them for the randomised corpus and takes nothing from `rng`.
    `fluid_scale` sizes the fluid recesses (an effusion) and takes nothing from `rng` either, so a
    second call from the same state gives the same knee with other recesses (exam.py)."""
    if style not in STYLES:
        raise ValueError(f"style {style!r} not in {STYLES}")
    jitter = jitter or NO_JITTER
    k = measures(rng, jitter)
    geometric = style == "geometric"
    w, jz, cart, ym = k["w"], k["joint_z"], k["cart"], k["centre_y"]
    slope = 0.0 if geometric else np.tan(np.deg2rad(k["slope"]))
    zf = jz + cart + 0.3  # the femur's lowest bone, under its cartilage
    zt = jz - cart - 0.3  # the plateau's bone at its centre
    notch = k["notch"]
    cortex = 0.8 if geometric else 1.5
    turn = flexion_turn(k["flexion"])
    pivot = np.array([0.0, ym - 10 * w, zf + 22 * w], np.float32)  # the posterior condyles' centre

    def femoral(point):
        return pivot + turn @ (np.asarray(point, np.float32) - pivot)

    zp = zf + k["patella_z"]
    yp = ym + 33 * w + k["patella_cart"] + 11 * w  # the patella's centre, in front of the trochlea

    soft = soft_tissue(k, geometric, fluid_scale, yp, zp)
    femur = femur_shapes(k, geometric, zf, cortex)
    patella = patella_shapes(k, geometric, yp, zp, cortex)
    tibia = tibia_shapes(k, geometric, zt, slope, cortex)
    # a flexed knee: the femur, the patella and what hangs on them turn about the posterior condyles
    femur_group = [turned(s, turn, pivot) for s in femur + patella]

    acl = (femoral([8.0 * w, ym - 14 * w, zf + 17 * w]), np.array([-2.0 * w, ym + 10 * w, zt + 0.5], np.float32))
    pcl = [femoral([-8.0 * w, ym + 3 * w, zf + 14 * w]), femoral([-4.0 * w, ym - 12 * w, zf + 8 * w]),
           np.array([0.0, ym - 22 * w, zt - 7.0], np.float32)]
    tendon = band if not geometric else (lambda p0, p1, r, hw, *a, **kw: capsule(p0, p1, r + hw / 3, *a, **kw))
    ligaments = [
        tendon(femoral([0.0, yp + 3, zp - 18 * w]), [0.0, ym + 27 * w, zt - 28.0], 2.5 * w, 12 * w, "ligament",
               "patellar tendon", label="tendon"),
        tendon(femoral([0.0, yp + 1, zp + 18 * w]), femoral([0.0, yp - 12, zp + 120]), 3.5, 16 * w, "ligament",
               "quadriceps tendon", label="tendon"),
        band([-41 * w, ym - 4, jz + 30], [-40 * w, ym + 3, jz - 55], 1.3, 6.0, "ligament", "MCL", axis=1,
             label="collateral ligament"),
        capsule([40 * w, ym - 8, jz + 24], [34 * w, ym - 17 * w, zt - 16], 2.0, "ligament", "LCL",
                label="collateral ligament"),
        capsule(pcl[0], pcl[1], k["pcl_radius"], "ligament", "PCL"),
        capsule(pcl[1], pcl[2], k["pcl_radius"], "ligament", "PCL"),
    ]
    menisci, meniscus_shapes = menisci_of(k, geometric, jz, slope, zt)
    shapes = soft + femur_group + tibia + ligaments + meniscus_shapes + [
        capsule(*acl, k["acl_radius"], "ligament", "ACL")]
    landmarks = {"joint_z": jz, "femur_bottom": zf, "tibia_top": zt, "cartilage": cart, "centre_y": ym,
                 "slope": slope, "notch": notch, "acl": acl, "menisci": menisci, "femur_turn": (turn, pivot),
                 "condyles": {side: SIDES[side] * (notch + k["condyle_hw"][side]) for side in SIDES}}
    return shapes, landmarks


def soft_tissue(k, geometric, fluid_scale, yp, zp):
    """Skin fat, the muscles around the knee, the fat pads, the fluid recesses and the popliteal
    vessels, painted first: the bones, tendons and joint go over them."""
    w, jz, ym, fat = k["w"], k["joint_z"], k["centre_y"], k["fat"]
    ax_body, ay_body = k["body"]
    zt = jz - k["cart"] - 0.3
    muscle = (lambda c, a, name: capsule(np.add(c, [0, 0, a[2] * 0.6]), np.subtract(c, [0, 0, a[2] * 0.6]),
                                         min(a[0], a[1]), "muscle", name, label=name, texture="fibres")) if geometric \
        else (lambda c, a, name: ellipsoid(c, a, "muscle", name, label=name, texture="striated"))
    septa = "lobules" if geometric else "septa"
    shapes = [
        zcylinder([0, ym - 2, 0], [ax_body, ay_body], -300, 300, "fat", "subcutaneous fat", texture=septa),
        # the muscles' mass behind and beside the joint (none in front of it: fat, tendon and patella there)
        zcylinder([0, ym - 8, 0], [ax_body - fat, ay_body - fat - 4], -300, 300, "muscle", "muscle",
                  clip=[([0, ym + 14, 0], [0, 1, 0])], texture="fibres" if geometric else "striated"),
        ellipsoid([0, ym - 40 * w, jz + 10], [22 * w, 16 * w, 62], "fat", "popliteal fat", texture=septa),
        muscle([-30 * w, ym - 34 * w, jz + 42], [12, 13, 55], "semimembranosus"),
        muscle([35 * w, ym - 28 * w, jz + 44], [11, 12, 55], "biceps femoris"),
        muscle([-32 * w, ym + 8 * w, zp + 30], [20, 24, 45], "vastus medialis"),
        muscle([36 * w, ym + 4 * w, zp + 45], [16, 24, 55], "vastus lateralis"),
        muscle([0, ym + 24 * w, zp + 80], [30, 13, 50], "quadriceps"),
        muscle([0, ym - 32 * w, zt - 82], [32, 15, 60], "soleus"),
        muscle([21 * w, ym + 14 * w, zt - 72], [12, 12, 50], "tibialis anterior"),
        muscle([-19 * w, ym - 45 * w, jz - 36], [17 * w, 15 * w, 62], "gastrocnemius medial head"),
        muscle([17 * w, ym - 43 * w, jz - 31], [14 * w, 13 * w, 55], "gastrocnemius lateral head"),
        muscle([4, ym - 31 * w, zt - 18], [22 * w, 5.5, 10], "popliteus"),
        ellipsoid([0, ym + 22 * w, jz + 2], [24 * w, 11 * w, 15 * w], "fat", "Hoffa fat pad", label="Hoffa fat",
                  texture=septa),
        ellipsoid([0, ym + 31 * w, zp + 28], [20 * w, 6, 20], "fat", "prefemoral fat", texture=septa),
        ellipsoid([0, ym + 27 * w, zp + 24], [23 * w, 3.0 * fluid_scale + 1.0, 15 + 5 * fluid_scale], "fluid",
                  "suprapatellar recess", label="fluid"),
        # synovial fluid about the cruciates, in the notch (they are painted over it)
        ellipsoid([0, ym - 6 * w, jz + 8], [8 * w, 15 * w, 10 * w], "fluid", "notch fluid", label="fluid"),
        ellipsoid([0, ym - 2, jz], [41 * w, 30 * w, 1.0 * fluid_scale + 0.8], "fluid", "joint fluid", label="fluid"),
        *[ellipsoid([sign * 24 * w, ym - 30 * w, jz + 12], [11, 2.2 * fluid_scale + 0.6, 14], "fluid",
                    f"posterior recess {side}", label="fluid") for side, sign in SIDES.items()],
        *[capsule([np.cos(a) * (ax_body - depth), ym - 2 + np.sin(a) * (ay_body - depth), jz + h - 25],
                  [np.cos(a) * (ax_body - depth - 2), ym - 2 + np.sin(a) * (ay_body - depth - 2), jz + h + 25],
                  radius, "vein", f"genicular vessel {i}", label="small vessels")
          for i, (a, h, radius, depth) in enumerate(k["vessels"])],
        # the gastrocnemius heads' tendons of origin, from the back of each condyle
        *[capsule([sign * 20 * w, ym - 29 * w, jz + 28], [sign * 19 * w, ym - 40 * w, jz - 8], 2.2, "ligament",
                  f"gastrocnemius tendon {side}", label="tendon") for side, sign in SIDES.items()],
        capsule([2, ym - 37 * w, jz + 90], [2, ym - 34 * w, jz - 70], 3.2, "vessel", "popliteal artery",
                label="artery"),
        capsule([7, ym - 41 * w, jz + 90], [6, ym - 38 * w, jz - 70], 4.0, "vein", "popliteal vein", label="vein"),
        capsule([3, ym - 48 * w, jz + 90], [3, ym - 46 * w, jz - 60], 2.4, "nerve", "tibial nerve", label="nerve"),
    ]
    return shapes


def femur_shapes(k, geometric, zf, cortex):
    """Both condyles with flat walls facing the notch, the trochlea in front, the metaphysis above the
    notch's roof, the shaft; cartilage under and behind each condyle and over the trochlea."""
    w, ym, notch, cart = k["w"], k["centre_y"], k["notch"], k["cart"]
    texture = "cellular" if geometric else "trabecular"
    span = notch + max(k["condyle_hw"].values())
    pieces = []  # (name, centre, axes, clip(grow)): ellipsoids, grown by `grow` mm for cartilage or shrunk for marrow
    for side, sign in SIDES.items():
        hw = k["condyle_hw"][side]
        cx = sign * (notch + hw)

        def walls(grow, cx=cx, hw=hw):
            return [([cx + hw + grow, 0, 0], [1, 0, 0]), ([cx - hw - grow, 0, 0], [-1, 0, 0])]
        if geometric:
            pieces.append((f"femoral condyle {side}", [cx, ym - 2 * w, zf + 25 * w], [hw * 1.4, 34 * w, 25 * w], walls))
        else:
            pieces.append((f"posterior condyle {side}", [cx, ym - 10 * w, zf + 22 * w], [hw * 1.6, 24 * w, 22 * w],
                           walls))
            pieces.append((f"distal condyle {side}", [cx, ym + 4 * w, zf + 29 * w], [hw * 1.6, 31 * w, 29 * w], walls))
    pieces.append(("trochlea", [0, ym + 9 * w, zf + 33 * w], [span, 26 * w, 24 * w],
                   lambda grow: [([0, ym - 2 - grow, 0], [0, -1, 0])]))
    pieces.append(("metaphysis", [0, ym + 2 * w, zf + 44 * w], [span + 2, 27 * w, 28 * w], lambda grow: []))

    def piece(name, centre, axes, clip, grow, tissue, also=(), **kw):
        return ellipsoid(centre, np.add(axes, grow), tissue, name, clip=clip(grow) + list(also), **kw)

    bearing = [([0, 0, zf + 24 * w], [0, 0, 1])]  # cartilage covers the condyles' lower and posterior faces
    cartilage = [piece(*p, cart, "cartilage", also=bearing, label="femoral cartilage") for p in pieces
                 if "condyle" in p[0]]
    name, centre, axes, _ = pieces[-2]  # the trochlea: cartilage over its front
    cartilage.append(ellipsoid(centre, np.add(axes, cart), "cartilage", "trochlear cartilage",
                               clip=[([0, ym + 18 * w, 0], [0, -1, 0])], label="femoral cartilage"))
    shaft = np.array([14.0 * w, 14.0 * w])
    cortices = [piece(*p, 0.0, "cortex", label="cortex") for p in pieces]
    cortices.append(zcylinder([0, ym + 6 * w], shaft, zf + 45 * w, 300, "cortex", "femoral shaft cortex",
                              label="cortex"))
    # every marrow piece is named "femur": the structure's mask is the union of its pieces (render.paint)
    marrows = [piece("femur", *p[1:], -cortex, "marrow", label="femoral marrow", texture=texture) for p in pieces]
    marrows.append(zcylinder([0, ym + 6 * w], shaft - 2.5 * cortex, zf + 40 * w, 300, "marrow", "femur",
                             label="femoral marrow", texture=texture))
    return cartilage + cortices + marrows


def patella_shapes(k, geometric, yp, zp, cortex):
    w = k["w"]
    axes = np.array([22 * w, 11 * w, 21 * w], np.float32)
    texture = "cellular" if geometric else "trabecular"
    return [
        ellipsoid([0, yp, zp], axes + [0, k["patella_cart"], 0], "cartilage", "patellar cartilage",
                  clip=[([0, yp, 0], [0, 1, 0])], label="patellar cartilage"),
        ellipsoid([0, yp, zp], axes, "cortex", "patellar cortex", label="cortex"),
        ellipsoid([0, yp, zp], axes - cortex, "marrow", "patella", label="patellar marrow", texture=texture),
    ]


def tibia_shapes(k, geometric, zt, slope, cortex):
    """The plateau, sloping down toward posterior (flat in the geometric drawing), the tibial spines in
    the notch, the tuberosity, the shaft, the fibular head and shaft; cartilage on each plateau."""
    w, ym, notch, cart = k["w"], k["centre_y"], k["notch"], k["cart"]
    texture = "cellular" if geometric else "trabecular"
    normal = np.array([0.0, -slope, 1.0])

    def top(lift):
        return [([0, ym, zt + lift], normal)]

    half = np.array([39 * w, 25 * w], np.float32)
    shapes = []
    for side, sign in SIDES.items():  # cartilage on each compartment of the plateau
        clip = top(cart) + [([0, ym, zt - 1.0], -normal), ([sign * 0.8 * notch, 0, 0], [-sign, 0, 0])]
        if geometric:
            shapes.append(zcylinder([0, ym - 2 * w], half + cart, zt - 1.0, zt + cart, "cartilage",
                                    f"tibial cartilage {side}", clip=clip[2:], label="tibial cartilage"))
        else:
            shapes.append(ellipsoid([0, ym - 2 * w, zt - 8], [1.5 * half[0], half[1] + cart, 42], "cartilage",
                                    f"tibial cartilage {side}", clip=clip + [([sign * half[0], 0, 0], [sign, 0, 0])],
                                    label="tibial cartilage"))

    def walls(grow):
        return [([half[0] + grow, 0, 0], [1, 0, 0]), ([-half[0] - grow, 0, 0], [-1, 0, 0])]

    def plateau(grow, tissue, name, **kw):
        if geometric:
            return zcylinder([0, ym - 2 * w], half + grow, -300, zt + grow, tissue, name, **kw)
        return ellipsoid([0, ym - 2 * w, zt - 8], [1.5 * half[0] + grow, half[1] + grow, 42 + grow], tissue, name,
                         clip=top(grow) + walls(grow), **kw)

    pieces = [  # (centre, axes, name) of the tibia's and fibula's rounded pieces
        *[([sign * 4.5 * w, ym - 2 * w, zt + 1.5], [3.5, 7.0, 4.5], f"tibial spine {side}")
          for side, sign in SIDES.items()],
        ([0, ym + 24 * w, zt - 28], [11 * w, 6.0, 12.0], "tibial tuberosity"),
        ([34 * w, ym - 17 * w, zt - 18], [9.0, 9.0, 11.0], "fibular head"),
    ]
    shaft = np.array([16 * w, 15 * w], np.float32)
    shapes += [plateau(0.0, "cortex", "tibial cortex", label="cortex"),
               zcylinder([0, ym - 3 * w], shaft, -300, zt - 30, "cortex", "tibial shaft cortex", label="cortex"),
               *[ellipsoid(c, a, "cortex", f"{name} cortex", label="cortex") for c, a, name in pieces],
               capsule([34 * w, ym - 17 * w, zt - 25], [33 * w, ym - 15 * w, zt - 160], 6.0, "cortex",
                       "fibular shaft cortex", label="cortex"),
               plateau(-cortex, "marrow", "tibia", label="tibial marrow", texture=texture),
               zcylinder([0, ym - 3 * w], shaft - 2.5 * cortex, -300, zt - 25, "marrow", "tibia",
                         label="tibial marrow", texture=texture),
               *[ellipsoid(c, np.subtract(a, cortex), "marrow", name, label="tibial marrow", texture=texture)
                 for c, a, name in pieces],
               capsule([34 * w, ym - 17 * w, zt - 25], [33 * w, ym - 15 * w, zt - 160], 6.0 - 2 * cortex, "marrow",
                       "fibular shaft", label="tibial marrow", texture=texture)]
    return shapes


def menisci_of(k, geometric, jz, slope, zt):
    """({side: the meniscus's parameters (shapes.meniscus), for the findings}, [both menisci and the
    roots that tie their horns to the tibia in the notch]). Each meniscus spans its compartment from
    the notch's edge out; its roots are ligament, not meniscus: on a notch slice they are no horn."""
    w, notch = k["w"], k["notch"]
    dx, dy = k["meniscus_shift"]
    ym = k["centre_y"] + dy
    menisci, shapes = {}, []
    for side, sign in SIDES.items():
        ax = 14.5 * w * k["meniscus_scale"]
        ay = k["meniscus_ay"][side]
        centre = np.array([sign * (notch + ax) + dx, ym, jz], np.float32)
        params = dict(centre=centre, ax=ax, ay=ay, inner=k["meniscus_inner"], height=k["meniscus_height"],
                      inward_x=-sign, gap=5.0 * w, slope=slope, section="round" if geometric else "wedge")
        menisci[side] = params
        shapes.append(meniscus(**params, tissue="meniscus", name=f"{side} meniscus"))
        tip = centre[0] - sign * 0.85 * ax  # where each horn ends, at the notch's edge
        for horn, h in (("anterior", 1.0), ("posterior", -1.0)):
            reach = 0.4 * ay  # inside the horn at the tip's slice, so the root leaves the meniscus
            root = [sign * (4.0 if side == "medial" else 2.5), ym + h * (17 if side == "medial" else 13) * w,
                    zt - (0.5 if h > 0 else 1.5)]
            shapes.append(capsule([tip, ym + h * reach, jz + slope * h * reach], root, 1.5, "ligament",
                                  f"{side} meniscus {horn} root", label="meniscal root"))
    return menisci, shapes


def cartilage_point(landmarks, x, bone):
    """The point of the weight-bearing cartilage above (femur) or below (tibia) lateral position x."""
    c, y = landmarks["cartilage"], landmarks["centre_y"]
    if bone == "femur":
        turn, pivot = landmarks["femur_turn"]
        point = np.array([x, y - 3.0, landmarks["femur_bottom"] - c / 2], np.float32)
        return (pivot + turn @ (point - pivot)).astype(np.float32)
    return np.array([x, y, landmarks["tibia_top"] + c / 2], np.float32)


# Tissues a distractor may be drawn in: dark ones (ligament, meniscus, cortex: what a meniscus looks
# like on fat-sat sequences) and bright ones (fluid, fat, cartilage).
DISTRACTOR_TISSUES = ("ligament", "meniscus", "cortex", "fluid", "fat", "cartilage", "muscle")


def distractors(rng, landmarks):
    """Soft-tissue clutter for the randomised corpus: vessels and tendons (capsules, mostly running
    up and down), cysts, fat pads and fibrous bands (ellipsoids), dark and bright, scattered around
    the joint. Painted before the joint's own structures, so they show only in soft tissue and never
    hide a meniscus or the ACL: a localiser trained on tidy phantoms learns the meniscus as the only
    dark wedge in the picture."""
    joint = landmarks["joint_z"]
    shapes = []
    for k in range(int(rng.integers(4, 12))):
        tissue = str(rng.choice(DISTRACTOR_TISSUES))
        centre = np.array([rng.uniform(-55, 55), rng.uniform(-55, 55), joint + rng.uniform(-45, 45)], np.float32)
        if rng.random() < 0.5:
            direction = np.array([rng.uniform(-0.4, 0.4), rng.uniform(-0.4, 0.4), 1.0], np.float32)
            half = direction / np.linalg.norm(direction) * rng.uniform(8, 40)
            shapes.append(capsule(centre - half, centre + half, rng.uniform(1.0, 4.0), tissue, f"distractor {k}",
                                  label=f"distractor {tissue}"))
        else:
            shapes.append(ellipsoid(centre, rng.uniform([2, 2, 1.5], [12, 10, 8]), tissue, f"distractor {k}",
                                    label=f"distractor {tissue}"))
    return shapes
