"""tf.data streaming of ragged multi-exam batches for one plane.

A batch is several exams' slices concatenated: no padding, no fixed slice count, no resampling of
the slice axis. Batches are packed to a slice budget so memory stays flat whatever the exams'
lengths. Series are memory-mapped and read in parallel worker threads, with prefetch, so the
dataset (6 GB for real MRNet) is never held in memory.
"""

import numpy as np
import tensorflow as tf

import _paths  # noqa: F401
from mrnet.series import header_info, read_data


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


def make_dataset(paths, labels, budget, shuffle, seed=0, parallel=4, prefetch=2):
    """A dataset of ({'slices', 'counts'}, labels) batches; reshuffled and repacked every epoch."""
    paths = [str(p) for p in paths]
    labels = np.asarray(labels, np.float32).reshape(len(paths), -1)
    infos = headers(paths)
    counts = np.array([info[0][0] for info in infos], np.int64)
    epoch = {"n": 0}

    def plans():
        rng = np.random.default_rng([seed, epoch["n"]])
        epoch["n"] += 1
        order = rng.permutation(len(paths)) if shuffle else np.arange(len(paths))
        for members in pack(order, counts, budget):
            yield np.array(members, np.int32)

    def load(members):
        slices, counts, y = tf.numpy_function(lambda m: read_batch(paths, infos, labels, m), [members],
                                           [tf.uint8, tf.int32, tf.float32], stateful=False)
        slices.set_shape([None, 256, 256])
        counts.set_shape([None])
        y.set_shape([None, labels.shape[1]])
        return {"slices": slices, "counts": counts}, y

    ds = tf.data.Dataset.from_generator(plans, output_signature=tf.TensorSpec([None], tf.int32))
    options = tf.data.Options()
    options.deterministic = True
    return ds.map(load, num_parallel_calls=parallel).prefetch(prefetch).with_options(options)


def padded_dataset(paths, labels, exams_per_batch, max_slices):
    """The common alternative, for the benchmark only: every exam padded to the longest stack."""
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
