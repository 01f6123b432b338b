"""Do the explanations point at the lesion? Scored on the phantom, whose truth records every lesion's
slices and, per slice, where each tear's centre is."""

import numpy as np


def chance(n_slices, lesion, k):
    """P(at least one of k distinct random slices out of n lies in the lesion's m slices)."""
    from math import comb

    m = len(lesion)
    return 1.0 - comb(n_slices - m, k) / comb(n_slices, k) if n_slices >= k else 1.0


def window_holds(box, centre):
    """Whether a window (top, left, bottom, right) holds a point (row, column)."""
    top, left, bottom, right = box
    return top <= centre[0] < bottom and left <= centre[1] < right


def hit_rates(models, data_dir, ks=(1, 3), plane="sagittal", task="acl", finding="ACL tear", split="valid"):
    """{k: (hit rate, chance rate)} of the k most decisive slices and the number of exams they are
    over, plus, for a crop model, {'window': (hit rate, chance rate, exams)} of the decisive window:
    a hit when the tear's centre on the window's slice lies inside it; chance is a window drawn at
    random among those the exam used for the task. `models` maps a plane to its loaded SavedModel.
    `finding` is the start of the lesion's name in phantom-truth.json: "ACL tear", or "meniscal
    tear" for either meniscus."""
    from mrnet.explain import TASK_PLACES, decisive_slices, decisive_window, plane_explanation
    from mrnet.layout import read_labels, series_path
    from mrnet.series import open_series
    from phantom.writer import read_truth

    truth = read_truth(data_dir)
    if truth is None:
        raise SystemExit(f"hit_rate: {data_dir} has no phantom-truth.json; this check needs the phantom")
    labels = read_labels(data_dir).loc[split]
    hits, base, n = {k: 0 for k in ks}, {k: 0.0 for k in ks}, 0
    window = {"hits": 0, "chance": 0.0, "exams": 0}
    for case in labels.index[labels[task] == 1]:
        exam = truth["exams"][case]
        lesion = {k for name, on in exam["lesion_slices"][plane].items() if name.startswith(finding) for k in on}
        if not lesion:
            continue
        slices = np.asarray(open_series(series_path(data_dir, split, plane, case)))
        explained = plane_explanation(models[plane], slices)
        n += 1
        for k in ks:
            hits[k] += bool(lesion & {int(i) for i in decisive_slices(explained["slice_logits"], task, k)})
            base[k] += chance(len(slices), lesion, k)
        centres = {}  # slice -> the tears' centres on it
        for name, per_slice in exam.get("tear_centres", {}).get(plane, {}).items():
            if name.startswith(finding):
                for i, centre in per_slice.items():
                    centres.setdefault(int(i), []).append(centre)
        decisive = decisive_window(explained, task)
        if decisive is None or not centres:
            continue
        holds = {(i, place): any(window_holds(explained["boxes"][i, place], c) for c in centres.get(i, ()))
                 for i in range(len(slices)) for place in TASK_PLACES[task] if explained["gates"][i, place] > 0}
        window["exams"] += 1
        window["hits"] += holds[decisive]
        window["chance"] += sum(holds.values()) / len(holds)
    rates = {k: (hits[k] / max(n, 1), base[k] / max(n, 1)) for k in ks}
    if window["exams"]:
        rates["window"] = (window["hits"] / window["exams"], window["chance"] / window["exams"], window["exams"])
    return rates, n
