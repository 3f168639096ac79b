"""Variants side by side: `python -m attn_tf.evaluate --compare RUN_A RUN_B ... [--out DIR]`.

Reads the report.json of each evaluation (a run directory's evaluation/ or a
report.json path) and writes DIR/report.md (default evaluation-compare/): one
table with a column per variant (accuracy, the taus, AOPC comprehensiveness
and sufficiency of attention, gradient and random, the attention entropy
ratio, permutation / uniform / adversarial, attacks), and one plot of the key
figures per variant (plots/variant_<label>.png, the same axes for all, so the
plots can be read side by side).
"""

import json
import os
import re

from attn_tf.errors import UsageError

# (row label, key in report.key_metrics or a special key, digits)
ROWS = (
    ("test accuracy (full split)", "test_accuracy_full", 3),
    ("sample accuracy", "accuracy/sample", 3),
    ("tau attention vs gradient", "faithfulness/tau_attn_grad", 3),
    ("tau attention vs LOO", "faithfulness/tau_attn_loo", 3),
    ("tau gradient vs LOO", "faithfulness/tau_grad_loo", 3),
    ("AOPC comprehensiveness: attention", "faithfulness/aopc_comprehensiveness_attention", 3),
    ("AOPC comprehensiveness: gradient", "faithfulness/aopc_comprehensiveness_gradient", 3),
    ("AOPC comprehensiveness: random", "faithfulness/aopc_comprehensiveness_random", 3),
    ("AOPC sufficiency: attention (lower is better)", "faithfulness/aopc_sufficiency_attention", 3),
    ("AOPC sufficiency: random", "faithfulness/aopc_sufficiency_random", 3),
    ("attention entropy / uniform entropy", "attention_entropy_ratio", 3),
    ("permutation: median \\|dp\\|", "faithfulness/permutation_median_delta", 4),
    ("uniform attention: accuracy gap", "faithfulness/uniform_accuracy_gap", 3),
    ("adversarial attention: max JSD", "faithfulness/adversarial_max_jsd", 3),
    ("DeepWordBug: accuracy under attack", "robustness/deepwordbug_accuracy_under_attack", 3),
    ("DeepWordBug: success rate", "robustness/deepwordbug_attack_success_rate", 3),
    ("HotFlip: accuracy under attack", "robustness/hotflip_accuracy_under_attack", 3),
)
# The key figures of the per-variant plot (all in [0, 1] or close).
PLOT_ROWS = (
    ("acc.", "test_accuracy_full"),
    ("tau a-g", "faithfulness/tau_attn_grad"),
    ("tau a-LOO", "faithfulness/tau_attn_loo"),
    ("comp. attn", "faithfulness/aopc_comprehensiveness_attention"),
    ("comp. grad", "faithfulness/aopc_comprehensiveness_gradient"),
    ("comp. rand", "faithfulness/aopc_comprehensiveness_random"),
    ("entropy", "attention_entropy_ratio"),
)
OPTION_KEYS = ("lstm", "attention_normalizer", "conicity_weight", "tying_weight", "augment",
               "adversarial_training")


def load_report(path):
    """report.json of a run directory (RUN/evaluation/report.json), an evaluation directory, or a file."""
    candidates = [path]
    if os.path.isdir(path):
        candidates = [os.path.join(path, "evaluation", "report.json"), os.path.join(path, "report.json")]
    for c in candidates:
        if os.path.isfile(c):
            try:
                with open(c) as f:
                    return json.load(f)
            except (OSError, ValueError) as e:
                raise UsageError("--compare %s: not a readable report.json (%s)" % (c, e))
    raise UsageError("--compare %s: no report.json there; evaluate the run first with "
                     "`python -m attn_tf.evaluate %s`" % (path, path))


def figures(results):
    """Flat dict of the figures of ROWS for one report."""
    from attn_tf.evaluation.report import key_metrics

    out = dict(key_metrics(results))
    out["test_accuracy_full"] = results.get("test_accuracy_full")
    out["attention_entropy_ratio"] = results.get("attention_entropy_ratio")
    return out


def label(results):
    """Short name of a variant: run directory name plus its non-default training options."""
    cfg = results.get("config") or {}
    tags = []
    for k in OPTION_KEYS:
        v = cfg.get(k)
        if v in (None, False, "none", "vanilla", "softmax", 0, 0.0):
            continue
        tags.append(k if v is True else "%s=%s" % (k, v))
    name = os.path.basename(str(results.get("run_dir", "?")).rstrip("/"))
    return name + (" (%s)" % ", ".join(tags) if tags else "")


def _fmt(x, nd):
    return "–" if x is None else ("%.*f" % (nd, x))


def markdown(reports, plot_paths=None):
    labels = [label(r) for r in reports]
    figs = [figures(r) for r in reports]
    lines = ["# Variants side by side", "",
             "Each column is one evaluation (`python -m attn_tf.evaluate RUN`); samples: %s." % ", ".join(
                 str(r.get("samples")) for r in reports), "",
             "| figure | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    for row_label, key, nd in ROWS:
        vals = [f.get(key) for f in figs]
        if all(v is None for v in vals):
            continue
        lines.append("| %s | %s |" % (row_label, " | ".join(_fmt(v, nd) for v in vals)))
    if plot_paths:
        lines += ["", "## Key figures per variant", ""]
        for lab, p in zip(labels, plot_paths):
            if p:
                lines.append("![%s](%s)" % (lab, p))
    lines.append("")
    return "\n".join(lines)


def plot_variant(results, path):
    """Bar chart of PLOT_ROWS for one variant (fixed y range so variants can be compared)."""
    from attn_tf.evaluation import plots

    if not plots.available():
        return None
    plt = plots._plt()
    f = figures(results)
    names = [n for n, _ in PLOT_ROWS]
    vals = [f.get(k) if f.get(k) is not None else 0.0 for _, k in PLOT_ROWS]
    fig, ax = plt.subplots(figsize=(6, 3))
    colors = ["#777777", "#1f77b4", "#1f77b4", "#d62728", "#ff7f0e", "#aaaaaa", "#2ca02c"]
    ax.bar(names, vals, color=colors)
    for i, v in enumerate(vals):
        ax.text(i, v + 0.01, "%.2f" % v, ha="center", fontsize=8)
    ax.set_ylim(min(0.0, min(vals) - 0.05), 1.05)
    ax.set_title(label(results), fontsize=9)
    ax.tick_params(axis="x", labelsize=8)
    return plots._save(fig, path)


def write(report_paths, out_dir):
    """Loads the reports, writes out_dir/report.md and the plots; returns the markdown path."""
    if len(report_paths) < 2:
        raise UsageError("--compare needs at least two evaluations to put side by side (got %d)"
                         % len(report_paths))
    reports = [load_report(p) for p in report_paths]
    os.makedirs(os.path.join(out_dir, "plots"), exist_ok=True)
    rels = []
    for i, r in enumerate(reports):
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", label(r))[:60]
        rel = os.path.join("plots", "variant_%d_%s.png" % (i, slug))
        rels.append(rel if plot_variant(r, os.path.join(out_dir, rel)) else None)
    path = os.path.join(out_dir, "report.md")
    with open(path, "w") as f:
        f.write(markdown(reports, rels))
    with open(os.path.join(out_dir, "compare.json"), "w") as f:
        json.dump({"variants": [{"label": label(r), "run_dir": r.get("run_dir"), "figures": figures(r)}
                                for r in reports]}, f, indent=1)
    return path
