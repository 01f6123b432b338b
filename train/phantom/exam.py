"""One synthetic exam, a pure function of (seed, index): files are byte-identical run after run."""

import numpy as np

from mrnet.contract import PLANES
from phantom.anatomy import distractors, knee, shape_jitter
from phantom.findings import acl_tear, draw_labels, meniscal_tear, other_findings
from phantom.landmarks import lesion_centres, slice_landmarks
from phantom.render import GEOMETRY, axis_turn, random_rendering, render_stack, rotation, texture_waves

STRUCTURES = ("ACL", "medial meniscus", "lateral meniscus", "femur", "tibia")
BAD_RATE = 0.02  # per stack and kind of bad stack
MIRROR = np.diag([-1.0, 1.0, 1.0]).astype(np.float32)  # a left knee: the right one mirrored across x


def leading_planes(planes):
    """`planes` as a tuple, refused unless a leading part of PLANES: a stack draws on from the stacks
    before it, so only the first k can be rendered alone as the whole exam has them."""
    if tuple(planes) != PLANES[:len(planes)] or not planes:
        raise ValueError(f"planes must be a leading part of {PLANES}, not {tuple(planes)}")
    return tuple(planes)


def make_exam(seed, index, render_size=128, with_masks=False, lesion_scale=1.0, lesion_contrast=1.0,
              style="anatomical", randomise=False, with_anatomy=False, bad_stacks=None, planes=PLANES):
    """Return a dict: labels, {plane: uint8 series}, findings, per-plane lesion slices, bad stacks.

    With `with_masks`, also the boolean masks of every lesion and of key structures, per plane.
    With `with_anatomy`, the anatomy truth (landmarks.py): `anatomy` {plane: (slices, 3, 5) landmarks
    of the ACL and the two meniscus places} and `tear_centres` {plane: {tear: {slice: [row, col]}}}.
    `lesion_scale` and `lesion_contrast` set the rung of the difficulty ladder (findings.RUNGS),
    `style` the drawing and rendering (anatomy.STYLES). Half the knees are left knees (mirrored).
    `randomise` (the corpus the localiser and the crop CNN learn from): the style's drawing, a random
    rendering per stack (render.random_rendering: sub-label signals, coil, noise, blur, resolution,
    slice thickness, artefacts, stacks that miss the knee), a lesion size and contrast drawn per exam
    over the whole ladder and beyond its faint end, wider proportions, flexion, zoom (0.8-1.3x),
    shift and in-plane rotation (+/-15 degrees), other textures and soft-tissue distractors
    (anatomy.shape_jitter, anatomy.distractors). These draws come from a stream of their own, so the
    exam's labels, findings and slice counts are those of the same (seed, index) without it.
    `bad_stacks` ({plane: kind}) makes those stacks bad whatever the draw: a benchmark's stacks that
    miss the knee ("out of field of view"), on which a localiser must find nothing.
    `planes`: the stacks to render, a leading part of PLANES (a check that reads sagittal alone need
    not pay for the other two); each is the one the whole exam has, since a stack draws on from the
    stacks before it.
    """
    planes = leading_planes(planes)
    rng = np.random.default_rng([seed, index])
    style_rng = np.random.default_rng([seed, index, 0x5EED]) if randomise else None
    jitter = None
    if randomise:
        lesion_scale, lesion_contrast = style_rng.uniform(0.45, 1.1), style_rng.uniform(0.55, 1.0)
        jitter = shape_jitter(style_rng)
    abnormal, acl, men = draw_labels(rng)
    lesion_shapes, findings = [], []
    # knee proportions first (needed to place lesions); effusion changes the fluid recesses only
    state = rng.bit_generator.state
    _, landmarks = knee(rng, style=style, jitter=jitter)
    if acl:
        lesion_shapes += acl_tear(rng, landmarks, lesion_scale, lesion_contrast)
        findings.append("ACL tear")
    if men:
        shapes, side = meniscal_tear(rng, landmarks, lesion_scale, lesion_contrast)
        lesion_shapes += shapes
        findings.append(f"{side} meniscal tear")
    extra, fluid_scale, kinds = other_findings(rng, landmarks, abnormal, required=abnormal and not (acl or men))
    lesion_shapes += extra
    findings += kinds
    if not abnormal:
        fluid_scale = rng.uniform(0.6, 1.6)  # physiological fluid varies in healthy knees too
    after = rng.bit_generator.state
    rng.bit_generator.state = state
    shapes, _ = knee(rng, fluid_scale=fluid_scale, style=style, jitter=jitter)  # same proportions, final fluid
    rng.bit_generator.state = after

    # the knee as it lies in the scanner: slightly flexed, the tibia's shaft leaning back (so its sloped
    # plateau lies about level, as on real series), turned a little, a left knee half the time
    turn = rotation(rng, 7.0) @ axis_turn(0, -np.deg2rad(rng.uniform(5.0, 12.0)))
    if rng.random() < 0.5:
        turn = turn @ MIRROR
    pose = (turn, rng.uniform(-5, 5, 3).astype(np.float32), float(rng.uniform(0.88, 1.12)))
    waves = texture_waves(np.random.default_rng([seed, index, 0x7E47]))
    if randomise:  # clutter under the joint's structures, a wider pose, other textures: the corpus
        shapes = shapes[:2] + distractors(style_rng, landmarks) + shapes[2:]
        pose = (rotation(style_rng, 8.0) @ pose[0], pose[1] + style_rng.uniform(-8, 8, 3).astype(np.float32),
                pose[2] * float(style_rng.uniform(0.85, 1.2)))
        waves = texture_waves(style_rng)
    lesion_names = [s.name for s in lesion_shapes]
    keep = set(lesion_names) | (set(STRUCTURES) if with_masks else set()) | (set(STRUCTURES[:3]) if with_anatomy else set())
    anatomy, tear_centres = {}, {}
    series, lesion_slices, bad, masks = {}, {}, {}, {}
    for plane in planes:
        draw = rng.random()
        kind = "out of field of view" if draw < BAD_RATE else "pulsation artefact" if draw < 2 * BAD_RATE else None
        rendering, plane_pose = None, pose
        if randomise:
            rendering = random_rendering(style_rng, plane, style)
            normal = int(np.argmax(np.abs(GEOMETRY[plane]["normal"])))  # in-plane: about the slices' normal
            plane_pose = (axis_turn(normal, np.deg2rad(style_rng.uniform(-15, 15))) @ pose[0],
                          pose[1] + style_rng.uniform(-14, 14, 3).astype(np.float32), pose[2])
            if rendering["outside"]:
                kind = "out of field of view"
        kind = (bad_stacks or {}).get(plane, kind)
        if kind:
            bad[plane] = kind
        series[plane], plane_masks = render_stack(rng, plane, shapes + lesion_shapes, plane_pose, render_size,
                                                    kind, keep, style, rendering, waves)
        lesion_slices[plane] = {n: np.flatnonzero(plane_masks[n].any(axis=(1, 2))).tolist() for n in lesion_names}
        if with_anatomy:
            anatomy[plane] = slice_landmarks(plane_masks, plane)
            tear_centres[plane] = lesion_centres(plane_masks, [n for n in lesion_names if "tear" in n])
        if with_masks:
            masks[plane] = plane_masks
    exam = {"labels": (int(abnormal), int(acl), int(men)), "series": series, "findings": findings,
            "lesion_slices": lesion_slices, "bad": bad}
    if with_masks:
        exam["masks"] = masks
    if with_anatomy:
        exam["anatomy"], exam["tear_centres"] = anatomy, tear_centres
    if randomise:
        exam["lesion_scale"], exam["lesion_contrast"] = round(float(lesion_scale), 3), round(float(lesion_contrast), 3)
    return exam
