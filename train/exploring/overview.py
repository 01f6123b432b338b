"""The dataset overview: every series scanned once, the statistics printed, one PNG read at a glance."""

import numpy as np

from mrnet.contract import PLANES, TASKS


def scan(data_dir, progress=True):
    """(labels, one row of stack statistics per series with a `suspicious` reason column)."""
    import pandas as pd
    from tqdm import tqdm

    from exploring.stacks import flag_suspicious, series_stats
    from mrnet.layout import read_labels, series_path

    labels = read_labels(data_dir)
    rows = []
    for (split, case) in tqdm(labels.index, desc="scanning series", unit="exam", disable=not progress):
        for plane in PLANES:
            rows.append({"split": split, "case": case, "plane": plane,
                         **series_stats(series_path(data_dir, split, plane, case))})
    stats = pd.DataFrame(rows)
    stats["suspicious"] = flag_suspicious(stats)
    return labels, stats


def co_occurrence(labels, split="train"):
    """ACL x meniscal tear counts in one split, as a 2 x 2 frame with readable names."""
    import pandas as pd

    part = labels.loc[labels.index.get_level_values("split") == split]
    both = pd.crosstab(part["acl"], part["meniscus"]).reindex(index=[0, 1], columns=[0, 1], fill_value=0)
    return both.rename(index={0: "no ACL", 1: "ACL"}, columns={0: "no men.", 1: "men."})


def print_summary(labels, stats):
    print("\nexams per split: " + ", ".join(f"{s} {n}" for s, n in labels.groupby(level="split").size().items()))
    print("label prevalence (%):")
    print((labels.groupby(level="split")[list(TASKS)].mean() * 100).round(1).to_string())
    print("ACL x meniscal tear (train):\n" + co_occurrence(labels).to_string())
    print("slices per plane (min / median / max):")
    for plane in PLANES:
        s = stats.loc[stats.plane == plane, "slices"]
        print(f"  {plane:9s} {s.min():3d} / {int(np.median(s)):3d} / {s.max():3d}")
    bad = stats[stats.suspicious != ""]
    print(f"suspicious stacks: {len(bad)}")
    for r in bad.itertuples():
        print(f"  {r.split}/{r.plane}/{r.case}.npy: {r.suspicious}")


def plot_overview(labels, stats, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(2, 3, figsize=(14, 8))
    splits = list(dict.fromkeys(labels.index.get_level_values("split")))
    counts = [int((labels.index.get_level_values("split") == s).sum()) for s in splits]
    ax[0, 0].bar(splits, counts, color="#4c72b0")
    for i, n in enumerate(counts):
        ax[0, 0].text(i, n, str(n), ha="center", va="bottom")
    ax[0, 0].set_title("exams per split")

    width = 0.8 / len(splits)
    for i, s in enumerate(splits):
        prev = labels.loc[s][list(TASKS)].mean() * 100
        ax[0, 1].bar(np.arange(len(TASKS)) + i * width, prev, width, label=s)
    ax[0, 1].set_xticks(np.arange(len(TASKS)) + width * (len(splits) - 1) / 2, TASKS)
    ax[0, 1].set(title="label prevalence (%)", ylim=(0, 100))
    ax[0, 1].legend()

    train = labels.loc[splits[0]]
    grid = np.array([[((train.acl == a) & (train.meniscus == m)).sum() for m in (0, 1)] for a in (0, 1)])
    ax[0, 2].imshow(grid, cmap="Blues")
    for a in (0, 1):
        for m in (0, 1):
            ax[0, 2].text(m, a, str(grid[a, m]), ha="center", va="center", fontsize=14)
    ax[0, 2].set_xticks([0, 1], ["no meniscal tear", "meniscal tear"])
    ax[0, 2].set_yticks([0, 1], ["no ACL tear", "ACL tear"])
    ax[0, 2].set_title(f"tear co-occurrence ({splits[0]})")

    for plane in PLANES:
        ax[1, 0].hist(stats.loc[stats.plane == plane, "slices"], bins=range(10, 66, 2), alpha=0.55, label=plane)
    ax[1, 0].set(title="slices per series", xlabel="slices")
    ax[1, 0].legend()

    for i, plane in enumerate(PLANES):
        s = stats[stats.plane == plane]
        jitter = np.random.default_rng(0).uniform(-0.25, 0.25, len(s))
        odd = (s.suspicious != "").to_numpy()
        ax[1, 1].scatter(i + jitter[~odd], s["mean"][~odd], s=6, alpha=0.5, color="#4c72b0")
        ax[1, 1].scatter(i + jitter[odd], s["mean"][odd], s=30, color="#c44e52", marker="x")
    ax[1, 1].set_xticks(range(len(PLANES)), PLANES)
    ax[1, 1].set(title="series mean intensity (x = suspicious)", ylabel="mean grey level")

    bad = stats[stats.suspicious != ""]
    ax[1, 2].axis("off")
    lines = [f"{r.split}/{r.plane}/{r.case}: {r.suspicious}" for r in bad.head(18).itertuples()]
    more = [f"... and {len(bad) - 18} more (see stacks.csv)"] if len(bad) > 18 else []
    ax[1, 2].text(0, 1, f"suspicious stacks: {len(bad)}\n\n" + "\n".join(lines + more), va="top", fontsize=7,
                  family="monospace", wrap=True)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
