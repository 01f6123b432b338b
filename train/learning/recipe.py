"""The recipe: every default of the per-plane model and of how it trains, in one place for every
command. fit.py, pretrain.py and localise.py add these flags, build_model reads MODEL_DEFAULTS for
whatever a caller leaves out, and the bundle's manifest records the values a run used. So a model
pretrained with pretrain.py has exactly the shape fit.py builds, and a benchmark that builds a model
without flags builds fit.py's.
"""

import argparse

from mrnet.contract import PLANES  # noqa: F401  (re-exported: the commands' --planes choices)

LR_FROM_SCRATCH = 3e-3
# From a pretrained init, a tenth: at 3e-3 the fine-tuning forgot what pretraining taught (pilot:
# independent phantom's ACL 0.65 at epoch 4, then lost), at 3e-4 it kept it (0.56-0.67 from epoch 3).
LR_FROM_PRETRAINED = 3e-4

# What shapes a plane's network (learning.model.build_model): the manifest records these, a pretrained
# folder is tied to them, and a sweep varies them. Nothing else decides a model's weights' layout.
MODEL_DEFAULTS = dict(
    backbone="compact",  # compact | resnet50 | efficientnetb0
    weights="none",  # keras.applications backbones: imagenet | none | PATH
    width=16,  # compact backbone base width
    pooling="max",  # over each exam's slices: max | mean | attention
    space_pool="avgmax",  # over each slice's feature map: avg | max | avgmax
    input_size=64,  # the whole-slice branch's resolution, by block-averaging the 256 px series
    augment=False,  # per-exam rotation, shift, flip, intensity of the whole-slice branch
    rotate=25.0,  # augmentation rotation, degrees
    shift=25.0,  # augmentation shift, pixels at 256
    dropout=0.3,  # before the exam head
    crops=True,  # a crop branch: windows around the localised ACL and menisci (learning/crops.py)
    crop_width=12,  # the crop CNN's base width
    seed=0,
)
MODEL_KEYS = tuple(MODEL_DEFAULTS)


def model_config(args):
    """The build_model arguments of a run's flags: what a model's weights were trained with."""
    return {key: getattr(args, key) for key in MODEL_KEYS}


def add_model_arguments(ap):
    """The flags that decide the per-plane network's shape (learning.model.build_model)."""
    d = MODEL_DEFAULTS
    ap.add_argument("--backbone", default=d["backbone"], choices=["compact", "resnet50", "efficientnetb0"])
    ap.add_argument("--weights", default=d["weights"], help="backbone weights: imagenet | none | PATH (%(default)s)")
    ap.add_argument("--width", type=int, default=d["width"], help="compact backbone base width (%(default)s)")
    ap.add_argument("--pooling", default=d["pooling"], choices=["max", "mean", "attention"], help="over slices")
    ap.add_argument("--space-pool", default=d["space_pool"], choices=["avg", "max", "avgmax"],
                    help="global pooling over each slice's feature map (%(default)s)")
    ap.add_argument("--input-size", type=int, default=d["input_size"], choices=[64, 128, 256],
                    help="in-plane resolution the whole-slice CNN sees, by block-averaging the 256 px series "
                         "(%(default)s; README: Input resolution)")
    ap.add_argument("--augment", action=argparse.BooleanOptionalAction, default=d["augment"],
                    help="on-device per-exam augmentation of the whole slices: rotation, shift, flip, intensity "
                         "(%(default)s: it slows convergence more than the short CPU demo can afford)")
    ap.add_argument("--rotate", type=float, default=d["rotate"], help="augmentation rotation, degrees (%(default)s)")
    ap.add_argument("--shift", type=float, default=d["shift"], help="augmentation shift, pixels at 256 (%(default)s)")
    ap.add_argument("--dropout", type=float, default=d["dropout"], help="before the exam head (%(default)s)")
    ap.add_argument("--crops", action=argparse.BooleanOptionalAction, default=d["crops"],
                    help="a crop branch over windows the localiser places around the ACL and each meniscus, "
                         "slice by slice (%(default)s; README: Localise, then look)")
    ap.add_argument("--crop-width", type=int, default=d["crop_width"], help="crop CNN base width (%(default)s)")
    ap.add_argument("--seed", type=int, default=d["seed"])


# The localiser (learning/localiser.py): its network's shape, which its manifest records, and how it trains.
LOCALISER = dict(input_size=128, width=8, grid=32, refiner_width=16, refinements=2)
LOCALISER_TRAINING = dict(epochs=8, refiner_epochs=5, lr=2e-3, batch=64, jitter=6.0)


def add_localiser_arguments(ap):
    """localise.py's flags: the localiser's shape and training."""
    from pathlib import Path

    d, t = LOCALISER, LOCALISER_TRAINING
    ap.add_argument("--input-size", type=int, default=d["input_size"], choices=[64, 128],
                    help="the coarse network's view of a slice, block-averaged (%(default)s)")
    ap.add_argument("--width", type=int, default=d["width"], help="coarse network base width (%(default)s)")
    ap.add_argument("--grid", type=int, default=d["grid"], choices=[32, 64],
                    help="heat map cells a side (%(default)s: 8 px at 256)")
    ap.add_argument("--refiner-width", type=int, default=d["refiner_width"], help="(%(default)s)")
    ap.add_argument("--refinements", type=int, default=d["refinements"],
                    help="close-up corrections of each centre (%(default)s)")
    ap.add_argument("--epochs", type=int, default=t["epochs"], help="of the coarse network (%(default)s)")
    ap.add_argument("--refiner-epochs", type=int, default=t["refiner_epochs"], help="(%(default)s)")
    ap.add_argument("--lr", type=float, default=t["lr"])
    ap.add_argument("--batch", type=int, default=t["batch"], help="slices a batch (%(default)s)")
    ap.add_argument("--jitter", type=float, default=t["jitter"],
                    help="the refiner learns from windows placed this far off (sd, px at 256) (%(default)s)")
    ap.add_argument("--measure-on", type=Path, nargs="*", default=[],
                    help="phantom folders (with anatomy truth) whose valid split the precision is also measured on")
    ap.add_argument("--seed", type=int, default=0)


def add_compute_arguments(ap):
    """How the training runs on this machine: batches, processes, threads, compilation."""
    ap.add_argument("--batch-slices", type=_budget, default="auto",
                    help="slice budget per batch; auto: 96, or 32 for a pretrained keras.applications backbone "
                         "at 256 px (about 5 GB a step; README: Measured) (%(default)s)")
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--xla", default="auto", choices=["auto", "on", "off"],
                    help="auto: on, except over several CPU replicas or workers, or for a keras.applications backbone "
                         "on a CPU (a third more memory) (%(default)s)")
    ap.add_argument("--allocator", default="auto", choices=["auto", "retain", "system"],
                    help="retain: training processes keep freed memory for the next step instead of giving it back "
                         "to the kernel (1.25-1.4x faster on a CPU); auto: retain for the compact CNN (%(default)s)")
    ap.add_argument("--jobs", type=_jobs, default="auto",
                    help="planes trained at once, each in its own process; auto: one per plane on a CPU-only "
                         "machine, else 1 (%(default)s)")
    ap.add_argument("--threads", type=int, default=0,
                    help="TensorFlow threads per training process; 0: the cores shared out among --jobs")
    ap.add_argument("--steps-per-execution", type=int, default=8,
                    help="training steps per call into the compiled graph, one replica only (%(default)s)")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    ap.add_argument("--verbose", action="store_true",
                    help="also show TensorFlow's native start-up log lines (or set MRNET_VERBOSE=1)")


def recipe_args(**overrides):
    """Every flag of the recipe at its default, as fit.py parses an empty command line (the learning
    rate from scratch, the slice budget resolved), with `overrides`: what a sweep, a benchmark or a
    test trains with, so that it trains as fit.py trains."""
    ap = argparse.ArgumentParser()
    add_model_arguments(ap)
    add_compute_arguments(ap)
    args = ap.parse_args([])
    args.lr = LR_FROM_SCRATCH
    for key, value in overrides.items():
        if not hasattr(args, key) and key != "lr":
            raise TypeError(f"recipe_args: no flag {key!r} in the recipe")
        setattr(args, key, value)
    args.batch_slices = slice_budget(args)
    return args


def _jobs(text):
    if text != "auto" and not (text.isdigit() and int(text) > 0):
        raise argparse.ArgumentTypeError(f"{text!r} is neither a positive whole number nor auto")
    return text


def _budget(text):
    if text == "auto":
        return text
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a positive whole number nor auto")
    return int(text)


def pretrained_weights(weights):
    """Whether --weights gives a keras.applications backbone learnt statistics (imagenet or a file):
    what decides both its BatchNorm mode (model.applications_backbone) and its slice budget."""
    return weights not in ("none", None)


def slice_budget(args):
    """--batch-slices resolved: training memory is activations, which grow with the slices in a batch.
    The compact CNN at 64 px takes 1.06 GiB for 96 slices; efficientnetb0 at 256 px about 0.13 GiB a
    slice (12.1 GiB for 96, 5.04 GiB for 32: benchmarks/training_memory.py), a quarter of that at
    128 px. So a pretrained keras.applications backbone at 256 px takes 32 slices, about one exam:
    its BatchNorm keeps its statistics (model.applications_backbone), so nothing depends on the
    batch. From scratch (--weights none) its BatchNorm learns from the batch, and over one exam's
    slices that ranked exams inversely: 96 slices, several exams, the memory notwithstanding."""
    if args.batch_slices != "auto":
        return args.batch_slices
    pretrained = pretrained_weights(getattr(args, "weights", "none"))
    return 32 if args.backbone != "compact" and args.input_size == 256 and pretrained else 96
