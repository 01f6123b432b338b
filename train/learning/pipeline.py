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


def epoch_plans(counts, budget, shuffle, seed, replicas, shard):
    """A generator function: each call is the next epoch's batches, as (the epoch's rng, exam indices
    packed to the slice budget). Every worker plans the same batches from the same seed and keeps its
    share; a remainder that would leave a replica without a batch is dropped."""
    epoch = {"n": 0}

    def plans():
        rng = np.random.default_rng([seed, epoch["n"]])
        epoch["n"] += 1
        order = rng.permutation(len(counts)) if shuffle else np.arange(len(counts))
        planned = pack(order, counts, budget)
        workers, index = shard
        for members in planned[: len(planned) - len(planned) % replicas][index::workers]:
            yield rng, members

    return plans


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
    planner = epoch_plans(counts, budget, shuffle, seed, replicas, shard)

    def plans():
        for _, members in planner():
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


def prepare_exams(paths, input_size, locate, margin):
    """Every exam of a split through the frozen front of a crop model, once: {'slices': [(n, s, s)
    float32 block-averaged], 'crops': [(n, K, c, c) float32 windows with `margin` series pixels each
    side], 'gates': [(n, K) float32]}, in path order. `locate(path, uint8 series)` -> (centres
    (n, K, 2) at 256 px, presence (n, K)): the localiser, or the phantom's truth for the ceiling.

    The localiser never trains with the exam labels, so its windows are the same every epoch: cut
    once here (with a margin for shift augmentation), they cost nothing per step. The cutting is the
    exported model's own function (learning/crops.py), so training and prediction see the same bits."""
    from learning.crops import crops_at, gates_from

    out = {"slices": [], "crops": [], "gates": []}
    for path in paths:
        series = read_data(path, header_info(path))
        centres, presence = locate(path, series)
        out["slices"].append(block_average(series, input_size) if input_size < 256 else series.astype(np.float32))
        out["crops"].append(np.asarray(crops_at(series, np.asarray(centres, np.float32), margin), np.float32))
        out["gates"].append(np.asarray(gates_from(np.asarray(presence, np.float32)), np.float32))
    return out


def prepared_dataset(prepared, labels, budget, shuffle, seed=0, static=False, margin=0, shift=True,
                     parallel=2, prefetch=2, replicas=1, shard=(1, 0)):
    """Batches of prepared exams (prepare_exams), packed like make_dataset's: ({'slices', 'crops',
    'gates', 'counts'}, labels[, weights]). Windows kept with a margin are cut to the model's size:
    at a random offset per exam and place while shuffling for training (`shift`: a localiser that
    misplaces a whole exam's windows by a few pixels must not cost the tear), else at the centre."""
    import tensorflow as tf

    from learning.crops import SCALE

    labels = np.asarray(labels, np.float32).reshape(len(prepared["slices"]), -1)
    counts = np.array([len(s) for s in prepared["slices"]], np.int64)
    cells = margin // SCALE  # the margin in the crop CNN's (block-averaged) pixels
    places = prepared["crops"][0].shape[1]
    side = prepared["crops"][0].shape[-1] - 2 * cells
    size = prepared["slices"][0].shape[-1]
    slots, total = static_shape(counts, budget)

    planner = epoch_plans(counts, budget, shuffle, seed, replicas, shard)

    def plans():
        for rng, members in planner():
            # one offset per exam and place, drawn here so a batch is a pure function of its plan
            offsets = rng.integers(0, 2 * cells + 1, (len(members), places, 2)) if shift and shuffle and cells \
                else np.full((len(members), places, 2), cells)
            yield np.array(members, np.int32), offsets.astype(np.int32)

    def read(members, offsets):
        crops = []
        for member, offset in zip(members, offsets):
            windows = prepared["crops"][member]
            crops.append(np.stack([windows[:, k, r:r + side, c:c + side] for k, (r, c) in enumerate(offset)], 1))
        slices = np.concatenate([prepared["slices"][m] for m in members])
        crops, gates = np.concatenate(crops), np.concatenate([prepared["gates"][m] for m in members])
        n = counts[members].astype(np.int32)
        y = labels[members]
        if not static:
            return slices, crops, gates, n, y, np.ones(len(members), np.float32)
        filled = total - len(slices)
        slices, n, y, w = pad_batch(slices, n, y, slots, total)
        crops = np.concatenate([crops, np.zeros((filled, *crops.shape[1:]), np.float32)])
        gates = np.concatenate([gates, np.zeros((filled, places), np.float32)])
        return slices, crops, gates, n, y, w

    def load(members, offsets):
        slices, crops, gates, n, y, w = tf.numpy_function(
            read, [members, offsets], [tf.float32, tf.float32, tf.float32, tf.int32, tf.float32, tf.float32],
            stateful=False)
        rows, exams = (total if static else None), (slots + 1 if static else None)
        slices.set_shape([rows, size, size])
        crops.set_shape([rows, places, side, side])
        gates.set_shape([rows, places])
        n.set_shape([exams])
        y.set_shape([exams, labels.shape[1]])
        w.set_shape([exams])
        x = {"slices": slices, "crops": crops, "gates": gates, "counts": n}
        return (x, y, w) if static else (x, y)

    signature = (tf.TensorSpec([None], tf.int32), tf.TensorSpec([None, places, 2], tf.int32))
    ds = tf.data.Dataset.from_generator(plans, output_signature=signature)
    options = tf.data.Options()
    options.deterministic = True
    return ds.map(load, num_parallel_calls=parallel).prefetch(prefetch).with_options(options)


def epoch_indices(wanted, batch, rng, extra):
    """One epoch's item indices in batches: every item where `wanted` holds, and `extra` (a count)
    of the others drawn at random, shuffled, cut to whole batches. What the localiser and the
    pretraining sample: the slices that show something, topped up with some that show nothing, so a
    structure seen on 3 of 30 slices is not drowned by the empty ones."""
    shown, empty = np.flatnonzero(wanted), np.flatnonzero(~wanted)
    chosen = rng.permutation(np.concatenate([shown, rng.choice(empty, min(len(empty), extra), replace=False)]))
    usable = len(chosen) - len(chosen) % batch
    return chosen[:usable].reshape(-1, batch)


def epoch_batches(plan, make, seed):
    """A keras.utils.PyDataset for model.fit over in-memory items: `plan(rng)` gives an epoch's index
    batches (its length is fixed by the first), `make(indices, rng)` the (x, y[, weights]) of one;
    every epoch draws anew from a stream of the seed's."""
    import keras

    class Batches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.epoch = 0
            self.batches = plan(np.random.default_rng([seed, 0]))
            self.steps = len(self.batches)

        def __len__(self):
            return self.steps

        def __getitem__(self, index):
            rng = np.random.default_rng([seed, self.epoch, index, 1])
            return make(self.batches[index % len(self.batches)], rng)

        def on_epoch_end(self):
            self.epoch += 1
            self.batches = plan(np.random.default_rng([seed, self.epoch]))

    return Batches()
