"""The recipe's defaults, one place for every command: fit.py, pretrain.py and the benchmarks add
these flags, so a model pretrained with pretrain.py has exactly the shape fit.py builds, and the
bundle's manifest records the values a run used.
"""

PLANES = ["sagittal", "coronal", "axial"]
LR_FROM_SCRATCH = 3e-3
# From a pretrained init, a tenth: at 3e-3 the fine-tuning forgot what pretraining taught (pilot:
# independent phantom's ACL 0.65 at epoch 4, then lost), at 3e-4 it kept it (0.56-0.67 from epoch 3).
LR_FROM_PRETRAINED = 3e-4


def add_model_arguments(ap):
    """The flags that decide the per-plane network's shape (learning.model.build_model)."""
    ap.add_argument("--backbone", default="compact", choices=["compact", "resnet50", "efficientnetb0"])
    ap.add_argument("--weights", default="none", help="backbone weights: imagenet | none | PATH (%(default)s)")
    ap.add_argument("--width", type=int, default=16, help="compact backbone base width (%(default)s)")
    ap.add_argument("--pooling", default="max", choices=["max", "mean", "attention"], help="over slices")
    ap.add_argument("--space-pool", default="avgmax", choices=["avg", "max", "avgmax"],
                    help="global pooling over each slice's feature map (%(default)s)")
    ap.add_argument("--input-size", type=int, default=64, choices=[64, 128, 256],
                    help="in-plane resolution the CNN sees, by block-averaging the 256 px series "
                         "(%(default)s; README: Input resolution)")
    ap.add_argument("--augment", action="store_true",
                    help="on-device per-exam augmentation: rotation, shift, flip, intensity (off by default: "
                         "it slows convergence more than the short CPU demo can afford)")
    ap.add_argument("--rotate", type=float, default=25.0, help="augmentation rotation, degrees (%(default)s)")
    ap.add_argument("--shift", type=float, default=25.0, help="augmentation shift, pixels at 256 (%(default)s)")
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
    ap.add_argument("--jobs", default="auto",
                    help="planes trained at once, each in its own process; auto: one per plane on a CPU-only "
                         "machine, else 1 (%(default)s)")
    ap.add_argument("--threads", type=int, default=0,
                    help="TensorFlow threads per training process; 0: the cores shared out among --jobs")
    ap.add_argument("--steps-per-execution", type=int, default=8,
                    help="training steps per call into the compiled graph, one replica only (%(default)s)")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    ap.add_argument("--verbose", action="store_true",
                    help="also show TensorFlow's native start-up log lines (or set MRNET_VERBOSE=1)")


def _budget(text):
    import argparse

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
