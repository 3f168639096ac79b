"""PNG plots of the evaluation (matplotlib, optional: without it no plots are drawn).

Each function takes the artefacts of `runner.evaluate` and a path, returns the
path written or None when it has nothing to draw.
"""

import numpy as np


def available():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def taus(art, path):
    per = art.get("taus")
    if not per:
        return None
    plt = _plt()
    names = [n for n in ("attn_grad", "attn_loo", "grad_loo", "attn_ig") if n in per]
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 2.8), sharey=True)
    for ax, n in zip(np.atleast_1d(axes), names):
        v = per[n][np.isfinite(per[n])]
        ax.hist(v, bins=np.linspace(-1, 1, 21), color="#4c72b0")
        ax.axvline(v.mean() if len(v) else 0, color="k", lw=1)
        ax.set_title("Kendall tau " + n.replace("_", "-"))
    return _save(fig, path)


def permutation(art, path):
    r = art.get("permutation")
    if r is None:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    ax.scatter(r["max_attention"], r["median_delta"], s=6, alpha=0.6)
    ax.set_xlabel("max attention")
    ax.set_ylabel("median |dp| over 100 permutations")
    ax.set_title("Permutation (J&W)")
    return _save(fig, path)


def adversarial(art, path):
    r = art.get("adversarial")
    if r is None:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    ax.scatter(r["max_attention"], r["jsd"], s=6, alpha=0.6, color="#c44e52")
    ax.axhline(np.log(2), color="k", lw=0.8, ls="--")
    ax.set_xlabel("max attention")
    ax.set_ylabel("max JSD with |dp| <= 0.05")
    ax.set_title("Adversarial attention (J&W)")
    return _save(fig, path)


def eraser(art, path):
    r = art.get("eraser")
    if not r:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    for name, v in r.items():
        ks = [int(k) for k in v["comprehensiveness"]]
        axes[0].plot(ks, list(v["comprehensiveness"].values()), marker="o", label=name)
        axes[1].plot(ks, list(v["sufficiency"].values()), marker="o", label=name)
    axes[0].set_title("comprehensiveness (higher = better)")
    axes[1].set_title("sufficiency (lower = better)")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("top k% tokens")
    axes[0].legend(fontsize=7)
    return _save(fig, path)


def erasure(art, path):
    r = art.get("erasure")
    if r is None:
        return None
    plt = _plt()
    frac = r["many"]["fraction"]
    names = list(frac)
    data = [frac[n][np.isfinite(frac[n])] for n in names]
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    ax.boxplot([d if len(d) else [np.nan] for d in data], tick_labels=[n.replace("_x_", " x ") for n in names])
    ax.set_ylabel("fraction removed until flip")
    ax.set_title("Erasure at the attention layer (S&S)")
    return _save(fig, path)


def robustness(results, path):
    sec = results["sections"]
    labels, values = ["clean"], [results["sample_accuracy"]]
    noise = sec.get("noise", {})
    for cfg, v in noise.items():
        if isinstance(v, dict) and "accuracy" in v:
            labels.append(cfg)
            values.append(v["accuracy"])
    for att in ("deepwordbug", "hotflip"):
        v = sec.get(att, {})
        if "accuracy_under_attack" in v:
            labels.append(att)
            values.append(v["accuracy_under_attack"])
    if len(labels) == 1:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.bar(labels, values, color=["#55a868"] + ["#4c72b0"] * (len(labels) - 1))
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.tick_params(axis="x", rotation=45)
    ax.set_title("Accuracy under noise and attack")
    return _save(fig, path)


def stability(art, results, path):
    series = []
    for att in ("deepwordbug", "hotflip"):
        a = art.get(att)
        if a:
            per, sel = a["stability"], a["attacked"]
            series.append(("%s flipped" % att, per["jsd"][sel & per["flipped"]]))
            series.append(("%s unflipped" % att, per["jsd"][sel & ~per["flipped"]]))
    for cfg in ("char_2", "drop_10"):
        per = art.get("noise", {}).get(cfg)
        if per is not None:
            series.append(("noise %s" % cfg, per["jsd"]))
    series = [(n, v[np.isfinite(v)]) for n, v in series if np.isfinite(v).any()]
    if not series:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.4))
    ax.boxplot([v for _, v in series], tick_labels=[n for n, _ in series])
    floor = results["sections"].get("seeds", {}).get("jsd", {})
    if isinstance(floor, dict) and floor.get("mean") is not None:
        ax.axhline(floor["mean"], color="r", ls="--", lw=1, label="seed floor")
        ax.legend(fontsize=7)
    ax.set_yscale("symlog", linthresh=1e-3)
    ax.set_ylabel("JSD(attention clean, perturbed)")
    ax.tick_params(axis="x", rotation=30)
    ax.set_title("Attention stability")
    return _save(fig, path)


def transformer(art, path):
    r = art.get("transformer")
    if not r:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2), sharey=True)
    for ax, ref in zip(axes, ("blankout", "gradient")):
        for kind, vals in r[ref].items():
            if kind.endswith("_flow_subset"):
                continue
            if any(v is not None for v in vals):
                ax.plot(range(1, len(vals) + 1), [np.nan if v is None else v for v in vals], marker="o",
                        label=kind)
        ax.set_title("Spearman vs %s" % ref)
        ax.set_xlabel("layer")
    axes[0].legend(fontsize=7)
    return _save(fig, path)


def draw_all(results, art, out_dir):
    """Draws every plot that has data; returns {name: relative path}."""
    import os

    if not available():
        return {}
    os.makedirs(os.path.join(out_dir, "plots"), exist_ok=True)
    jobs = {
        "taus": lambda p: taus(art, p),
        "permutation": lambda p: permutation(art, p),
        "adversarial": lambda p: adversarial(art, p),
        "erasure": lambda p: erasure(art, p),
        "eraser": lambda p: eraser(art, p),
        "transformer": lambda p: transformer(art, p),
        "robustness": lambda p: robustness(results, p),
        "stability": lambda p: stability(art, results, p),
    }
    out = {}
    for name, fn in jobs.items():
        rel = os.path.join("plots", name + ".png")
        if fn(os.path.join(out_dir, rel)):
            out[name] = rel
    return out
