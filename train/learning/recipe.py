"""The recipe: every setting of every command, with its default, in one place.

Each command's configuration is a frozen dataclass of sections (the plane model, how it trains,
the compute, the corpus, the localiser, the pretraining). The command line is parsed once into
it (`parse`): the flags are made from the fields (their default, help and choices live beside
them), and what a flag leaves to be decided ("auto") is resolved then, into a new frozen value.
Nothing changes it afterwards; a child process or an artefact made on first use receives it as
JSON (`to_json`, `from_json`), and a manifest is it written out. So a model pretrained with
pretrain.py has exactly the shape fit.py builds, and a benchmark or test that builds a
configuration without flags (`fit_config()`) trains as fit.py trains.
"""

import argparse
import json
import math
import typing
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from pathlib import Path

from mrnet.contract import PLANES

ROOT = Path(__file__).resolve().parents[2]

STYLES = ("anatomical", "geometric")
BACKBONES = ("compact", "resnet50", "efficientnetb0")
LR_FROM_SCRATCH = 3e-3
# From a pretrained whole-slice init, a tenth: at 3e-3 the fine-tuning forgot what pretraining taught
# (pilot: independent phantom's ACL 0.65 at epoch 4, then lost), at 3e-4 it kept it. The crop branch's
# pretrained window network is a small part of its model and kept what it learnt at 3e-3.
LR_FROM_PRETRAINED = 3e-4


def option(default, help="", **argparse_kwargs):
    """A field with its flag's help and argparse keywords (type, choices, nargs ...)."""
    return field(default=default, metadata={"help": help, **argparse_kwargs})


def _positive_or_auto(text):
    if text == "auto":
        return text
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a positive whole number nor auto")
    return int(text)


def _weight_or_balanced(text):
    if text == "balanced":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a number nor balanced") from None


def _jobs(text):
    if text != "auto" and not (text.isdigit() and int(text) > 0):
        raise argparse.ArgumentTypeError(f"{text!r} is neither a positive whole number nor auto")
    return text


@dataclass(frozen=True)
class Model:
    """What shapes a plane's network (learning.model.build_model): a pretrained folder is tied to it."""
    backbone: str = option("compact", "the whole-slice CNN", choices=BACKBONES)
    weights: str = option("none", "a keras.applications backbone's weights: imagenet | none | PATH")
    width: int = option(16, "compact backbone base width")
    pooling: str = option("max", "over each exam's slices", choices=("max", "mean", "attention"))
    space_pool: str = option("avgmax", "over each slice's feature map", choices=("avg", "max", "avgmax"))
    input_size: int = option(64, "the whole-slice branch's resolution, by block-averaging the 256 px series",
                             choices=(64, 128, 256))
    augment: bool = option(False, "per-exam rotation, shift, flip, intensity of the whole slices (slows "
                                  "convergence more than the short CPU demo can afford)")
    rotate: float = option(25.0, "augmentation rotation, degrees")
    shift: float = option(25.0, "augmentation shift, pixels at 256")
    dropout: float = option(0.3, "before the exam head")
    crops: bool = option(True, "a crop branch over windows the localiser places around the ACL and each meniscus, "
                               "slice by slice")
    crop_width: int = option(12, "crop CNN base width")
    seed: int = option(0, "initialisation, split and shuffling")


@dataclass(frozen=True)
class Compute:
    """How training runs on this machine; no figure depends on it but time and memory."""
    batch_slices: object = option("auto", "slice budget per batch; auto: 96, or 32 for a pretrained "
                                          "keras.applications backbone at 256 px (about 5 GB a step)",
                                  type=_positive_or_auto)
    weight_decay: float = option(1e-4, "AdamW's")
    xla: str = option("auto", "auto: on, except over several CPU replicas or workers, or for a keras.applications "
                              "backbone on a CPU (a third more memory)", choices=("auto", "on", "off"))
    allocator: str = option("auto", "retain: training processes keep freed memory for the next step (1.25-1.4x "
                                    "faster on a CPU); auto: retain for the compact CNN",
                            choices=("auto", "retain", "system"))
    jobs: str = option("auto", "planes trained at once, each in its own process; auto: one per plane on a "
                               "CPU-only machine, else 1", type=_jobs)
    threads: int = option(0, "TensorFlow threads per training process; 0: the cores shared out among --jobs")
    steps_per_execution: int = option(8, "training steps per call into the compiled graph, one replica only")
    strategy: str = option("auto", "auto: MirroredStrategy over all GPUs when there are several; multiworker: one "
                                   "process per machine, cluster from TF_CONFIG",
                           choices=("auto", "default", "mirrored", "multiworker"))
    cpu_replicas: int = option(1, "split the CPU into N logical devices (tests the multi-replica path)")
    quiet: bool = option(False, "no progress bars", action="store_true")
    verbose: bool = option(False, "also show TensorFlow's native start-up log lines (or set MRNET_VERBOSE=1)",
                           action="store_true")


@dataclass(frozen=True)
class Corpus:
    """The randomised phantom corpus the localiser and the crop CNN learn from (learning/artefacts.py)."""
    styles: tuple = option(STYLES, "drawings of the knee in the corpus; leave out the style you evaluate on",
                           nargs="+", choices=STYLES)
    exams: int = option(120, "training exams per style")
    seed: int = option(7919, "fit.py's phantom uses seed 0: the corpus never holds an exam it trains or scores on")
    dirs: tuple = option((), "learn from these phantom folders instead (anatomy and tear truth beside the series)",
                         nargs="+", type=Path)


@dataclass(frozen=True)
class LocaliserNet:
    """The localiser's shape (learning/localiser.py): its folder's manifest records it."""
    input_size: int = option(128, "the coarse network's view of a slice, block-averaged", choices=(64, 128))
    width: int = option(12, "coarse network base width")
    grid: int = option(32, "heat map cells a side (8 px at 256)", choices=(32, 64))
    refiner_width: int = option(24, "the refiner's base width")
    refinements: int = option(2, "close-up corrections of each centre")


@dataclass(frozen=True)
class LocaliserTraining:
    epochs: int = option(24, "of the coarse network")
    refiner_epochs: int = option(16, "of the refiner")
    lr: float = option(2e-3, "peak learning rate")
    batch: int = option(64, "slices a batch")
    jitter: float = option(6.0, "the refiner learns from windows placed this far off (sd, px at 256)")
    seed: int = option(0, "initialisation and sampling")


@dataclass(frozen=True)
class Pretraining:
    """pretrain.py: the crop CNN on window labels (or the whole-slice model on slice labels)."""
    target: str = option("auto", "windows: the crop CNN on window labels; slices: the whole-slice model on slice "
                                 "labels; auto: windows with --crops", choices=("auto", "windows", "slices"))
    epochs: int = option(0, "0: 20 over windows (an epoch is every window of the corpus), 6 over slices")
    lr: float = option(1e-3, "peak learning rate")
    batch: int = option(128, "windows a batch, with --target windows")


@dataclass(frozen=True)
class Training:
    """How fit.py trains the plane models from exam labels."""
    planes: tuple = option(PLANES, "planes to (re)train", nargs="+", choices=PLANES)
    epochs: int = option(10, "")
    patience: int = option(4, "early stopping on tuning mean AUC, counted from half of --epochs on")
    lr: float = option(None, f"peak learning rate (default {LR_FROM_SCRATCH:g}, or {LR_FROM_PRETRAINED:g} for a "
                             "whole-slice model started from pretrained weights)")
    init: str = option("auto", "where the pretrainable network starts: none (random); shipped (the repository's "
                               "crop CNN, train/artefacts, with --crops); retrain (pretrain.py on the corpus, cached "
                               "on first use); PATH (a folder pretrain.py wrote); auto: shipped with --crops when "
                               "it matches the run, retrain when it does not, none without --crops")
    freeze_epochs: int = option(0, "with a pretrained --init: the pretrained network held still for the first N "
                                   "epochs, then the whole model")
    localiser: str = option("auto", "with --crops, what places the windows: shipped (train/artefacts), retrain "
                                    "(localise.py on the corpus, cached on first use), PATH (a folder localise.py "
                                    "wrote), truth (the phantom's anatomy: the benchmark's ceiling; no bundle); "
                                    "auto: shipped when it matches the run's corpus, else retrain")
    placement_error: float = option(0.0, "with --crops: move every exam's windows by a random offset of this sd "
                                         "(px at 256), held for the whole exam (the benchmark's robustness curve)")
    tune_fraction: float = option(0.2, "share of train held out for early stopping and the combiner")
    abnormal_weight: object = option(1.0, "the loss weight of an abnormal exam against a normal one's 1, or "
                                         "balanced (normal / abnormal exams, about 0.23 on MRNet's 81 %% abnormal; "
                                         "1 lifted combined abnormal AUC by 0.05 over three phantom seeds)",
                                    type=_weight_or_balanced)
    ensemble: int = option(1, "models per plane, each from its own seed (its initialisation and shuffling; the "
                              "split stays the run's), their logits averaged inside the plane's SavedModel")
    resume: bool = option(False, "continue an interrupted run in --run-dir", action="store_true")


@dataclass(frozen=True)
class FitConfig:
    data_dir: Path = option(None, "MRNet-v1.0 root (default: the phantom, generated on first use)", type=Path)
    bundle: Path = option(None, "output bundle (default: submission/bundle)", type=Path)
    run_dir: Path = option(None, "checkpoints, logs and curves (default: runs/latest)", type=Path)
    training: Training = Training()
    model: Model = Model()
    compute: Compute = Compute()
    corpus: Corpus = Corpus()
    localiser: LocaliserNet = LocaliserNet()  # for --localiser retrain: the recipe's own
    localiser_training: LocaliserTraining = LocaliserTraining()
    pretraining: Pretraining = Pretraining()  # for --init retrain: the recipe's own


@dataclass(frozen=True)
class LocaliseConfig:
    out: Path = option(None, "folder to write the weights and manifest into", type=Path)
    planes: tuple = option(PLANES, "", nargs="+", choices=PLANES)
    measure_on: tuple = option((), "phantom folders (with anatomy truth) whose valid split the precision is also "
                                   "measured on", nargs="*", type=Path)
    net: LocaliserNet = LocaliserNet()
    training: LocaliserTraining = LocaliserTraining()
    corpus: Corpus = Corpus()
    compute: Compute = Compute()


@dataclass(frozen=True)
class CheckConfig:
    """localise.py --check: where a localiser's windows fall on a folder's series (exploring/localisation.py)."""
    check: bool = option(False, "look at a localiser on --data-dir instead of training one", action="store_true")
    data_dir: Path = option(None, "MRNet-v1.0 root (default: the phantom, generated on first use)", type=Path)
    localiser: str = option("shipped", "shipped (train/artefacts/localiser) or PATH (a folder localise.py wrote)")
    split: str = option("valid", "", choices=("train", "valid"))
    exams: int = option(20, "the split's first N cases per plane")
    planes: tuple = option(PLANES, "", nargs="+", choices=PLANES)
    out: Path = option(ROOT / "runs" / "check", "a montage <out>/<plane>.png per plane and check.json", type=Path)
    tile: int = option(96, "pixels a side of each slice in the montage", choices=(64, 96, 128, 256))
    columns: int = option(0, "at most N slices per exam in the montage, evenly spread; 0: every slice")
    verbose: bool = option(False, "also show TensorFlow's native start-up log lines", action="store_true")


@dataclass(frozen=True)
class MarksConfig:
    """localise.py --marks: a localiser fine-tuned on a reader's marks (learning/marks.py)."""
    marks: Path = option(None, "a reader's marks, JSON lines (README: Marks from a reader)", type=Path)
    data_dir: Path = option(None, "the MRNet-v1.0 root the marks are on", type=Path)
    localiser: str = option("shipped", "the localiser to fine-tune: shipped (train/artefacts/localiser) or PATH")
    out: Path = option(None, "the fine-tuned localiser's folder (fit.py --localiser PATH)", type=Path)
    hold_out: float = option(0.3, "share of the marked exams kept out, to measure the localiser on before and after")
    corpus_share: float = option(0.5, "share of the fine-tuning slices drawn from the corpus, so that what the "
                                      "phantom taught is kept")
    epochs: int = option(10, "of the coarse network")
    refiner_epochs: int = option(5, "of the refiner")
    lr: float = option(5e-4, "peak learning rate (a quarter of training's: the network is adjusted, not retaught)")
    seed: int = option(0, "the held-out draw, the corpus slices drawn, the sampling")
    corpus: Corpus = Corpus()  # left at its defaults: the base localiser's own corpus (its manifest)
    compute: Compute = Compute()


@dataclass(frozen=True)
class PretrainConfig:
    out: Path = option(None, "folder to write the weights and manifest into", type=Path)
    planes: tuple = option(PLANES, "", nargs="+", choices=PLANES)
    pretraining: Pretraining = Pretraining()
    model: Model = Model()
    corpus: Corpus = Corpus()
    compute: Compute = Compute()


# the flag prefix of a section, where its fields would clash with another's
PREFIX = {"corpus": "corpus-"}


def _hints(cls):
    return typing.get_type_hints(cls)


def add_flags(ap, cls, dest="", prefix="", skip=()):
    """A flag per field of `cls` (and of its sections, each under its own dest prefix)."""
    hints = _hints(cls)
    for f in fields(cls):
        if f.name in skip:
            continue
        kind = hints[f.name]
        if is_dataclass(kind):
            if f.name in ("localiser", "localiser_training", "pretraining") and cls is FitConfig:
                continue  # fit.py retrains artefacts with the recipe's own settings, no flags of theirs
            add_flags(ap, kind, f"{dest}{f.name}.", PREFIX.get(f.name, ""))
            continue
        meta = dict(f.metadata)
        text = meta.pop("help", "")
        if kind is bool and "action" not in meta:
            meta["action"] = argparse.BooleanOptionalAction
        elif kind in (int, float, str) and "type" not in meta:
            meta["type"] = kind
        if kind is tuple and meta.get("type") is None:
            meta["type"] = str
        if meta.get("action") not in ("store_true", argparse.BooleanOptionalAction) and "choices" not in meta:
            meta["metavar"] = f.name.upper()
        default = list(f.default) if isinstance(f.default, tuple) else f.default
        shown = "" if default in (None, (), []) else " (%(default)s)"
        ap.add_argument("--" + prefix + f.name.replace("_", "-"), dest=dest + f.name, default=default,
                        help=text + shown, **meta)


def from_namespace(cls, namespace, dest=""):
    """The frozen configuration of a parsed command line (the flags add_flags made)."""
    values = {}
    for f in fields(cls):
        kind = _hints(cls)[f.name]
        if is_dataclass(kind):
            values[f.name] = from_namespace(kind, namespace, f"{dest}{f.name}.")
        elif hasattr(namespace, dest + f.name):
            value = getattr(namespace, dest + f.name)
            values[f.name] = tuple(value) if kind is tuple and value is not None else value
    return cls(**values)


def to_dict(config):
    """A configuration as plain JSON values (paths as strings, tuples as lists)."""
    def plain(value):
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, (tuple, list)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value
    return plain(asdict(config))


def from_dict(cls, values):
    """A configuration back from to_dict's values; a key it does not know is refused by name."""
    unknown = set(values) - {f.name for f in fields(cls)}
    if unknown:
        raise TypeError(f"{cls.__name__}: unknown settings {sorted(unknown)}")
    out = {}
    for f in fields(cls):
        if f.name not in values:
            continue
        kind, value = _hints(cls)[f.name], values[f.name]
        if is_dataclass(kind):
            value = from_dict(kind, value)
        elif kind is tuple:
            value = tuple(Path(v) for v in value) if f.metadata.get("type") is Path else tuple(value)
        elif kind is Path and value is not None:
            value = Path(value)
        out[f.name] = value
    return cls(**out)


def to_json(config):
    return json.dumps(to_dict(config), sort_keys=True)


def from_json(cls, text):
    return from_dict(cls, json.loads(text))


def pretrained_weights(weights):
    """Whether --weights gives a keras.applications backbone learnt statistics (imagenet or a file):
    what decides both its BatchNorm mode (model.applications_backbone) and its slice budget."""
    return weights not in ("none", None)


def slice_budget(model, compute):
    """--batch-slices resolved: training memory is activations, which grow with the slices in a batch.
    The compact CNN at 64 px takes 1.06 GiB for 96 slices; efficientnetb0 at 256 px about 0.13 GiB a
    slice (12.1 GiB for 96, 5.04 GiB for 32: benchmarks/training_memory.py), a quarter of that at
    128 px. So a pretrained keras.applications backbone at 256 px takes 32 slices, about one exam:
    its BatchNorm keeps its statistics (model.applications_backbone), so nothing depends on the
    batch. From scratch its BatchNorm learns from the batch, and over one exam's slices that ranked
    exams inversely: 96 slices, several exams, the memory notwithstanding."""
    if compute.batch_slices != "auto":
        return compute.batch_slices
    pretrained = pretrained_weights(model.weights)
    return 32 if model.backbone != "compact" and model.input_size == 256 and pretrained else 96


def resolve_fit(config):
    """fit.py's "auto"s decided: the slice budget, the init, the learning rate, the output folders.
    Refuses what cannot train (ValueError naming the flag)."""
    model, training = config.model, config.training
    init = training.init
    if init == "auto":
        init = "auto" if model.crops else "none"  # with crops: shipped or retrain, decided with the artefact
    if training.freeze_epochs and (init == "none" or training.freeze_epochs >= training.epochs):
        raise ValueError("--freeze-epochs needs a pretrained --init and fewer epochs than --epochs")
    if training.abnormal_weight != "balanced" and not 0 < training.abnormal_weight < math.inf:
        raise ValueError(f"--abnormal-weight {training.abnormal_weight}: a finite weight above 0")
    if model.backbone == "compact" and model.weights != "none":
        raise ValueError("--weights is for a keras.applications --backbone; the compact CNN trains from its own "
                         "start (see --init)")
    lr = training.lr if training.lr is not None else \
        LR_FROM_PRETRAINED if init != "none" and not model.crops else LR_FROM_SCRATCH
    return replace(config, training=replace(training, init=init, lr=lr),
                   bundle=config.bundle or ROOT / "submission" / "bundle", run_dir=config.run_dir or ROOT / "runs" / "latest",
                   compute=replace(config.compute, batch_slices=slice_budget(model, config.compute)))


def resolve_pretrain(config):
    target = config.pretraining.target
    if target == "auto":
        target = "windows" if config.model.crops else "slices"
    epochs = config.pretraining.epochs or {"slices": 6, "windows": 20}[target]
    if config.model.backbone != "compact":
        raise ValueError("--backbone: pretraining is for the compact backbone (keras.applications ones take "
                         "--weights)")
    return replace(config, pretraining=replace(config.pretraining, target=target, epochs=epochs),
                   compute=replace(config.compute, batch_slices=slice_budget(config.model, config.compute),
                                   strategy="default"))


def resolve_localise(config):
    return replace(config, compute=replace(config.compute, strategy="default"))


def resolve_marks(config):
    for name in ("hold_out", "corpus_share"):
        if not 0 <= getattr(config, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} {getattr(config, name)}: a share, from 0 up to (not) 1")
    return resolve_localise(config)


RESOLVE = {FitConfig: resolve_fit, PretrainConfig: resolve_pretrain, LocaliseConfig: resolve_localise,
           CheckConfig: lambda config: config, MarksConfig: resolve_marks}


def parser(cls, description):
    ap = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_flags(ap, cls)
    return ap


def parse(cls, description, argv=None, required=()):
    """The command line parsed once into the command's frozen, resolved configuration."""
    ap = parser(cls, description)
    namespace = ap.parse_args(argv)
    for name in required:
        if getattr(namespace, name) is None:
            ap.error(f"--{name.replace('_', '-')} is required")
    try:
        return RESOLVE[cls](from_namespace(cls, namespace))
    except ValueError as e:  # a combination of flags that cannot train: a usage error, exit 2
        ap.error(str(e))


def fit_config(**sections):
    """fit.py's configuration as an empty command line gives it, resolved, with sections replaced:
    e.g. fit_config(model={"crops": False}, compute={"batch_slices": 64}). What a sweep, a benchmark
    or a test trains with, so that it trains as fit.py trains; an unknown key is refused by name."""
    base = FitConfig()
    for name, values in sections.items():
        section = getattr(base, name)
        unknown = set(values) - {f.name for f in fields(section)}
        if unknown:
            raise TypeError(f"fit_config: no setting {sorted(unknown)} in {name}")
        base = replace(base, **{name: replace(section, **values)})
    return resolve_fit(base)


def model_config(model):
    """The build_model arguments of a Model section: what a model's weights were trained with."""
    return asdict(model)


MODEL_KEYS = tuple(f.name for f in fields(Model))
MODEL_DEFAULTS = asdict(Model())
