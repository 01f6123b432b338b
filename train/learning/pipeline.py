"""From a dataset folder to batches: the fit / tune / valid split, then tf.data streaming of ragged
multi-exam batches for one plane.

A batch is several exams' slices concatenated: no padding, no fixed slice count, no resampling of
the slice axis. Batches are packed to a slice budget so memory stays flat whatever the exams'
lengths. Series are memory-mapped and read in parallel worker threads, with prefetch, so the
dataset (6 GB for real MRNet) is never held in memory. TensorFlow is imported only where a
tf.data pipeline is built: the split and the packing also serve sweep.py under JAX.
"""

import numpy as np

from mrnet.layout import series_path
from mrnet.preprocess import block_average
from mrnet.series import header_info, read_data


def split(labels, tune_fraction, seed):
    """{name: label frame} and {name: the MRNet split its files are in}.

    `train` is divided at random (seeded) into a fitting part and a tuning part: early stopping,
    model selection and the combiner see only the tuning part, so `valid` stays untouched.
    """
    train, valid = labels.loc["train"], labels.loc["valid"]
    tune_mask = np.random.default_rng(seed).random(len(train)) < tune_fraction
    splits = {"fit": train[~tune_mask], "tune": train[tune_mask], "valid": valid}
    return splits, {"fit": "train", "tune": "train", "valid": "valid"}


def split_paths(data_dir, splits, source, plane):
    """{split name: this plane's series paths, in the split's exam order}."""
    return {name: [series_path(data_dir, source[name], plane, c) for c in frame.index]
            for name, frame in splits.items()}


def headers(paths):
    """Parsed once, up front, from npy headers alone: planning batches costs no array reads."""
    return [header_info(p) for p in paths]


def pack(order, counts, budget):
    """Greedy packing in the given order; an exam longer than the budget travels alone."""
    batches, current, used = [], [], 0
    for i in order:
        if current and used + counts[i] > budget:
            batches.append(current)
            current, used = [], 0
        current.append(int(i))
        used += int(counts[i])
    if current:
        batches.append(current)
    return batches


def count_batches(paths, budget):
    """Batches in one epoch, from the headers alone (in file order; shuffled epochs differ by a batch or so)."""
    counts = [info[0][0] for info in headers(paths)]
    return len(pack(range(len(counts)), counts, budget))


def read_batch(paths, infos, labels, members):
    """Concatenate the members' series, with each one's slice count in the same order."""
    arrays = [read_data(paths[i], infos[i]) for i in members]
    counts = np.array([a.shape[0] for a in arrays], np.int32)
    return np.concatenate(arrays, axis=0), counts, labels[members].astype(np.float32)


def static_shape(counts, budget):
    """(exam slots, slices) that hold any packed batch plus the padding exam."""
    slots = max(1, budget // int(min(counts)))
    return slots, max(budget, int(max(counts))) + slots + 1


def pad_batch(slices, counts, y, slots, total):
    """Fill a batch to fixed shapes: 1-slice blank exams up to `slots`, then one blank exam with the
    remaining slices. Their sample weight is 0: they change shapes, never the loss or the metrics."""
    fillers = slots - len(counts)
    pad = total - len(slices) - fillers
    blank = np.zeros((fillers + pad, *slices.shape[1:]), slices.dtype)
    counts = np.concatenate([counts, np.ones(fillers, np.int32), [pad]]).astype(np.int32)
    weights = np.zeros(slots + 1, np.float32)
    weights[: len(y)] = 1.0
    y = np.concatenate([y, np.zeros((slots + 1 - len(y), y.shape[1]), np.float32)])
    return np.concatenate([slices, blank]), counts, y, weights


def make_dataset(paths, labels, budget, shuffle, seed=0, parallel=4, prefetch=2, replicas=1, static=False,
                 shard=(1, 0), input_size=None):
    """A dataset of ({'slices', 'counts'}, labels) batches; reshuffled and repacked every epoch.

    With `replicas` > 1 each batch is one replica's share (consecutive batches go to consecutive
    replicas, as `distribute_datasets_from_function` hands them out) and an epoch's batch count is
    cut to a multiple of `replicas`, so no replica waits for a batch that never comes. Splitting one
    batch along axis 0 instead, as Keras does by default, would part slices from their counts.

    With `static`, every batch has the same shapes (see pad_batch) and comes with sample weights:
    XLA then compiles once instead of once per batch shape, and Keras can build a replicated model
    from the first batch (it averages the replicas' first batches, which needs equal shapes).

    `shard` = (workers, index): every worker plans the same batches from the same seed and keeps
    every workers-th one from its index, so each runs the same number of steps (distributed.py).
    `replicas` is then the replica count over all workers.

    With `input_size`, slices come block-averaged to that size (float32, preprocess.block_average)
    for a model built with `pooled_input`: the reduction is done once, in the reading threads, and a
    training step moves 16x fewer bytes at 64 px than the raw uint8 256 px slices.
    """
    import tensorflow as tf

    paths = [str(p) for p in paths]
    labels = np.asarray(labels, np.float32).reshape(len(paths), -1)
    infos = headers(paths)
    counts = np.array([info[0][0] for info in infos], np.int64)
    epoch = {"n": 0}

    def plans():
        rng = np.random.default_rng([seed, epoch["n"]])
        epoch["n"] += 1
        order = rng.permutation(len(paths)) if shuffle else np.arange(len(paths))
        planned = pack(order, counts, budget)
        workers, index = shard
        for members in planned[: len(planned) - len(planned) % replicas][index::workers]:
            yield np.array(members, np.int32)

    slots, total = static_shape(counts, budget)

    size, dtype = (input_size, tf.float32) if input_size else (256, tf.uint8)

    def read(members):
        batch = read_batch(paths, infos, labels, members)
        if input_size:
            batch = (block_average(batch[0], input_size), *batch[1:])
        return pad_batch(*batch, slots, total) if static else (*batch, np.ones(len(members), np.float32))

    def load(members):
        slices, n, y, w = tf.numpy_function(read, [members], [dtype, tf.int32, tf.float32, tf.float32],
                                            stateful=False)
        slices.set_shape([total if static else None, size, size])
        n.set_shape([slots + 1 if static else None])
        y.set_shape([slots + 1 if static else None, labels.shape[1]])
        w.set_shape([slots + 1 if static else None])
        return ({"slices": slices, "counts": n}, y, w) if static else ({"slices": slices, "counts": n}, y)

    ds = tf.data.Dataset.from_generator(plans, output_signature=tf.TensorSpec([None], tf.int32))
    options = tf.data.Options()
    options.deterministic = True
    return ds.map(load, num_parallel_calls=parallel).prefetch(prefetch).with_options(options)


def padded_dataset(paths, labels, exams_per_batch, max_slices):
    """The common alternative, for the benchmark only: every exam padded to the longest stack."""
    import tensorflow as tf

    paths = [str(p) for p in paths]
    labels = np.asarray(labels, np.float32).reshape(len(paths), -1)
    infos = headers(paths)

    def load(members):
        def read(m):
            out = np.zeros((len(m), max_slices, 256, 256), np.uint8)
            for row, i in enumerate(m):
                a = read_data(paths[i], infos[i])
                out[row, : a.shape[0]] = a
            return out, labels[m]
        x, y = tf.numpy_function(read, [members], [tf.uint8, tf.float32], stateful=False)
        x.set_shape([None, max_slices, 256, 256])
        y.set_shape([None, labels.shape[1]])
        return x, y

    starts = np.arange(0, len(paths), exams_per_batch)
    plans = [np.arange(s, min(s + exams_per_batch, len(paths)), dtype=np.int32) for s in starts]
    ds = tf.data.Dataset.from_generator(lambda: iter(plans), output_signature=tf.TensorSpec([None], tf.int32))
    return ds.map(load, num_parallel_calls=4).prefetch(2)
