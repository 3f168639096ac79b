"""Writes the evaluation: report.json, report.md, plots/*.png and TensorBoard summaries.

Output directory (default RUN_DIR/evaluation/):
  report.json   every figure (the `results` of `runner.evaluate`)
  report.md     tables with the published reference numbers beside ours
  plots/*.png   (when matplotlib is installed)
  events.out.tfevents.*  scalars `evaluation/...` and attention pairs for the
                Attention tab: tags `robustness/<attack>_NNN` (two pooling
                layers "clean" and "perturbed" over their own tokens) and
                `faithfulness/adversarial_NNN` ("original" and "adversarial"
                over the same tokens).
"""

import glob
import json
import math
import os

import numpy as np

from attn_tf.evaluation import plots, references as ref


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, (np.floating, float)):
        x = float(x)
        return x if math.isfinite(x) else None
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


def _get(d, *path):
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def key_metrics(results):
    """Flat dict of the headline figures (TensorBoard scalars, comparisons)."""
    s = results["sections"]
    if results.get("task") == "seq2seq":
        from attn_tf.evaluation.seq2seq_alignment import key_metrics as seq2seq_metrics

        return seq2seq_metrics(results)
    m = {"accuracy/sample": results.get("sample_accuracy")}
    for pair in ("attn_grad", "attn_loo", "grad_loo", "attn_ig", "rollout_grad", "rollout_loo"):
        m["faithfulness/tau_%s" % pair] = _get(s, "agreement", "kendall_tau", pair, "mean")
    m["faithfulness/ig_completeness_within_5pct"] = _get(s, "agreement", "ig_completeness", "frac_within_5pct")
    m["faithfulness/permutation_median_delta"] = _get(s, "permutation", "median_delta", "median")
    m["faithfulness/adversarial_max_jsd"] = _get(s, "adversarial", "max_jsd", "mean")
    m["faithfulness/uniform_accuracy_gap"] = _get(s, "uniform", "gap")
    m["faithfulness/wp_retrained_uniform_test_gap"] = _get(s, "wp_uniform", "gap_test_accuracy")
    m["faithfulness/wp_mlp_model_minus_uniform_f1"] = _get(s, "wp_diagnostic", "model_minus_uniform_test_f1")
    m["faithfulness/erasure_flip_rate_top"] = _get(s, "erasure", "single_weight", "flip_rate_top")
    m["faithfulness/erasure_attention_never_flip"] = _get(s, "erasure", "until_flip", "attention", "never_flip")
    for r in ("attention", "rollout", "gradient", "ig", "loo", "random"):
        m["faithfulness/aopc_comprehensiveness_%s" % r] = _get(s, "eraser", "rankings", r, "aopc_comprehensiveness")
        m["faithfulness/aopc_sufficiency_%s" % r] = _get(s, "eraser", "rankings", r, "aopc_sufficiency")
    for cfg, v in (s.get("noise") or {}).items():
        if isinstance(v, dict) and "accuracy" in v:
            m["robustness/noise_%s_accuracy" % cfg] = v["accuracy"]
            m["robustness/noise_%s_jsd" % cfg] = _get(v, "stability", "all", "jsd")
    for att in ("deepwordbug", "hotflip"):
        for k in ("accuracy_under_attack", "attack_success_rate", "perturbed_word_pct", "avg_queries"):
            m["robustness/%s_%s" % (att, k)] = _get(s, att, k)
        m["robustness/%s_jsd_flipped" % att] = _get(s, att, "stability", "flipped", "jsd")
        m["robustness/%s_jsd_unflipped" % att] = _get(s, att, "stability", "unflipped", "jsd")
    m["robustness/sensitivity_max"] = _get(s, "sensitivity", "sensitivity_max", "mean")
    m["robustness/seed_floor_jsd"] = _get(s, "seeds", "jsd", "mean")
    m["robustness/seed_floor_tvd"] = _get(s, "seeds", "tvd", "mean")
    return {k: v for k, v in m.items() if v is not None}


# ------------------------------------------------------------------ markdown

def _f(x, nd=3, pct=False):
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    if pct:
        return "%.1f%%" % (100 * x)
    return ("%%.%df" % nd) % x


def _pm(mean, std, nd=3):
    if mean is None:
        return "-"
    return _f(mean, nd) + ("" if std is None else " +- " + _f(std, nd))


def _skipped(sec):
    return isinstance(sec, dict) and "skipped" in sec


def markdown(results, plot_paths=None, compare=None):
    if results.get("task") == "seq2seq":
        from attn_tf.evaluation.seq2seq_alignment import markdown as seq2seq_markdown

        return seq2seq_markdown(results)
    s = results["sections"]
    L = []
    w = L.append
    w("# Attention evaluation: %s" % results["run_dir"])
    w("")
    w("Model `%s` on `%s`; %d test examples (seeded sample %d), accuracy on them %s (full test split %s); "
      "%.1f tokens per example on average. Attention analysed: %s. Total time %.0f s."
      % (results["model"], results["dataset"], results["samples"], results["sample_seed"],
         _f(results["sample_accuracy"], pct=True), _f(results.get("test_accuracy_full"), pct=True),
         results.get("mean_tokens", 0), results["attention"], results["timing_seconds"].get("total", 0)))
    cfg = results.get("config") or {}
    if cfg.get("augment") not in (None, "none") or cfg.get("adversarial_training"):
        w("")
        w("Trained with augment=%s, adversarial_training=%s." % (cfg.get("augment"), cfg.get("adversarial_training")))
    w("")
    w("## Faithfulness")
    sec = s.get("agreement")
    if sec and not _skipped(sec):
        w("")
        w("### Agreement with gradient and leave-one-out (Jain & Wallace 2019)")
        w("")
        w("Per-instance Kendall tau-b; mean +- std, and the share of instances with p <= 0.05. Gradient: %s; "
          "LOO: token deleted." % sec["gradient"])
        w("")
        w("| pair | ours | p <= 0.05 | J&W SST | J&W IMDB | J&W AG News |")
        w("|---|---|---|---|---|---|")
        for pair, label in (("attn_grad", "attention vs gradient"), ("attn_loo", "attention vs LOO"),
                            ("grad_loo", "gradient vs LOO (ceiling)"), ("attn_ig", "attention vs IG"),
                            ("ig_loo", "IG vs LOO"), ("rollout_grad", "rollout (all blocks) vs gradient"),
                            ("rollout_loo", "rollout (all blocks) vs LOO")):
            t = sec["kendall_tau"].get(pair)
            if t is None:
                continue
            refs = [_pm(*ref.JW_TAU[d][pair]) if pair in ref.JW_TAU[d] else "-" for d in ("SST", "IMDB", "AG News")]
            w("| %s | %s | %s | %s |" % (label, _pm(t["mean"], t["std"]), _f(t["frac_p_le_0.05"], pct=True),
                                         " | ".join(refs)))
        c = sec["ig_completeness"]
        w("")
        w("Integrated gradients (zero baseline, 50 steps): completeness sum_t IG_t vs p_c(e) - p_c(e') within 5%% "
          "for %s of %d instances with |delta p| >= 0.01 (median relative error %s; over all instances %s)."
          % (_f(c["frac_within_5pct"], pct=True), c["n"], _f(c["median_relative_error"], 4),
             _f(c["aggregate_relative_error"], 4)))
    sec = s.get("permutation")
    if sec and not _skipped(sec):
        w("")
        w("### Permutation (J&W)")
        w("")
        w("Median over 100 permutations of the attention (hidden states fixed) of mean_c |delta p_c|: "
          "median over instances %s, mean %s; %s of instances below 0.01."
          % (_f(sec["median_delta"]["median"], 4), _f(sec["median_delta"]["mean"], 4),
             _f(sec["frac_median_delta_lt_0.01"], pct=True)))
        w("")
        w("| max attention | n | mean of median |dp| |")
        w("|---|---|---|")
        for b in sec["by_max_attention"]:
            w("| %.2f-%.2f | %d | %s |" % (b["max_attention"][0], b["max_attention"][1], b["n"],
                                           _f(b["median_delta_mean"], 4)))
    sec = s.get("adversarial")
    if sec and not _skipped(sec):
        w("")
        w("### Adversarial attention (J&W)")
        w("")
        w("Largest JSD from the model's attention with mean_c |delta p_c| <= %.2f (Adam on attention logits, "
          "500 steps, 5 restarts): mean %s, median %s (ln 2 = %.3f is the maximum); found for %s of instances; "
          "JSD > 0.5 for %s." % (sec["epsilon"], _f(sec["max_jsd"]["mean"]), _f(sec["max_jsd"]["median"]),
                                 ref_ln2(), _f(sec["frac_found"], pct=True), _f(sec["frac_jsd_gt_0.5"], pct=True)))
    sec = s.get("uniform")
    if sec and not _skipped(sec):
        w("")
        w("### Uniform attention (Wiegreffe & Pinter 2019, test-time variant)")
        w("")
        w("Accuracy %s with the model's attention, %s with uniform attention (gap %s); decisions changed: %s; "
          "mean |delta p| %s." % (_f(sec["accuracy"], pct=True), _f(sec["accuracy_uniform"], pct=True),
                                  _f(sec["gap"], 3), _f(sec["decision_changed"], pct=True),
                                  _f(sec["mean_abs_delta_p"], 4)))
    _wiegreffe_pinter(s, w)
    sec = s.get("erasure")
    if sec and not _skipped(sec):
        sw = sec["single_weight"]
        w("")
        w("### Erasure at the attention layer (Serrano & Smith 2019)")
        w("")
        w("Single weight: delta JS = JS(p, p without the top weight) - JS(p, p without a random weight): "
          "mean %s, median %s, positive for %s; decision flips: top %s, random %s."
          % (_f(sw["delta_js"]["mean"], 5), _f(sw["delta_js"]["median"], 5),
             _f(sw["frac_delta_js_positive"], pct=True), _f(sw["flip_rate_top"], pct=True),
             _f(sw["flip_rate_random"], pct=True)))
        w("")
        w("| removal order | fraction removed until flip (mean / median, flipping instances) | never flip |")
        w("|---|---|---|")
        for o, v in sec["until_flip"].items():
            fr = v["fraction_removed"]
            w("| %s | %s / %s (n=%d) | %s |" % (o, _f(fr["mean"]), _f(fr["median"]), fr["n"],
                                                  _f(v["never_flip"], pct=True)))
    sec = s.get("eraser")
    if sec and not _skipped(sec):
        w("")
        w("### ERASER deletion metrics (DeYoung et al. 2020)")
        w("")
        w("Input-level deletion; %s. Comprehensiveness: higher is better; sufficiency: lower is better. "
          "The random ranking is the baseline." % sec["convention"])
        w("")
        w("| ranking | AOPC comprehensiveness | AOPC sufficiency | comp@1/5/10/20/50% | suff@1/5/10/20/50% |")
        w("|---|---|---|---|---|")
        for name, v in sec["rankings"].items():
            w("| %s | %s | %s | %s | %s |" % (
                name, _f(v["aopc_comprehensiveness"]), _f(v["aopc_sufficiency"]),
                " / ".join(_f(x, 2) for x in v["comprehensiveness"].values()),
                " / ".join(_f(x, 2) for x in v["sufficiency"].values())))
    sec = s.get("transformer")
    if sec and not _skipped(sec):
        w("")
        w("### Raw attention, rollout and flow (Abnar & Zuidema 2020)")
        w("")
        w("Mean per-instance Spearman rho per layer. Flow is computed on %d short instances; raw and rollout "
          "on that subset are given in the last columns." % sec["flow_instances"])
        w("")
        w("| reference | layer | raw | rollout | flow (subset) | raw / rollout (subset) |")
        w("|---|---|---|---|---|---|")
        for r in ("blankout", "gradient"):
            for l in range(sec["num_layers"]):
                w("| %s | %d | %s | %s | %s | %s / %s |" % (
                    r, l + 1, _f(sec[r]["raw"][l]), _f(sec[r]["rollout"][l]), _f(sec[r]["flow"][l]),
                    _f(sec[r]["raw_flow_subset"][l]), _f(sec[r]["rollout_flow_subset"][l])))
        for k, v in ref.AZ_SPEARMAN.items():
            w("| A&Z %s (%s) | | %.2f | %.2f | %.2f | |" % (k.split("_")[0], v["setting"], v["raw"],
                                                           v["rollout"], v["flow"]))
    w("")
    w("## Robustness")
    attacks_present = [a for a in ("deepwordbug", "hotflip") if s.get(a) and not _skipped(s.get(a))]
    if attacks_present:
        w("")
        w("### Attacks (TextAttack's definitions)")
        w("")
        w("| attack | clean accuracy | accuracy under attack | success rate | perturbed words | avg queries |")
        w("|---|---|---|---|---|---|")
        for a in attacks_present:
            v = s[a]
            w("| %s (ours) | %s | %s | %s | %s | %s |" % (
                a, _f(v["clean_accuracy"], pct=True), _f(v["accuracy_under_attack"], pct=True),
                _f(v["attack_success_rate"], pct=True), _f(None if v["perturbed_word_pct"] is None
                                                           else v["perturbed_word_pct"] / 100, pct=True),
                _f(v["avg_queries"], 1)))
            if a == "deepwordbug":
                t = ref.TEXTATTACK_DEEPWORDBUG
                w("| DeepWordBug, %s | %s | %s | %s | %.1f%% | %.1f |" % (
                    t["setting"], _f(t["clean_accuracy"], pct=True), _f(t["accuracy_under_attack"], pct=True),
                    _f(t["attack_success_rate"], pct=True), t["perturbed_word_pct"], t["avg_queries"]))
        w("")
        w("Budgets: %s." % "; ".join("%s: %s" % (a, ", ".join("%s=%s" % kv for kv in s[a]["budget"].items()))
                                     for a in attacks_present))
        w("TextAttack model zoo BiLSTM (GloVe) clean accuracy on MR: %.1f%%. HotFlip here flips to any "
          "vocabulary word, so a success may change the meaning (worst-case probe)." %
          (100 * ref.TEXTATTACK_ZOO_MR_ACCURACY))
    sec = s.get("noise")
    if sec and not _skipped(sec):
        w("")
        w("### Random noise")
        w("")
        w("Clean accuracy %s. Character edits: swap/substitute/delete/insert in random words; word drops and "
          "adjacent-word swaps of round(rate * words) words (at least one)." % _f(sec["clean_accuracy"], pct=True))
        w("")
        w("| noise | accuracy | flip rate | JSD attention | top-1 overlap | top-3 overlap | tau |")
        w("|---|---|---|---|---|---|---|")
        for cfg, v in sec.items():
            if not isinstance(v, dict):
                continue
            st = v["stability"]["all"]
            w("| %s | %s | %s | %s | %s | %s | %s |" % (cfg, _f(v["accuracy"], pct=True), _f(v["flip_rate"], pct=True),
                                                        _f(st["jsd"], 4), _f(st["top1"], 2), _f(st["top3"], 2),
                                                        _f(st["tau"], 2)))
    rows = []
    for a in attacks_present:
        for g in ("flipped", "unflipped"):
            rows.append(("%s, %s" % (a, "succeeded" if g == "flipped" else "failed"), s[a]["stability"][g]))
    if sec and not _skipped(sec):
        for cfg in ("char_2", "drop_10"):
            if cfg in sec:
                for g in ("flipped", "unflipped"):
                    rows.append(("noise %s, %s" % (cfg, g), sec[cfg]["stability"][g]))
    seeds = s.get("seeds")
    if rows:
        w("")
        w("### Attention stability (clean vs perturbed, aligned tokens)")
        w("")
        w("| setting | n | JSD | TVD(p) | top-1 | top-3 | tau |")
        w("|---|---|---|---|---|---|---|")
        for label, st in rows:
            w("| %s | %d | %s | %s | %s | %s | %s |" % (label, st["n"], _f(st["jsd"], 4), _f(st["tvd"], 3),
                                                        _f(st["top1"], 2), _f(st["top3"], 2), _f(st["tau"], 2)))
        if seeds and not _skipped(seeds):
            w("| seed floor (second run, clean inputs) | %d | %s | %s | %s | %s | %s |" % (
                seeds["n"], _f(seeds["jsd"]["mean"], 4), _f(seeds["tvd"]["mean"], 3), _f(seeds["top1"]["mean"], 2),
                _f(seeds["top3"]["mean"], 2), _f(seeds["tau"]["mean"], 2)))
        else:
            w("")
            w("Seed floor: not measured (%s)." % ((seeds or {}).get("skipped") or "section not run"))
    sec = s.get("sensitivity")
    if sec and not _skipped(sec):
        w("")
        w("Embedding-noise sensitivity_max of the attention (max over %d draws of U(-%.2f, %.2f) noise of "
          "||dalpha|| / ||alpha||): mean %s, median %s." % (sec["draws"], sec["radius"], sec["radius"],
                                                           _f(sec["sensitivity_max"]["mean"], 4),
                                                           _f(sec["sensitivity_max"]["median"], 4)))
    if compare:
        w("")
        w(compare_markdown(compare, results))
    skipped = {k: v["skipped"] for k, v in s.items() if _skipped(v)}
    if skipped:
        w("")
        w("Sections not run: " + "; ".join("%s (%s)" % kv for kv in skipped.items()) + ".")
    if plot_paths:
        w("")
        w("## Plots")
        for name, p in plot_paths.items():
            w("")
            w("![%s](%s)" % (name, p))
    w("")
    w("Timing (s): " + ", ".join("%s %s" % kv for kv in results["timing_seconds"].items()) + ".")
    w("")
    return "\n".join(L)


def _wiegreffe_pinter(s, w):
    """report.md lines of the opt-in W&P sections (diagnostics.py): their claim beside our numbers."""
    sec = s.get("wp_uniform")
    if sec and not _skipped(sec):
        w("")
        w("### Uniform attention, retrained (Wiegreffe & Pinter 2019)")
        w("")
        w("W&P: if a model trained with attention frozen to uniform matches the accuracy, the task does not "
          "need attention. Full validation and test splits; same data, seed and epochs (%d, best epoch %d kept "
          "by validation accuracy); the frozen attention deviates from 1/T by at most %s."
          % (sec["epochs"], sec["best_epoch"], _f(sec["max_deviation_from_uniform"], 6)))
        w("")
        w("| model | val accuracy | test accuracy | test macro-F1 |")
        w("|---|---|---|---|")
        for k, label in (("run", "this run (trained attention)"), ("uniform", "retrained, uniform attention")):
            v = sec[k]
            w("| %s | %s | %s | %s |" % (label, _f(v["val"]["accuracy"], pct=True), _f(v["test"]["accuracy"], pct=True),
                                         _f(v["test"]["macro_f1"])))
        w("")
        w("Test accuracy gap (trained - uniform): %s points." % _f(100 * sec["gap_test_accuracy"], 1))
    sec = s.get("wp_diagnostic")
    if sec and not _skipped(sec):
        adv, m = sec["adversary"], sec["mlp_sizes"]
        w("")
        w("### Diagnostic MLP with imposed attention (Wiegreffe & Pinter 2019)")
        w("")
        w("W&P's claim: the trained model's attention weights, imposed on a non-contextual token-wise MLP, "
          "help it more than uniform weights (and more than an adversary's). MLP: embedding %d -> Dense(%d, tanh) "
          "per token -> average with the fixed weights -> softmax; %d epochs, best by validation accuracy."
          % (m["embedding_dim"], m["hidden"], m["epochs"]))
        w("")
        w("| imposed weights | val accuracy | test accuracy | test macro-F1 |")
        w("|---|---|---|---|")
        for k, label in (("uniform", "uniform"), ("model", "this run's attention"), ("adversary", "adversary's")):
            v = sec["mlp"][k]
            w("| %s | %s | %s | %s |" % (label, _f(v["val"]["accuracy"], pct=True), _f(v["test"]["accuracy"], pct=True),
                                         _f(v["test"]["macro_f1"])))
        w("")
        w("Ours: the run's weights minus uniform, test macro-F1: %s. Adversary: %s, lambda %g (not tuned); on "
          "test its predictions are TVD %s from the run's (accuracy %s), its attention JSD %s (ln 2 = %.3f max)."
          % (_f(sec["model_minus_uniform_test_f1"], 3), adv["objective"], adv["lambda"],
             _f(adv["test_tvd"]["mean"], 3), _f(adv["test"]["accuracy"], pct=True), _f(adv["test_jsd"]["mean"], 3),
             ref_ln2()))


def ref_ln2():
    return math.log(2)


def compare_markdown(base, ours, title=None):
    """Side-by-side table of the headline figures of two evaluations (e.g. plain vs --augment noise)."""
    a, b = key_metrics(base), key_metrics(ours)
    keys = [k for k in b if k in a]
    lines = [title or "### Compared with %s" % base["run_dir"], "",
             "| figure | %s | %s |" % (_label(base), _label(ours)), "|---|---|---|"]
    for k in keys:
        lines.append("| %s | %s | %s |" % (k, _f(a[k], 4), _f(b[k], 4)))
    return "\n".join(lines)


def _label(results):
    cfg = results.get("config") or {}
    tags = []
    if cfg.get("augment") not in (None, "none"):
        tags.append("augment=" + cfg["augment"])
    if cfg.get("adversarial_training"):
        tags.append("adversarial training")
    return os.path.basename(results["run_dir"].rstrip("/")) + (" (%s)" % ", ".join(tags) if tags else "")


# ------------------------------------------------------------------ TensorBoard

def _pair_header(pair, class_names):
    from tb_plugin import metadata

    names = list(pair["tokens"])
    layers = [metadata.make_layer(n, "pooling", [1, 1, len(pair["tokens"][n])], query=None, key=n) for n in names]
    ex = dict(pair["extra"])
    label, pred = ex.pop("label", None), ex.pop("prediction", None)
    probs = ex.pop("probabilities", None)
    text = ex.pop("text", None)
    if "clean_prediction" in ex:
        ex["clean_prediction"] = class_names[ex["clean_prediction"]]
    if ex.pop("shared_tokens", False):
        tokens = {"input": pair["tokens"][names[0]]}
        layers = [metadata.make_layer(n, "pooling", [1, 1, len(tokens["input"])], query=None, key="input")
                  for n in names]
    else:
        tokens = pair["tokens"]
    return metadata.make_header(
        tokens, layers, text=text, label=None if label is None else class_names[label],
        prediction=None if pred is None else class_names[pred], probabilities=probs, class_names=class_names,
        extra=_jsonable(ex))


def write_tensorboard(out_dir, results, art, step=0):
    """Scalars and attention pairs in out_dir (earlier evaluation event files there are replaced)."""
    for old in glob.glob(os.path.join(out_dir, "events.out.tfevents.*")):
        os.remove(old)
    from tb_plugin import summary

    written = {}
    with summary.AttentionEventWriter(out_dir, filename_suffix=".attention") as writer:
        for prefix, pairs in art.get("pairs", {}).items():
            for i, pair in enumerate(pairs):
                header = _pair_header(pair, art["class_names"])
                arrays = [np.asarray(pair["attention"][n], np.float32)[None, None, :] for n in pair["attention"]]
                tag = "%s_%03d" % (prefix, i)
                writer.add(header, arrays, step=step, tag=tag)
                written[tag] = True
    import tensorflow as tf

    scalars = key_metrics(results)
    w = tf.summary.create_file_writer(out_dir, filename_suffix=".scalars")
    with w.as_default():
        for k, v in scalars.items():
            tf.summary.scalar("evaluation/" + k, float(v), step=step)
    w.close()
    return {"attention_tags": sorted(written), "scalars": sorted(scalars)}


# ------------------------------------------------------------------ all

def write_report(out_dir, results, art, compare=None, step=0):
    """Writes every output; returns the paths."""
    os.makedirs(out_dir, exist_ok=True)
    plot_paths = {} if results.get("task") == "seq2seq" else plots.draw_all(results, art, out_dir)
    if not plot_paths and not plots.available():
        results.setdefault("notes", []).append("matplotlib is not installed: no PNG plots")
    tb = write_tensorboard(out_dir, results, art, step=step)
    results["tensorboard"] = tb
    results["plots"] = plot_paths
    with open(os.path.join(out_dir, "report.json"), "w") as f:
        json.dump(_jsonable(results), f, indent=1, sort_keys=False)
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write(markdown(results, plot_paths, compare))
    return {"json": os.path.join(out_dir, "report.json"), "markdown": os.path.join(out_dir, "report.md"),
            "plots": plot_paths, "tensorboard": tb}
