"""Do the explanations point at the lesion? Scored on the phantom, whose truth records every lesion's slices."""


def chance(n_slices, lesion, k):
    """P(at least one of k distinct random slices out of n lies in the lesion's m slices)."""
    from math import comb

    m = len(lesion)
    return 1.0 - comb(n_slices - m, k) / comb(n_slices, k) if n_slices >= k else 1.0


def hit_rates(models, data_dir, ks=(1, 3), plane="sagittal", task="acl", finding="ACL tear", split="valid"):
    """{k: (hit rate, chance rate)} and the number of exams they are over; `models` maps a plane
    to its loaded SavedModel (a bundle's, or one plane exported alone). `finding` is the start of
    the lesion's name in phantom-truth.json: "ACL tear", or "meniscal tear" for either meniscus."""
    import numpy as np

    from mrnet.explain import decisive_slices, plane_explanation
    from mrnet.layout import read_labels, series_path
    from mrnet.series import open_series
    from phantom.writer import read_truth

    truth = read_truth(data_dir)
    if truth is None:
        raise SystemExit(f"hit_rate: {data_dir} has no phantom-truth.json; this check needs the phantom")
    labels = read_labels(data_dir).loc[split]
    hits, base, n = {k: 0 for k in ks}, {k: 0.0 for k in ks}, 0
    for case in labels.index[labels[task] == 1]:
        lesion = {k for name, on in truth["exams"][case]["lesion_slices"][plane].items() if name.startswith(finding)
                  for k in on}
        if not lesion:
            continue
        slices = np.asarray(open_series(series_path(data_dir, split, plane, case)))
        logits, _ = plane_explanation(models[plane], slices)
        n += 1
        for k in ks:
            hits[k] += bool(lesion & {int(i) for i in decisive_slices(logits, task, k)})
            base[k] += chance(len(slices), lesion, k)
    return {k: (hits[k] / max(n, 1), base[k] / max(n, 1)) for k in ks}, n
