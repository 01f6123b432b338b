"""Sample one knee into MRNet's three stacks, each with its own slice count, geometry and contrast.

The knee is analytic, so each stack is rendered straight onto its own voxel grid: no 3-D volume is
ever built, and every shape is evaluated only inside the index box its bounding sphere covers.
Rendering happens at `render_size` in-plane and is resampled to 256 x 256 before the noise, which is
added at full resolution so the texture is real-size.

Two styles (see anatomy.py for their drawings). "anatomical": CONTRAST, a smooth polynomial coil
shading, and magnitude-of-Gaussian noise. "geometric": other CONTRAST (the same three MRNet
sequences with other tissue ratios), a surface-coil profile that is brightest near one side of
the field of view, a point-spread blur (k-space truncation), and Rician noise (the magnitude of
a complex signal with noise in both channels). Both are scaled like the publisher's series.
"""

import numpy as np
from phantom.shapes import signed_distance

OUT = 256
# Tissue signal per style and sequence before exam jitter (arbitrary units, roughly 0-255). The
# geometric style keeps the three MRNet sequences with other tissue ratios (darker marrow on T1, ...).
CONTRAST = {
    "anatomical": {
        # sagittal T2 fat-sat: fluid bright, fat and marrow dark
        "sagittal": dict(fat=34, muscle=50, fluid=245, cartilage=118, marrow=42, cortex=6, ligament=12,
                         meniscus=9, oedema=195),
        # coronal T1: fat and marrow bright, fluid dark
        "coronal": dict(fat=215, muscle=38, fluid=40, cartilage=92, marrow=205, cortex=6, ligament=12,
                        meniscus=9, oedema=85),
        # axial PD fat-sat
        "axial": dict(fat=44, muscle=64, fluid=225, cartilage=140, marrow=52, cortex=6, ligament=14,
                      meniscus=11, oedema=185),
    },
    "geometric": {
        "sagittal": dict(fat=24, muscle=36, fluid=236, cartilage=92, marrow=31, cortex=8, ligament=16,
                         meniscus=12, oedema=170),
        "coronal": dict(fat=200, muscle=33, fluid=46, cartilage=72, marrow=178, cortex=8, ligament=16,
                        meniscus=11, oedema=92),
        "axial": dict(fat=38, muscle=52, fluid=216, cartilage=120, marrow=44, cortex=7, ligament=16,
                      meniscus=13, oedema=164),
    },
}
# Slice normal, row and column directions in the scanner frame; field of view and coverage (mm).
GEOMETRY = {
    "sagittal": dict(normal=(1, 0, 0), row=(0, 0, -1), col=(0, -1, 0), fov=150.0, coverage=(-58.0, 58.0)),
    "coronal": dict(normal=(0, 1, 0), row=(0, 0, -1), col=(1, 0, 0), fov=215.0, coverage=(-52.0, 46.0)),
    "axial": dict(normal=(0, 0, 1), row=(0, -1, 0), col=(1, 0, 0), fov=142.0, coverage=(-36.0, 52.0)),
}


def slice_count(rng):
    """17-61 like the real data, most between 20 and 45 (median about 30)."""
    if rng.random() < 0.04:
        return int(rng.integers(46, 62))
    return int(np.clip(np.round(rng.normal(30, 6)), 17, 45))


def rotation(rng, degrees):
    ax, ay, az = np.deg2rad(rng.uniform(-degrees, degrees, 3))
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return (rz @ ry @ rx).astype(np.float32)


class Grid:
    """Voxel centres of one stack in knee coordinates, and the inverse map used for culling."""

    def __init__(self, plane, slices, size, pose, shift, coverage_scale):
        g = GEOMETRY[plane]
        rot, trans, scale = pose
        n, r, c = (np.asarray(g[k], np.float32) for k in ("normal", "row", "col"))
        lo, hi = (v * coverage_scale for v in g["coverage"])
        self.spacing = (hi - lo) / slices
        self.pixel = g["fov"] / size
        centre = n * (lo + hi) / 2 + r * shift[0] + c * shift[1]
        # scanner point of index (k, i, j) = origin + k*dk + i*di + j*dj
        self.origin = centre - n * self.spacing * (slices - 1) / 2 - (r + c) * self.pixel * (size - 1) / 2
        self.steps = np.stack([n * self.spacing, r * self.pixel, c * self.pixel])  # rows: dk, di, dj
        self.shape = (slices, size, size)
        self.rot, self.trans, self.scale = rot, trans, scale
        # knee = R^T (scanner - t) / s is affine in (k, i, j): fold it, then build x, y, z separately
        linear = (self.steps @ rot) / scale  # rows: knee step per k, i, j
        offset = ((self.origin - trans) @ rot) / scale
        k, i, j = (np.arange(m, dtype=np.float32) for m in self.shape)
        self.knee = tuple(
            (offset[a] + k[:, None, None] * linear[0, a] + i[None, :, None] * linear[1, a])
            + j[None, None, :] * linear[2, a]
            for a in range(3))

    def box(self, centre, radius):
        """Index slices of the voxels a sphere (knee coordinates) can touch, or None if outside."""
        p = self.rot @ (centre * self.scale) + self.trans - self.origin
        idx = np.linalg.solve(self.steps.T, p)
        extent = radius * self.scale / np.array([self.spacing, self.pixel, self.pixel]) + 1.5
        out = []
        for axis, (mid, half) in enumerate(zip(idx, extent)):
            lo, hi = int(np.floor(mid - half)), int(np.ceil(mid + half)) + 1
            lo, hi = max(lo, 0), min(hi, self.shape[axis])
            if lo >= hi:
                return None
            out.append(slice(lo, hi))
        return tuple(out)


def paint(image, grid, shapes, tissues, keep=()):
    """Anti-aliased painter's algorithm; returns {name: boolean mask} for names in `keep`."""
    soft = grid.pixel / grid.scale
    masks = {}
    for shape in shapes:
        box = grid.box(*shape.bound)
        tissue, strength = shape.tissue if isinstance(shape.tissue, tuple) else (shape.tissue, 1.0)
        if box is None:
            if shape.name in keep:
                masks[shape.name] = np.zeros(grid.shape, bool)
            continue
        d = signed_distance(shape, tuple(c[box] for c in grid.knee))
        alpha = np.clip(0.5 - d / soft, 0.0, 1.0) * strength
        sub = image[box]
        sub += alpha * (tissues[tissue] - sub)
        if shape.name in keep:
            mask = np.zeros(grid.shape, bool)
            mask[box] = d < 0
            masks[shape.name] = mask
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


def bias_field(rng, shape):
    """Smooth multiplicative coil shading across the field of view."""
    yy, xx = np.meshgrid(np.linspace(-1, 1, shape[1], dtype=np.float32),
                         np.linspace(-1, 1, shape[2], dtype=np.float32), indexing="ij")
    a, b, c = rng.uniform(-0.18, 0.18, 3)
    return (1 + a * yy + b * xx + c * (yy * yy + xx * xx - 0.66)).astype(np.float32)


def surface_coil(rng, shape):
    """A receive coil on one side: signal falls off with the distance from it."""
    yy, xx = np.meshgrid(np.linspace(-1, 1, shape[1], dtype=np.float32),
                         np.linspace(-1, 1, shape[2], dtype=np.float32), indexing="ij")
    angle = rng.uniform(0, 2 * np.pi)
    cy, cx = 1.6 * np.sin(angle), 1.6 * np.cos(angle)
    reach = rng.uniform(1.6, 2.4)
    return (0.55 + 0.75 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / reach ** 2)).astype(np.float32)


def blur(image, rng, edge=None):
    """Point-spread blur in-plane (k-space truncation): a 3-tap kernel along rows, then columns."""
    edge = rng.uniform(0.12, 0.22) if edge is None else edge
    for axis in (1, 2):
        a = np.moveaxis(image, axis, -1)
        prev = np.concatenate([a[..., :1], a[..., :-1]], axis=-1)
        nxt = np.concatenate([a[..., 1:], a[..., -1:]], axis=-1)
        image = np.moveaxis((1 - 2 * edge) * a + edge * (prev + nxt), -1, axis)
    return image


def pulsation(rng, image):
    """Ghost copies along the phase-encoding direction, as vessel pulsation produces."""
    period = int(rng.integers(20, 60))
    ghosts = sum(rng.uniform(0.2, 0.45) / (abs(k) ** 0.7) * np.roll(image, k * period, axis=2)
                 for k in (-3, -2, -1, 1, 2, 3))
    return image + ghosts.astype(np.float32)


def random_rendering(rng, plane, style):
    """A rendering drawn at random for one stack, for the pretraining corpus (domain randomisation,
    after SynthSeg, Billot et al. 2023): a model that sees every plausible contrast, coil, noise and
    blur cannot lean on one renderer's look. Half the stacks jitter the style's own sequence widely;
    the other half draw every tissue's signal on its own, keeping a tear's fluid at least 40 apart
    from the ligament and meniscus it sits in, so a slice labelled torn shows a tear to be seen."""
    base = CONTRAST[style][plane]
    if rng.random() < 0.5:
        tissues = {k: float(np.clip(v * rng.uniform(0.5, 1.6), 3, 255)) for k, v in base.items()}
    else:
        tissues = {k: float(rng.uniform(3, 250)) for k in base}
        while min(abs(tissues["fluid"] - tissues[k]) for k in ("ligament", "meniscus")) < 40:
            tissues["fluid"] = float(rng.uniform(3, 250))
    return {"rng": rng, "tissues": tissues, "coil": rng.choice(["polynomial", "surface"]),
            "noise": rng.choice(["gaussian", "rician"]), "sigma": float(rng.uniform(1.5, 9.0)),
            "blur": float(rng.uniform(0.05, 0.25)) if rng.random() < 0.5 else 0.0}


def burn_plain_draws(rng, shape, style, bad):
    """Take from `rng` exactly what the style's own rendering of a stack would, so the exam's next
    stacks get the same slice counts, coverage and shifts with or without randomisation."""
    geometric = style == "geometric"
    surface_coil(rng, shape) if geometric else bias_field(rng, shape)
    rng.uniform(3.0, 7.0)
    if bad == "pulsation artefact":
        pulsation(rng, np.zeros((1, 1, 1), np.float32))
    if geometric:
        rng.uniform(0.12, 0.22)
        rng.standard_normal(shape, dtype=np.float32)
    rng.standard_normal(shape, dtype=np.float32)


def render_stack(rng, plane, shapes, pose, size, bad=None, keep=(), style="anatomical", rendering=None):
    """Return (uint8 (slices, 256, 256), {lesion name: boolean mask at 256}).

    `rendering` (random_rendering's dict) replaces the style's contrast, coil, noise and blur; the
    geometry (slice count, coverage, shift) is drawn from `rng` as for any stack."""
    geometric = style == "geometric"
    slices = slice_count(rng)
    shift = rng.uniform(-6, 6, 2)
    if bad == "out of field of view":
        shift = rng.choice([-1, 1], 2) * rng.uniform(55, 75, 2)
    grid = Grid(plane, slices, size, pose, shift, rng.uniform(0.9, 1.08))
    tissues = {k: v * rng.uniform(0.9, 1.1) for k, v in CONTRAST[style][plane].items()}
    if rendering is not None:
        tissues = rendering["tissues"]
    image = np.zeros(grid.shape, np.float32)
    masks = paint(image, grid, shapes, tissues, keep)
    while image.shape[1] < OUT:
        image = upsample2(upsample2(image, 1), 2)
        masks = {k: m.repeat(2, 1).repeat(2, 2) for k, m in masks.items()}
    if rendering is not None:
        burn_plain_draws(rng, image.shape, style, bad)
        rng = rendering["rng"]  # the randomised look draws from its own stream
        image *= surface_coil(rng, image.shape) if rendering["coil"] == "surface" else bias_field(rng, image.shape)
        sigma = rendering["sigma"]
    else:
        image *= surface_coil(rng, image.shape) if geometric else bias_field(rng, image.shape)
        sigma = rng.uniform(3.0, 7.0)
    if bad == "pulsation artefact":
        image = pulsation(rng, image)
        sigma *= 2.5
    rician = geometric if rendering is None else rendering["noise"] == "rician"
    if (geometric and rendering is None) or (rendering is not None and rendering["blur"] > 0):
        image = blur(image, rng, None if rendering is None else rendering["blur"])
    if rician:
        imaginary = rng.standard_normal(image.shape, dtype=np.float32) * sigma
        image = np.hypot(image + rng.standard_normal(image.shape, dtype=np.float32) * sigma, imaginary)
    else:
        image = np.abs(image + rng.standard_normal(image.shape, dtype=np.float32) * sigma)
    # like the publisher's scaling: about 1 % of pixels saturate at 255
    p99 = np.percentile(image[:, ::3, ::3], 99.0)
    image = image * (255.0 / max(p99, 1.0)) - sigma * 0.5
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), masks
