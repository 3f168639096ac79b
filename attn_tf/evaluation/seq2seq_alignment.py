"""Cross-attention of a seq2seq run against gradient-based alignment (the `alignment` section).

For a seeded sample of the test sources the model decodes greedily; the
decoder is then run teacher-forced on that output (`[START] y_1 .. y_{m-1}`),
so every attention row is the one the model had when it produced y_j. For
each output token y_j (the final [END] left out) and source position s:

  attention  alpha_{j,s}: GRU: its attention row; Transformer: the mean over
             heads of the last decoder block's cross-attention (and, per
             layer, the mean over heads of each block);
  gradient   g_{j,s} = || e_s * d log p(y_j | y_<j, x) / d e_s ||_2: gradient
             x input w.r.t. the source token embeddings e_s (no positions),
             L2 norm over the embedding dimension.

Per step (sources of >= 2 tokens): Kendall tau-b and Spearman rho between
alpha_j and g_j, and whether their argmax positions agree (AER over these
one-link-per-step alignments is exactly 1 - agreement, so it is not given
separately). Chance for an argmax is the mean of 1 / |x| over the steps.

Known alignment: when every sampled test pair is a copy (target tokens =
source tokens) or a reversal, the correct source position of output step j
is j or |x| - 1 - j; the share of steps (j < |x|) whose argmax lands there is
given for the attention (each layer) and for the gradient.

The gradients of all steps of a batch come from one backward pass: the batch
is tiled once per step and copy j contributes log p(y_j).
"""

import time

import numpy as np
import tensorflow as tf

from attn_tf.data.seq2seq_vocab import END_ID, PAD_ID, START_ID
from attn_tf.evaluation import metrics
from attn_tf.evaluation.adapter import length_batches, pad_rows, real_lengths

_IDS = tf.TensorSpec([None, None], tf.int32)


class Seq2SeqAdapter:
    """Compiled teacher-forced cross-attention and gradient alignments of a seq2seq model.

    Args:
      model: a model of `attn_tf.models` with the seq2seq decoding API and
        `source_token_embeddings(ids)` / `attention_maps(source, target_in,
        source_embeddings=)` (Seq2SeqGRU, Seq2SeqTransformer).
      kind: its registry name.
    """

    def __init__(self, model, kind):
        self.model = model
        self.kind = kind
        self._fn = tf.function(self._alignments_impl, input_signature=[_IDS, _IDS, _IDS], reduce_retracing=True)

    def _alignments_impl(self, source, target_in, target_out):
        model = self.model
        emb = tf.cast(model.source_token_embeddings(source), tf.float32)
        b, t = tf.shape(source)[0], tf.shape(target_in)[1]
        tiled = tf.tile(emb, [t, 1, 1])  # copy j (rows j*b .. j*b+b-1) differentiates step j
        with tf.GradientTape() as tape:
            tape.watch(tiled)
            maps = model.attention_maps(tf.tile(source, [t, 1]), tf.tile(target_in, [t, 1]),
                                        source_embeddings=tiled)
            logp = tf.nn.log_softmax(tf.cast(maps["logits"], tf.float32), axis=-1)
            picked = tf.gather(logp, tf.tile(target_out, [t, 1]), batch_dims=2)  # [t*b, T]
            step = tf.one_hot(tf.repeat(tf.range(t), b), t)
            total = tf.reduce_sum(picked * step)
        g = tf.cast(tape.gradient(total, tiled), tf.float32)
        gxi = tf.norm(g * tiled, axis=-1)  # [t*b, S]
        gxi = tf.transpose(tf.reshape(gxi, [t, b, -1]), [1, 0, 2])  # [b, T, S]
        cross = model.attention_maps(source, target_in, source_embeddings=emb)["cross"]
        return tf.cast(cross, tf.float32), gxi

    def alignments(self, source, target_in, target_out):
        """One batch: (cross-attention [B, L, H, T, S], gradient alignment [B, T, S]) as NumPy."""
        a, g = self._fn(tf.constant(source, tf.int32), tf.constant(target_in, tf.int32),
                        tf.constant(target_out, tf.int32))
        return a.numpy(), g.numpy()


def greedy_outputs(model, source, max_length, batch_size=128):
    """Greedy output ids per source row: list of int arrays ([END] included when produced)."""
    from attn_tf.decoding import greedy_decode

    out = [None] * len(source)
    for idx in length_batches(real_lengths(source), batch_size):
        sub = source[idx, :max(int(real_lengths(source[idx]).max(initial=1)), 1)]
        r = greedy_decode(model, sub, max_length)
        ids, lengths = r["ids"].numpy(), r["lengths"].numpy()
        for j, i in enumerate(idx):
            out[i] = ids[j, :lengths[j]].astype(np.int32)
    return out


def known_task(source_tokens, target_tokens, min_share=0.95):
    """"copy" / "reverse" when (nearly) every pair is one, else None."""
    pairs = [(s, t) for s, t in zip(source_tokens, target_tokens) if len(s) >= 2]
    if not pairs:
        return None
    for task, f in (("copy", lambda s: list(s)), ("reverse", lambda s: list(s)[::-1])):
        if np.mean([list(t) == f(s) for s, t in pairs]) >= min_share:
            return task
    return None


def compare(source, outputs, adapter, known=None, token_budget=32768):
    """Per-step statistics of attention vs gradient alignment.

    Args:
      source: source ids [N, S] (right-padded).
      outputs: per row the output ids the decoder is teacher-forced on
        (e.g. `greedy_outputs`; a final [END] is not evaluated).
      adapter: a `Seq2SeqAdapter`.
      known: None, "copy" or "reverse" (expected argmax j or |x| - 1 - j).
    Returns:
      dict of per-step arrays: "tau", "spearman", "agree" (last layer),
      "layer_tau" / "layer_agree" [steps, L], "src_len", "pos", "row",
      "known_attention" [steps, L] / "known_gradient" (NaN where undefined),
      "offset_attention" / "offset_gradient" (argmax minus the right position),
      and "num_layers".
    """
    source = np.asarray(source, np.int32)
    src_len = real_lengths(source)
    width = max([len(o) for o in outputs] + [1])
    target_out = pad_rows(outputs, width)
    target_in = np.zeros_like(target_out)
    target_in[:, 0] = START_ID
    target_in[:, 1:] = target_out[:, :-1]
    step_ok = (target_out != PAD_ID) & (target_out != END_ID)
    rows = []
    steps = np.maximum(step_ok.sum(1), 1)
    cost = steps * (np.maximum(src_len, 1) + steps)  # tiled rows x tokens of one example
    order = np.argsort(cost, kind="stable")
    start = 0
    while start < len(order):  # batches of at most `token_budget` tiled source tokens
        end = start + 1
        while end < len(order) and cost[order[start:end + 1]].max() * (end + 1 - start) <= token_budget:
            end += 1
        rows.append(order[start:end])
        start = end
    out = {k: [] for k in ("tau", "spearman", "agree", "layer_tau", "layer_agree", "src_len", "pos", "row",
                           "known_attention", "known_gradient", "offset_attention", "offset_gradient")}
    num_layers = None
    for idx in rows:
        s_w = max(int(src_len[idx].max()), 1)
        t_w = max(int(step_ok[idx].sum(1).max()), 1)
        # target_in needs the steps up to the last evaluated one
        cross, grad = adapter.alignments(source[idx, :s_w], target_in[idx, :t_w], target_out[idx, :t_w])
        num_layers = cross.shape[1]
        for j, i in enumerate(idx):
            n = min(int(src_len[i]), cross.shape[-1])
            if n < 2:
                continue
            for t in np.nonzero(step_ok[i, :t_w])[0]:
                layers = cross[j, :, :, t, :n].mean(axis=1)  # [L, n], mean over heads
                g = grad[j, t, :n]
                taus = [metrics.kendall(layers[l], g)[0] for l in range(num_layers)]
                agree = [float(np.argmax(layers[l]) == np.argmax(g)) for l in range(num_layers)]
                out["layer_tau"].append(taus)
                out["layer_agree"].append(agree)
                out["tau"].append(taus[-1])
                out["spearman"].append(metrics.spearman(layers[-1], g))
                out["agree"].append(agree[-1])
                out["src_len"].append(n)
                out["pos"].append(int(t))
                out["row"].append(int(i))
                if known and t < n:
                    want = t if known == "copy" else n - 1 - t
                    out["known_attention"].append([float(np.argmax(layers[l]) == want) for l in range(num_layers)])
                    out["known_gradient"].append(float(np.argmax(g) == want))
                    out["offset_attention"].append(float(np.argmax(layers[-1]) - want))
                    out["offset_gradient"].append(float(np.argmax(g) - want))
                else:
                    out["known_attention"].append([np.nan] * num_layers)
                    out["known_gradient"].append(np.nan)
                    out["offset_attention"].append(np.nan)
                    out["offset_gradient"].append(np.nan)
    res = {k: np.asarray(v, np.float64) for k, v in out.items()}
    res["num_layers"] = int(num_layers or 0)
    return res


def _mean(x):
    x = np.asarray(x, np.float64)
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else None


def _top_offset(offsets):
    """{"offset": the most common argmax - right position, "share": its share of the steps} (None if none)."""
    o = np.asarray(offsets, np.float64)
    o = o[np.isfinite(o)].astype(int)
    if not o.size:
        return None
    values, counts = np.unique(o, return_counts=True)
    k = int(np.argmax(counts))
    return {"offset": int(values[k]), "share": float(counts[k] / o.size)}


def summarize(per, known=None):
    """JSON-able summary of `compare`'s arrays."""
    n_layers = per["num_layers"]
    steps = len(per["tau"])
    chance = _mean(1.0 / per["src_len"]) if steps else None
    out = {
        "steps": steps,
        "kendall_tau": metrics.summarize(per["tau"]),
        "spearman": metrics.summarize(per["spearman"]),
        "argmax_agreement": _mean(per["agree"]),
        "chance_argmax": chance,
        "layers": [{"layer": l + 1,
                    "kendall_tau": _mean(per["layer_tau"][:, l]) if steps else None,
                    "argmax_agreement": _mean(per["layer_agree"][:, l]) if steps else None}
                   for l in range(n_layers)],
        "known_alignment": None,
    }
    if known and steps:
        ka = per["known_attention"]
        ok = np.isfinite(per["known_gradient"])
        out["known_alignment"] = {
            "task": known,
            "expected": "source position j" if known == "copy" else "source position |x| - 1 - j",
            "steps": int(ok.sum()),
            "attention_correct": _mean(ka[:, -1]),
            "attention_correct_per_layer": [_mean(ka[:, l]) for l in range(n_layers)],
            "gradient_correct": _mean(per["known_gradient"]),
            "chance": _mean(1.0 / per["src_len"][ok]) if ok.any() else None,
            "attention_top_offset": _top_offset(per["offset_attention"]),
            "gradient_top_offset": _top_offset(per["offset_gradient"]),
        }
    return out


def _previous(task):
    """Offset of the previous output token's source from the right position: copy -1, reverse +1."""
    return -1 if task == "copy" else 1


def conclusion(sec):
    """One or two plain sentences on what the figures mean for a user reading the heatmaps."""
    agree, chance = sec.get("argmax_agreement"), sec.get("chance_argmax")
    tau = (sec.get("kendall_tau") or {}).get("mean")
    if agree is None or chance is None or tau is None:
        return "Too few output steps to conclude anything."
    ranks = ("the whole rows correlate (tau %.2f)" if tau >= 0.3 else
             "the whole rows barely correlate (tau %.2f)") % tau
    if agree >= 0.6 and tau >= 0.3:
        verdict = ("the cross-attention row is a fair guide to the source token an output token depends on: its "
                   "argmax is the gradient's on %.0f%% of steps (chance %.0f%%) and %s" % (100 * agree, 100 * chance,
                                                                                           ranks))
    elif agree >= 2 * chance:
        verdict = ("the cross-attention peak is the gradient's more often than chance (%.0f%% vs %.0f%% of steps) "
                   "but not reliably; %s" % (100 * agree, 100 * chance, ranks))
    else:
        verdict = ("the cross-attention peak does not say which source token an output token depends on (it is the "
                   "gradient's on %.0f%% of steps, chance %.0f%%), although %s" % (100 * agree, 100 * chance, ranks)
                   if tau >= 0.3 else
                   "the cross-attention row does not say which source token an output token depends on (argmax "
                   "agreement %.0f%%, chance %.0f%%; %s)" % (100 * agree, 100 * chance, ranks))
    text = "On this run, " + verdict + "."
    k = sec.get("known_alignment")
    if k and k.get("attention_correct") is not None:
        text += (" On this %s task the right source position is known: the attention's argmax finds it on %.0f%% "
                 "of steps, the gradient's on %.0f%% (chance %.0f%%)." % (
                     k["task"], 100 * k["attention_correct"], 100 * (k["gradient_correct"] or 0),
                     100 * (k["chance"] or 0)))
        top = k.get("attention_top_offset")
        if top and top["offset"] == _previous(k["task"]) and top["share"] >= 0.5:
            text += (" The attention peaks one position off, on the source of the previous output token (the "
                     "decoder's input), on %.0f%% of steps: read its heatmap as shifted by one." % (100 * top["share"]))
    return text


# ----------------------------------------------------------------------------- run level

class Seq2SeqRun:
    """A loaded seq2seq run: config, model, vocabularies, data, adapter (`task` = "seq2seq")."""

    task = "seq2seq"

    def __init__(self, run_dir, config, model, source_vocab, target_vocab, data, results):
        self.run_dir, self.config, self.model = run_dir, config, model
        self.source_vocab, self.target_vocab = source_vocab, target_vocab
        self.data, self.train_results = data, results
        self.adapter = Seq2SeqAdapter(model, config.get("model"))


def seq2seq_spec(run):
    """The registry entry of a seq2seq run (`run`: an attn_tf.run_dir.RunDir), None for anything else."""
    from attn_tf import run_dir as rd
    from attn_tf.models import registry

    if run.missing(rd.CONFIG):
        return None
    try:
        spec = registry.get(run.load_config().get("model"))
    except Exception:  # noqa: BLE001 - unreadable or unknown: the classifier path reports it
        return None
    return spec if spec.task == registry.SEQ2SEQ else None


def load_run(run_dir, run):
    """The Seq2SeqRun of a finished seq2seq run directory (`run`: its attn_tf.run_dir.RunDir)."""
    import keras

    from attn_tf import run_dir as rd
    from attn_tf.data.run_data import load_seq2seq_data
    from attn_tf.errors import UsageError
    from attn_tf.models import registry

    spec = seq2seq_spec(run)
    config = run.load_config()
    missing = run.missing(rd.CONFIG, rd.MODEL, rd.SOURCE_VOCAB, rd.TARGET_VOCAB)
    if missing:
        raise UsageError("%s is not a finished seq2seq run (missing %s)" % (run_dir, ", ".join(missing)))
    registry.resolve(spec.builder)  # registers the model's classes for loading
    try:
        model = keras.models.load_model(run.file(rd.MODEL), compile=False)
    except Exception as e:  # noqa: BLE001 - any load failure is a bad run dir for the user
        raise UsageError("%s/model.keras cannot be loaded (%s: %s)" % (run_dir, type(e).__name__, e))
    source_vocab, target_vocab = spec.saved_tokenizer(run.path, config)
    return Seq2SeqRun(run_dir, config, model, source_vocab, target_vocab, load_seq2seq_data(config),
                      run.load_results())


def evaluate(run, idx, sections, seed=0, log=print):
    """The seq2seq sections on the test pairs `idx`; returns (results, artefacts) like `runner.evaluate`."""
    from attn_tf.decoding.settings import decode_max_length

    t0 = time.time()
    sources = [run.data.test_sources[i] for i in idx]
    targets = [run.data.test_targets[i] for i in idx]
    source = pad_rows(run.source_vocab.encode_numpy(sources), max(1, run.config.get("max_length") or 64))
    source = source[:, :max(int(real_lengths(source).max(initial=1)), 1)]
    known = known_task(run.source_vocab.tokens_for(sources), run.target_vocab.tokens_for(targets))
    results = {
        "run_dir": run.run_dir, "model": run.config.get("model"),
        "dataset": run.config.get("dataset") or run.config.get("data"), "task": "seq2seq",
        "samples": int(len(idx)), "sample_seed": seed, "test_metrics_full": {
            k: v for k, v in (run.train_results or {}).items() if isinstance(v, (int, float)) and k.startswith("test")},
        "mean_source_tokens": float(real_lengths(source).mean()) if len(source) else 0.0,
        "teacher_forcing": "the model's own greedy output (the attention it had when it produced each token)",
        "attention": ("attention row" if run.adapter.kind == "seq2seq_gru" else
                      "cross-attention of the last decoder block, mean over heads (per layer below)"),
        "gradient": "|| e_s * d log p(y_j | y_<j, x) / d e_s ||_2 (gradient x input, source token embeddings)",
        "sections": {}, "timing_seconds": {},
    }
    art = {"pairs": {}, "class_names": []}
    for name in sections:
        if name != "alignment":
            results["sections"][name] = {"skipped": "classifier sections; seq2seq runs have `alignment`"}
            continue
        log("section alignment ...")
        t = time.time()
        outputs = greedy_outputs(run.model, source, decode_max_length(run.config))
        log("  greedy decode: %.1f s" % (time.time() - t))
        results["mean_output_tokens"] = float(np.mean([len(o) for o in outputs])) if outputs else 0.0
        per = compare(source, outputs, run.adapter, known=known)
        results["sections"]["alignment"] = summarize(per, known)
        results["timing_seconds"]["alignment"] = round(time.time() - t, 1)
        art["alignment"] = per
        log("  done in %.1f s" % (time.time() - t))
    results["timing_seconds"]["total"] = round(time.time() - t0, 1)
    return results, art


def _f(x, nd=3, pct=False):
    if x is None:
        return "-"
    return "%.1f%%" % (100 * x) if pct else ("%%.%df" % nd) % x


def markdown(results):
    """report.md of a seq2seq evaluation."""
    L = ["# Attention evaluation: %s" % results["run_dir"], "",
         "Model `%s` on `%s`; %d test sources (seeded sample), %.1f source tokens on average. Teacher-forced on %s. "
         "Attention: %s. Gradient alignment: %s. Total time %.0f s." % (
             results["model"], results["dataset"], results["samples"], results.get("mean_source_tokens", 0),
             results["teacher_forcing"], results["attention"], results["gradient"],
             results["timing_seconds"].get("total", 0))]
    full = results.get("test_metrics_full") or {}
    if full:
        L += ["", "Full test split (train.py): " + ", ".join("%s %s" % (k, v if isinstance(v, int) else "%.4g" % v)
                                                        for k, v in sorted(full.items())) + "."]
    sec = results["sections"].get("alignment")
    if sec and "skipped" not in sec:
        L += ["", "## Cross-attention vs gradient alignment", "",
              "Per output token (the final [END] left out; sources of >= 2 tokens): %d steps. Kendall tau-b %s "
              "+- %s, Spearman %s; argmax of the attention = argmax of the gradient on %s of steps (chance %s; "
              "AER of these argmax alignments = 1 - agreement)." % (
                  sec["steps"], _f(sec["kendall_tau"]["mean"]), _f(sec["kendall_tau"]["std"]),
                  _f(sec["spearman"]["mean"]), _f(sec["argmax_agreement"], pct=True),
                  _f(sec["chance_argmax"], pct=True)),
              "", "| decoder layer (mean over heads) | Kendall tau | argmax agreement |", "|---|---|---|"]
        for row in sec["layers"]:
            L.append("| %d | %s | %s |" % (row["layer"], _f(row["kendall_tau"]), _f(row["argmax_agreement"], pct=True)))
        k = sec.get("known_alignment")
        if k:
            L += ["", "Known alignment (%s task: the right source for output step j is %s), %d steps: attention "
                  "argmax correct %s (per layer: %s), gradient argmax correct %s, chance %s." % (
                      k["task"], k["expected"], k["steps"], _f(k["attention_correct"], pct=True),
                      " / ".join(_f(x, pct=True) for x in k["attention_correct_per_layer"]),
                      _f(k["gradient_correct"], pct=True), _f(k["chance"], pct=True))]
        offs = [(name, k.get(key)) for name, key in (("attention", "attention_top_offset"),
                                                     ("gradient", "gradient_top_offset")) if k.get(key)]
        if offs:
            L += ["", "Most common argmax position minus the right one: " + "; ".join(
                "%s %+d (%s of steps)" % (name, o["offset"], _f(o["share"], pct=True)) for name, o in offs)
                + " (%+d: the source of the previous output token, the decoder's input)." % _previous(k["task"])]
        L += ["", "**What to conclude.** " + conclusion(sec)]
    by_reason = {}
    for k, v in results["sections"].items():
        if "skipped" in v:
            by_reason.setdefault(v["skipped"], []).append(k)
    if by_reason:
        L += ["", "Sections not run: " + "; ".join("%s (%s)" % (", ".join(names), why)
                                                   for why, names in by_reason.items()) + "."]
    L += ["", "Timing (s): " + ", ".join("%s %s" % kv for kv in results["timing_seconds"].items()) + ".", ""]
    return "\n".join(L)


def key_metrics(results):
    """TensorBoard scalars of a seq2seq evaluation (`evaluation/seq2seq/...`)."""
    sec = results["sections"].get("alignment") or {}
    if "skipped" in sec or not sec:
        return {}
    m = {"seq2seq/alignment_tau": sec["kendall_tau"]["mean"], "seq2seq/alignment_spearman": sec["spearman"]["mean"],
         "seq2seq/argmax_agreement": sec["argmax_agreement"]}
    k = sec.get("known_alignment") or {}
    m["seq2seq/known_attention_correct"] = k.get("attention_correct")
    m["seq2seq/known_gradient_correct"] = k.get("gradient_correct")
    return {a: b for a, b in m.items() if b is not None}
