"""Sample one knee into MRNet's three stacks, each with its own slice count, geometry and contrast.

The knee is analytic, so each stack is rendered straight onto its own voxel grid: no 3-D volume is
ever built, and every shape is evaluated only inside the index box its own box covers.
Rendering happens at `render_size` in-plane and is resampled to 256 x 256 before the noise, which is
added at full resolution so the texture is real-size.

Every shape has a tissue (CONTRAST: its signal per sequence) and a sub-label (the muscle it is, the
fat pad, the bone's marrow): each sub-label's signal is its tissue's, jittered per stack, and in the
randomised corpus drawn on its own (after SynthSeg, Billot et al. 2023, and FetalSynthSeg's
sub-classes). Marrow, muscle and fat carry textures (TEXTURES): random plane waves in knee
coordinates, so the three stacks of an exam show one knee's trabeculae, striation and septa.

Two styles (see anatomy.py for their drawings). "anatomical": CONTRAST, a smooth polynomial coil
shading, and magnitude-of-Gaussian noise. "geometric": other CONTRAST (the same three MRNet
sequences with other tissue ratios), a surface-coil profile that is brightest near one side of
the field of view, a point-spread blur (k-space truncation), and Rician noise (the magnitude of
a complex signal with noise in both channels). Both are scaled like the publisher's series.
"""

import zlib

import numpy as np

from phantom.shapes import corners, signed_distance

OUT = 256
# Tissue signal per style and sequence before exam jitter (arbitrary units, roughly 0-255). The
# geometric style keeps the three MRNet sequences with other tissue ratios (darker marrow on T1, ...).
# vessel: the popliteal artery's flow void; vein: slow flow, bright on fluid-weighted sequences;
# septa: the fibrous strands through fat (brighter than suppressed fat, darker than fat on T1).
CONTRAST = {
    "anatomical": {
        # sagittal T2 fat-sat: fluid bright, fat and marrow dark
        "sagittal": dict(fat=28, muscle=46, fluid=245, cartilage=125, marrow=40, cortex=6, ligament=12,
                         meniscus=9, oedema=195, vessel=14, vein=205, nerve=70, septa=72),
        # coronal T1: fat and marrow bright, fluid dark
        "coronal": dict(fat=170, muscle=34, fluid=36, cartilage=84, marrow=165, cortex=6, ligament=12,
                        meniscus=9, oedema=85, vessel=12, vein=34, nerve=64, septa=70),
        # axial PD fat-sat
        "axial": dict(fat=34, muscle=52, fluid=225, cartilage=140, marrow=44, cortex=6, ligament=14,
                      meniscus=11, oedema=185, vessel=16, vein=190, nerve=82, septa=84),
    },
    "geometric": {
        "sagittal": dict(fat=24, muscle=36, fluid=236, cartilage=92, marrow=31, cortex=8, ligament=16,
                         meniscus=12, oedema=170, vessel=18, vein=190, nerve=58, septa=56),
        "coronal": dict(fat=200, muscle=33, fluid=46, cartilage=72, marrow=178, cortex=8, ligament=16,
                        meniscus=11, oedema=92, vessel=16, vein=40, nerve=56, septa=82),
        "axial": dict(fat=38, muscle=52, fluid=216, cartilage=120, marrow=44, cortex=7, ligament=16,
                      meniscus=13, oedema=164, vessel=18, vein=180, nerve=70, septa=72),
    },
}
FAT_SUPPRESSED = ("sagittal", "axial")
# Noise sd before the publisher's scaling, per sequence: the fat-suppressed series are noisy (their
# background is noise, not black: 5 % of real sagittal pixels are below 10), the T1 coronal clean.
NOISE = {"sagittal": (9.0, 16.0), "coronal": (2.0, 6.0), "axial": (6.0, 12.0)}
# How much brighter the coil makes the field of view's edge: the wide T1 coronal field reaches nearer
# the coil's elements (its brightest 1 % is subcutaneous fat at the edge: real p90 158 of 255).
COIL_EDGE = {"sagittal": (0.05, 0.4), "coronal": (0.45, 0.85), "axial": (0.05, 0.4)}
# Slice normal, row and column directions in the scanner frame; field of view and coverage (mm); the
# field of view's centre in knee coordinates: a real sagittal series puts the joint line about 23 px
# below the image's centre (horn rows about 150, REAL_KNEE.md), the femur taking the room above it.
GEOMETRY = {
    "sagittal": dict(normal=(1, 0, 0), row=(0, 0, -1), col=(0, -1, 0), fov=150.0, coverage=(-58.0, 58.0),
                     centre=(0.0, 0.0, 14.0)),
    "coronal": dict(normal=(0, 1, 0), row=(0, 0, -1), col=(1, 0, 0), fov=195.0, coverage=(-52.0, 46.0),
                    centre=(0.0, 0.0, 8.0)),
    "axial": dict(normal=(0, 0, 1), row=(0, -1, 0), col=(1, 0, 0), fov=142.0, coverage=(-36.0, 52.0),
                  centre=(0.0, 0.0, 0.0)),
}
# The textures' random plane waves: (count, shortest and longest wavelength in mm, how much of each
# wave's direction may point along z: 1 any way, small = stripes that run up and down).
WAVES = {"trabecular": (8, 2.5, 6.0, 1.0), "striated": (6, 2.4, 5.0, 0.15), "septa": (4, 10.0, 24.0, 1.0),
         "cellular": (6, 3.5, 8.0, 1.0), "fibres": (6, 3.0, 7.0, 0.35), "lobules": (5, 6.0, 16.0, 1.0)}
# What each texture does to its tissue's signal: multiply by 1 + amplitude * f, or mix toward septa.
TEXTURES = {"trabecular": ("multiply", 0.24), "striated": ("multiply", 0.15), "septa": ("mix", 0.45),
            "cellular": ("multiply", 0.30), "fibres": ("multiply", 0.13), "lobules": ("mix", 0.4)}


def slice_count(rng):
    """17-61 like the real data, most between 20 and 45 (median about 30)."""
    if rng.random() < 0.04:
        return int(rng.integers(46, 62))
    return int(np.clip(np.round(rng.normal(30, 6)), 17, 45))


def rotation(rng, degrees):
    ax, ay, az = np.deg2rad(rng.uniform(-degrees, degrees, 3))
    return axis_turn(0, ax) @ axis_turn(1, ay) @ axis_turn(2, az)


def axis_turn(axis, angle):
    """A turn by `angle` (radians) about one coordinate axis."""
    c, s = np.cos(angle), np.sin(angle)
    a, b = [i for i in range(3) if i != axis]
    out = np.eye(3, dtype=np.float32)
    out[a, a], out[a, b], out[b, a], out[b, b] = c, -s, s, c
    return out


def texture_waves(rng, amplitude=1.0):
    """One knee's textures: per texture the wave vectors (n, 3; radians per mm) and phases of its
    plane waves, and an amplitude factor (the randomised corpus draws it)."""
    out = {}
    for name, (count, lo, hi, along_z) in WAVES.items():
        direction = rng.normal(size=(count, 3))
        direction[:, 2] *= along_z
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        k = direction * (2 * np.pi / rng.uniform(lo, hi, count))[:, None]
        out[name] = (k.astype(np.float32), rng.uniform(0, 2 * np.pi, count).astype(np.float32))
    out["amplitude"] = float(amplitude)
    return out


def texture_field(name, waves, grid):
    """The texture's factor (multiply) or septum weight (mix) over the grid's voxels.

    A plane wave over a grid whose knee coordinates are affine in the voxel indices (k, i, j) is
    a product of three 1-D complex exponentials, so the sum of a texture's waves is one complex
    matrix product over the slice axis: no cosine per voxel."""
    k_vectors, phase = waves[name]
    n, size = grid.shape[0], grid.shape[1]
    per_index = k_vectors @ grid.linear.T  # (waves, 3): radians per step in k, i, j
    start = k_vectors @ grid.offset + phase
    steps = [np.exp(1j * per_index[:, a, None] * np.arange(m, dtype=np.float32)).astype(np.complex64)
             for a, m in enumerate(grid.shape)]
    along = steps[0] * np.exp(1j * start)[:, None].astype(np.complex64)  # (waves, slices)
    rows = (along[:, :, None] * steps[1][:, None, :]).reshape(len(phase), n * size)  # (waves, slices * rows)
    s = (rows.T @ steps[2]).real.reshape(grid.shape) * (1.0 / np.sqrt(len(phase)))
    kind, amplitude = TEXTURES[name]
    amplitude *= waves["amplitude"]
    if kind == "mix":  # thin strands where the smooth field crosses zero
        return np.clip(amplitude * np.exp(-(s * (1 / 0.09)) ** 2), 0.0, 1.0).astype(np.float32)
    if name == "trabecular":
        return (1.0 + amplitude * np.tanh(1.3 * s)).astype(np.float32)
    if name == "cellular":
        return (1.0 + amplitude * (np.abs(s) - 0.55)).astype(np.float32)
    return (1.0 + amplitude * s).astype(np.float32)


class Grid:
    """Voxel centres of one stack in knee coordinates, and the inverse map used for culling."""

    def __init__(self, plane, slices, size, pose, shift, coverage_scale, along=0.0):
        g = GEOMETRY[plane]
        rot, trans, scale = pose
        n, r, c = (np.asarray(g[k], np.float32) for k in ("normal", "row", "col"))
        lo, hi = (v * coverage_scale for v in g["coverage"])
        self.spacing = (hi - lo) / slices
        self.pixel = g["fov"] / size
        # the field of view's centre: the plane's own (GEOMETRY), moved in-plane by `shift` and along
        # the normal by `along` (a partial-volume sub-slice, in slice spacings)
        centre = np.asarray(g["centre"], np.float32) + n * ((lo + hi) / 2 + along * self.spacing) \
            + r * shift[0] + c * shift[1]
        # scanner point of index (k, i, j) = origin + k*dk + i*di + j*dj
        self.origin = centre - n * self.spacing * (slices - 1) / 2 - (r + c) * self.pixel * (size - 1) / 2
        self.steps = np.stack([n * self.spacing, r * self.pixel, c * self.pixel])  # rows: dk, di, dj
        self.shape = (slices, size, size)
        self.rot, self.trans, self.scale = rot, trans, scale
        # knee = R^T (scanner - t) / s is affine in (k, i, j): fold it, then build x, y, z separately
        self.linear = (self.steps @ rot) / scale  # rows: knee step per k, i, j
        self.offset = ((self.origin - trans) @ rot) / scale
        linear, offset = self.linear, self.offset
        k, i, j = (np.arange(m, dtype=np.float32) for m in self.shape)
        self.knee = tuple(
            (offset[a] + k[:, None, None] * linear[0, a] + i[None, :, None] * linear[1, a])
            + j[None, None, :] * linear[2, a]
            for a in range(3))

    def box(self, shape):
        """Index slices of the voxels the shape's box (shapes.corners) can touch, or None if outside."""
        p = (corners(shape) * self.scale) @ self.rot.T + self.trans - self.origin
        idx = np.linalg.solve(self.steps.T, p.T)  # (3, 8) fractional indices of the corners
        out = []
        for axis in range(3):
            lo, hi = int(np.floor(idx[axis].min() - 1.5)), int(np.ceil(idx[axis].max() + 1.5)) + 1
            lo, hi = max(lo, 0), min(hi, self.shape[axis])
            if lo >= hi:
                return None
            out.append(slice(lo, hi))
        return tuple(out)


def tissue_of(shape):
    """(tissue, strength) of a shape: lesions are painted at a share of their tissue's signal."""
    return shape.tissue if isinstance(shape.tissue, tuple) else (shape.tissue, 1.0)


def label_signals(shapes, table, rng, spread=0.1):
    """{sub-label: signal}: each sub-label its tissue's signal from `table`, times a factor of its own
    (1 +/- spread, drawn from a stream named by the label, so adding a shape moves no other draw)."""
    seed = int(rng.integers(1 << 31))
    out = {}
    for shape in shapes:
        tissue, _ = tissue_of(shape)
        label = shape.label or tissue
        if label not in out:
            jitter = np.random.default_rng([seed, zlib.crc32(label.encode())]).uniform(1 - spread, 1 + spread)
            out[label] = float(table[tissue] * jitter)
    out["septa"] = float(table["septa"])
    return out


def paint(image, grid, shapes, signals, waves, keep=(), fat_gain=None):
    """Anti-aliased painter's algorithm; returns {name: boolean mask} for names in `keep` (a name
    several shapes share, as the pieces of one bone, gets the union of their masks). `fat_gain`: a
    field over the grid multiplying fat's signal (failed fat suppression)."""
    soft = grid.pixel / grid.scale
    masks = {name: np.zeros(grid.shape, bool) for name in keep}
    fields = {}
    for shape in shapes:
        box = grid.box(shape)
        if box is None:
            continue
        q = tuple(c[box] for c in grid.knee)
        d = signed_distance(shape, q)
        tissue, strength = tissue_of(shape)
        alpha = np.clip(0.5 - d / soft, 0.0, 1.0) * strength
        value = signals[shape.label or tissue]
        if shape.texture:
            if shape.texture not in fields:
                fields[shape.texture] = texture_field(shape.texture, waves, grid)
            field = fields[shape.texture][box]
            value = value + field * (signals["septa"] - value) if TEXTURES[shape.texture][0] == "mix" \
                else value * field
        if fat_gain is not None and tissue == "fat":
            value = value * fat_gain[box]
        sub = image[box]
        sub += alpha * (value - sub)
        if shape.name in masks:
            masks[shape.name][box] |= d < 0
    return masks


def upsample2(image, axis):
    """Bilinear 2x along one axis (pixel-centre aligned, edges clamped): 0.75/0.25 weights."""
    a = np.moveaxis(image, axis, -1)
    prev = np.concatenate([a[..., :1], a[..., :-1]], axis=-1)
    nxt = np.concatenate([a[..., 1:], a[..., -1:]], axis=-1)
    out = np.empty(a.shape[:-1] + (2 * a.shape[-1],), np.float32)
    out[..., 0::2] = 0.75 * a + 0.25 * prev
    out[..., 1::2] = 0.75 * a + 0.25 * nxt
    return np.moveaxis(out, -1, axis)


def bias_field(rng, shape, edge=(0.05, 0.4)):
    """Smooth multiplicative coil shading across the field of view, brighter toward the edge by
    `edge` (a knee coil's elements sit round the knee)."""
    yy, xx = np.meshgrid(np.linspace(-1, 1, shape[1], dtype=np.float32),
                         np.linspace(-1, 1, shape[2], dtype=np.float32), indexing="ij")
    a, b = rng.uniform(-0.25, 0.25, 2)
    c = rng.uniform(*edge)
    return (1 + a * yy + b * xx + c * (yy * yy + xx * xx - 0.66)).astype(np.float32)


def surface_coil(rng, shape, peak=0.75):
    """A receive coil on one side: signal falls off with the distance from it (1 + `peak` at it)."""
    yy, xx = np.meshgrid(np.linspace(-1, 1, shape[1], dtype=np.float32),
                         np.linspace(-1, 1, shape[2], dtype=np.float32), indexing="ij")
    angle = rng.uniform(0, 2 * np.pi)
    cy, cx = 1.6 * np.sin(angle), 1.6 * np.cos(angle)
    reach = rng.uniform(1.6, 2.4)
    return (0.55 + peak * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / reach ** 2)).astype(np.float32)


def blur(image, rng, edge=None):
    """Point-spread blur in-plane (k-space truncation): a 3-tap kernel along rows, then columns."""
    edge = rng.uniform(0.12, 0.22) if edge is None else edge
    for axis in (1, 2):
        a = np.moveaxis(image, axis, -1)
        prev = np.concatenate([a[..., :1], a[..., :-1]], axis=-1)
        nxt = np.concatenate([a[..., 1:], a[..., -1:]], axis=-1)
        image = np.moveaxis((1 - 2 * edge) * a + edge * (prev + nxt), -1, axis)
    return image


def ghosts(rng, source, strength=(0.2, 0.45)):
    """Copies of `source` along the phase-encoding direction (columns), fading with their order: what
    vessel pulsation (source: the artery) and motion (source: the whole image) produce."""
    period = int(rng.integers(20, 60))
    return sum(rng.uniform(*strength) / (abs(k) ** 0.7) * np.roll(source, k * period, axis=2)
               for k in (-3, -2, -1, 1, 2, 3)).astype(np.float32)


def fat_suppression_failure(rng, grid, gain=(1.0, 4.0)):
    """Fat's signal multiplied by up to 1 + `gain` over one side of the field of view: a
    fat-saturation pulse that missed part of the knee."""
    direction = rng.normal(size=3)
    direction /= np.linalg.norm(direction)
    reach = rng.uniform(25, 70)
    side = sum(direction[a] * grid.knee[a] for a in range(3)) / reach + rng.uniform(-1.0, 1.0)
    return (1.0 + rng.uniform(*gain) / (1.0 + np.exp(-3.0 * side))).astype(np.float32)


def random_rendering(rng, plane, style):
    """A rendering drawn at random for one stack, for the randomised corpus (domain randomisation,
    after SynthSeg): a model that sees every plausible contrast, coil, noise, blur, resolution and
    artefact cannot lean on one renderer's look. Half the stacks jitter the style's own sequence
    widely, sub-label by sub-label; the other half draw every sub-label's signal on its own, keeping
    fluid (a tear's signal) at least 40 apart from the ligament and meniscus it sits in, so a slice
    labelled torn shows a tear to be seen."""
    return {"rng": rng, "mode": "jitter" if rng.random() < 0.5 else "free", "seed": int(rng.integers(1 << 31)),
            "coil": rng.choice(["polynomial", "surface"]), "noise": rng.choice(["gaussian", "rician"]),
            "sigma": float(rng.uniform(1.5, 9.0)), "blur": float(rng.uniform(0.05, 0.25)) if rng.random() < 0.5 else 0.0,
            "render_size": 64 if rng.random() < 0.25 else None,  # a coarser acquisition
            "thickness": float(rng.uniform(0.15, 0.4)) if rng.random() < 0.4 else 0.0,  # partial volume
            "artery_ghosts": rng.random() < 0.25, "motion": rng.random() < 0.1,
            "fat_failure": plane in FAT_SUPPRESSED and rng.random() < 0.2,
            "texture_amplitude": float(rng.uniform(0.4, 1.8)),
            # a stack that misses the knee: the localiser must find nothing on it
            "outside": bool(rng.random() < 0.1)}


def random_signals(shapes, table, rendering):
    """Sub-label signals of a random rendering (random_rendering's "mode")."""
    rng = np.random.default_rng(rendering["seed"])
    if rendering["mode"] == "jitter":
        out = label_signals(shapes, table, rng, spread=0.0)
        out = {k: float(np.clip(v * rng.uniform(0.5, 1.6), 3, 255)) for k, v in out.items()}
    else:
        labels = {s.label or tissue_of(s)[0] for s in shapes} | {"septa"}
        out = {k: float(rng.uniform(3, 250)) for k in sorted(labels)}
    # the structures a tear lies in keep 40 grey levels from fluid, a tear's signal: moved away if not
    for label in ("ACL", "medial meniscus", "lateral meniscus"):
        if label in out and "fluid" in out and abs(out[label] - out["fluid"]) < 40:
            room_below, room_above = out["fluid"] - 3, 250 - out["fluid"]
            step = rng.uniform(40, max(room_below, room_above))
            out[label] = out["fluid"] - step if room_below >= room_above else out["fluid"] + step
    return out


def render_stack(rng, plane, shapes, pose, size, bad=None, keep=(), style="anatomical", rendering=None,
                 waves=None):
    """Return (uint8 (slices, 256, 256), {name in keep: boolean mask at 256}).

    From `rng` a stack draws its geometry (slice count, coverage, shift) and one seed for everything
    else, so a randomised rendering (random_rendering's dict: signals, coil, noise, blur, resolution,
    slice thickness, artefacts from a stream of its own) leaves the exam's later stacks as they were.
    `waves`: the knee's textures (texture_waves)."""
    geometric = style == "geometric"
    slices = slice_count(rng)
    shift = rng.uniform(-9, 9, 2)
    coverage = rng.uniform(0.9, 1.08)
    own = np.random.default_rng(rng.integers(1 << 63))  # the plain look of this stack
    table = CONTRAST[style][plane]
    look, size = (own, size) if rendering is None else (rendering["rng"], rendering["render_size"] or size)
    if bad == "out of field of view":  # the knee outside it: air and noise (from the look's own stream)
        shift = look.choice([-1, 1], 2) * look.uniform(0.8, 1.0, 2) * GEOMETRY[plane]["fov"]
    waves = waves or texture_waves(np.random.default_rng(0))
    if rendering is None:
        signals = label_signals(shapes, table, own)
    else:
        signals = random_signals(shapes, table, rendering)
        waves = {**waves, "amplitude": waves["amplitude"] * rendering["texture_amplitude"]}
    wanted = set(keep)
    keep = wanted | ({"popliteal artery"} if rendering is not None and rendering["artery_ghosts"] else set())
    # uneven fat suppression: half of the plain fat-suppressed stacks mildly, some corpus stacks badly
    strength = (0.0, 0.0) if plane not in FAT_SUPPRESSED else (0.0, 1.2) if own.random() < 0.5 else (0.0, 0.0)
    if rendering is not None:
        strength = (1.0, 4.0) if rendering["fat_failure"] else (0.0, 0.0)
    strength = strength if strength[1] > 0 else None
    offsets = [0.0] if rendering is None or not rendering["thickness"] else \
        [-rendering["thickness"], rendering["thickness"]]
    image, masks = None, None
    for along in offsets:  # a thick slice: the mean of sub-slices either side of its centre
        grid = Grid(plane, slices, size, pose, shift, coverage, along)
        fat_gain = fat_suppression_failure(look, grid, strength) if strength else None
        part = np.zeros(grid.shape, np.float32)
        found = paint(part, grid, shapes, signals, waves, keep, fat_gain)
        image = part if image is None else image + part
        masks = found if masks is None else {k: masks[k] | m for k, m in found.items()}
    image /= len(offsets)
    factor = OUT // image.shape[1]
    while image.shape[1] < OUT:
        image = upsample2(upsample2(image, 1), 2)
    if factor > 1:  # nearest neighbour: each pixel a factor x factor block, one repeat per axis
        masks = {k: m.repeat(factor, 1).repeat(factor, 2) for k, m in masks.items()}
    if rendering is not None:
        image *= surface_coil(look, image.shape) if rendering["coil"] == "surface" else bias_field(look, image.shape)
        sigma = rendering["sigma"]
        if rendering["artery_ghosts"]:
            image = image + ghosts(look, image * masks["popliteal artery"], (0.6, 1.4))
        if rendering["motion"]:
            image = image + ghosts(look, image, (0.05, 0.15))
    else:
        image *= surface_coil(own, image.shape, 2.6 if plane == "coronal" else 0.75) if geometric \
            else bias_field(own, image.shape, COIL_EDGE[plane])
        sigma = own.uniform(*NOISE[plane])
    if bad == "pulsation artefact":
        image = image + ghosts(look, image)
        sigma *= 2.5
    rician = geometric if rendering is None else rendering["noise"] == "rician"
    if (geometric and rendering is None) or (rendering is not None and rendering["blur"] > 0):
        image = blur(image, look, None if rendering is None else rendering["blur"])
    if rician:
        imaginary = look.standard_normal(image.shape, dtype=np.float32) * sigma
        image = np.hypot(image + look.standard_normal(image.shape, dtype=np.float32) * sigma, imaginary)
    else:
        image = np.abs(image + look.standard_normal(image.shape, dtype=np.float32) * sigma)
    # like the publisher's scaling: about 1 % of pixels saturate at 255
    p99 = np.percentile(image[:, ::3, ::3], 99.0)
    image = image * (255.0 / max(p99, 1.0)) - sigma * 0.25
    masks = {k: masks[k] for k in wanted}
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), masks
