"""Which tf.distribute strategy trains, who writes files, and the one Keras step multi-worker needs bypassed.

One GPU or CPU: the default strategy. Several GPUs in one machine: MirroredStrategy. Several
machines: MultiWorkerMirroredStrategy, one `fit.py` process per machine, each told the cluster and
its own place in it by the TF_CONFIG environment variable (README: several machines). Every worker
reads the whole dataset's headers, plans the same batches from the same seed, and keeps every n-th
batch (pipeline.make_dataset `shard`), so all workers run the same number of steps and no
collective waits for a batch that never comes.
"""

import json
import os
from dataclasses import dataclass


@dataclass
class Devices:
    """Where training runs and who writes: what fit.py hands to every step after set-up."""
    strategy: object
    xla: bool
    replicas: int  # over all workers
    workers: int
    index: int  # this worker's place; 0 is the chief
    gpus: int = 0  # parallel.plane_jobs trains planes side by side only where there are none

    @property
    def chief(self):
        """The chief (or worker 0 when the cluster names no chief) writes the run folder and the bundle."""
        return self.index == 0


def setup_devices(compute, backbone="compact", seed=0):
    """Strategy, precision and XLA from a Compute section (learning/recipe.py); must run before any
    other TensorFlow op."""
    from mrnet.runtime import import_tensorflow

    allocator = use_allocator(compute.allocator, backbone)
    tf = import_tensorflow()
    import keras

    if compute.threads and not tf.config.threading.get_intra_op_parallelism_threads():
        try:  # a second set-up in one process (pretraining, then fit) keeps the first's threads
            tf.config.threading.set_intra_op_parallelism_threads(compute.threads)
            tf.config.threading.set_inter_op_parallelism_threads(compute.threads)
        except RuntimeError:
            pass
    if compute.cpu_replicas > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * compute.cpu_replicas)
    gpus = tf.config.list_physical_devices("GPU")
    strategy = make_strategy(tf, compute.strategy, gpus)  # before any other TF op (multi-worker needs that)
    keras.utils.set_random_seed(seed)
    if gpus:
        keras.mixed_precision.set_global_policy("mixed_float16")
    workers, index = shard(strategy)
    xla = use_xla(compute.xla, len(gpus), strategy.num_replicas_in_sync, backbone)
    devices = Devices(strategy, xla, strategy.num_replicas_in_sync, workers, index, len(gpus))
    print(f"devices: {len(gpus)} GPU(s), {describe(strategy)}, XLA {'on' if xla else 'off'}, allocator {allocator}")
    return devices


def use_xla(flag, gpus, replicas, backbone):
    """`--xla` auto | on | off, resolved for this machine.

    XLA compiles the fixed-shape padded batches once; on CPU it runs a step 2.6x faster than the
    ragged graph (benchmarks/training_throughput.py). Several CPU replicas or workers keep the
    plain graph: collectives under XLA on logical CPU devices were seen to hang. A keras.applications
    backbone on a CPU keeps it too: XLA's buffers took efficientnetb0 at 256 px from 12.1 to 16.1 GB
    for a 96-slice step (benchmarks/training_memory.py).
    """
    if flag != "auto":
        return flag == "on"
    return gpus > 0 or (replicas == 1 and backbone == "compact")


# glibc mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3


def use_allocator(flag, backbone):
    """`--allocator` auto | retain | system: whether this process keeps the memory it frees.

    With glibc's defaults a training step hands its activations back to the kernel when it frees
    them (large blocks are mmap'ed, the heap's top is trimmed) and faults them in again on the next
    step: about 2.8 million page faults and a fifth of the CPU time for one plane's 96 exams x 4
    epochs at 64 px. `retain` raises the mmap and trim thresholds (1 GB) and pads the heap (64 MB),
    so freed blocks are reused: three planes side by side trained 1.25-1.4x the slices per second
    (benchmarks/training_throughput.py, row 'glibc defaults'), for about 0.25 GB more resident memory
    a process. auto retains for the compact CNN only: for a keras.applications backbone, whose steps
    take many GB, a heap that keeps its peak was not measured. Linux glibc only; elsewhere a no-op.
    Returns what this process now does, for the log.
    """
    retain = flag == "retain" or (flag == "auto" and backbone == "compact")
    if not retain:
        return "system"
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        ok = all(libc.mallopt(param, value) == 1 for param, value in
                 ((M_MMAP_THRESHOLD, 1 << 30), (M_TRIM_THRESHOLD, 1 << 30), (M_TOP_PAD, 64 << 20)))
    except (OSError, AttributeError):
        ok = False
    return "retain" if ok else "system (no glibc)"


def make_strategy(tf, kind, gpus):
    """`kind`: auto | default | mirrored | multiworker. Multi-worker must be created before any other
    TensorFlow op runs, so fit.py calls this straight after importing TensorFlow."""
    if kind == "multiworker":
        if "TF_CONFIG" not in os.environ:
            raise SystemExit("fit: --strategy multiworker needs TF_CONFIG (the cluster and this worker's "
                             "place in it) in the environment; see docs/design.md, section 'Several machines'")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if kind == "mirrored" or (kind == "auto" and len(gpus) > 1):
        return tf.distribute.MirroredStrategy(None if gpus else [d.name for d in tf.config.list_logical_devices("CPU")])
    return tf.distribute.get_strategy()


def shard(strategy):
    """(workers, this worker's index) in the cluster; (1, 0) without one. The chief comes first."""
    resolver = getattr(strategy, "cluster_resolver", None)
    spec = resolver.cluster_spec().as_dict() if resolver is not None else {}
    if not spec:
        return 1, 0
    order = [("chief", i) for i in range(len(spec.get("chief", [])))] + \
            [("worker", i) for i in range(len(spec.get("worker", [])))]
    return len(order), order.index((resolver.task_type, int(resolver.task_id)))


def build_from_spec(model, strategy, element_spec):
    """Build loss, metrics and optimizer state from the dataset's spec instead of its first batch.

    Under a strategy Keras 3.15 builds a model by all-reducing the replicas' first batch
    (TensorFlowTrainer._maybe_symbolic_build); the collective all-reduce of MultiWorkerMirroredStrategy
    rejects a nested batch (a dict of inputs plus labels). The build needs shapes and dtypes only,
    which the spec has, so this builds from it and turns that step off for this model. Checked by
    tests/test_training.py (two workers on localhost) against the pinned Keras.
    """
    with strategy.scope():
        model._symbolic_build(data_batch=element_spec)
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None
    # Keras then reduces each step's logs with strategy.reduce("MEAN", v, axis=0), which fails on
    # scalars (tensorflow/tensorflow#72388): hand it each log as a 1-vector instead.
    train_step, test_step = model.train_step, model.test_step

    def as_vectors(logs):
        from keras import ops
        return {k: ops.reshape(v, (1,)) for k, v in logs.items()}

    model.train_step = lambda data: as_vectors(train_step(data))
    model.test_step = lambda data: as_vectors(test_step(data))


def describe(strategy):
    count, index = shard(strategy)
    where = f", worker {index + 1} of {count}" if count > 1 else ""
    return f"strategy {type(strategy).__name__} over {strategy.num_replicas_in_sync} replica(s){where}"


def tf_config(hosts, index):
    """The TF_CONFIG for worker `index` of `hosts` (host:port strings): what each machine exports."""
    return json.dumps({"cluster": {"worker": list(hosts)}, "task": {"type": "worker", "index": index}})
