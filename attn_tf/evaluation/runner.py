"""Runs the evaluation sections on a trained run and collects the results.

`load_run(run_dir)` rebuilds the model, vectorizer and data of a train.py run;
`evaluate(run, ...)` runs the requested sections on a seeded sample of its
test split and returns (results, artefacts): `results` is JSON-able (the
report), `artefacts` holds per-instance arrays and attention pairs for the
plots and the TensorBoard summaries.
"""

import json
import os
import time

import numpy as np

from attn_tf.errors import UsageError

SECTIONS = (
    "agreement",     # J&W tau between attention, gradient, LOO, IG (+ IG completeness)
    "permutation",   # J&W permutation
    "adversarial",   # J&W adversarial attention
    "uniform",       # W&P uniform attention (test time)
    "erasure",       # S&S erasure at the attention layer
    "eraser",        # ERASER comprehensiveness / sufficiency / AOPC
    "transformer",   # A&Z raw / rollout / flow vs blank-out and gradient
    "noise",         # random character / word noise
    "deepwordbug",   # DeepWordBug-style character attack
    "hotflip",       # HotFlip-style gradient word flips
    "sensitivity",   # embedding-noise sensitivity_max of the attention
    "seeds",         # seed-variance floor (needs --second-run)
    "alignment",     # seq2seq: cross-attention vs gradient alignment (attn_tf/evaluation/seq2seq_alignment.py)
)
# Opt-in (they train models, minutes each; attn_tf/evaluation/diagnostics.py): run only when named.
OPT_IN = (
    "wp_uniform",    # W&P model retrained with attention frozen to uniform
    "wp_diagnostic", # W&P diagnostic MLP with uniform / the model's / an adversary's weights
)
POOLING_ONLY = ("permutation", "adversarial", "uniform", "erasure") + OPT_IN
TRANSFORMER_ONLY = ("transformer",)
SEQ2SEQ_ONLY = ("alignment",)
WORD_LEVEL = ("noise", "deepwordbug", "hotflip")  # perturb word tokens: not for WordPiece (minilm) runs
MAX_PAIRS = 8


class Run:
    """A loaded train.py run: config, model, vectorizer, data, adapter."""

    def __init__(self, run_dir, config, model, vectorizer, data, results):
        from attn_tf.evaluation.adapter import ClassifierAdapter

        self.run_dir = run_dir
        self.config = config
        self.model = model
        self.vectorizer = vectorizer
        self.data = data
        self.train_results = results
        self.adapter = ClassifierAdapter(model, kind=config.get("model"))
        if hasattr(vectorizer, "cls_id"):  # [CLS] ... [SEP]: the measures see the content tokens only
            from attn_tf.evaluation.special_tokens import SpecialTokensAdapter

            self.adapter = SpecialTokensAdapter(self.adapter, vectorizer.cls_id, vectorizer.sep_id)


def load_run(run_dir):
    """Loads a run directory; UsageError naming what is missing or unusable."""
    if not os.path.isdir(run_dir):
        raise UsageError("%s is not a directory; pass a run directory made by train.py (runs/<name>)" % run_dir)
    from attn_tf import run_dir as rd

    run = rd.RunDir(run_dir)
    from attn_tf.evaluation import seq2seq_alignment

    if seq2seq_alignment.seq2seq_spec(run) is not None:  # no vectorizer.json: source/target vocabularies
        return seq2seq_alignment.load_run(run_dir, run)
    missing = run.missing(rd.CONFIG, rd.VECTORIZER, rd.MODEL)
    if missing:
        raise UsageError(
            "%s is not a finished train.py run (missing %s); train one with `python train.py` "
            "or finish it with `python train.py --resume %s`" % (run_dir, ", ".join(missing), run_dir))
    config = run.load_config()
    from attn_tf.models import registry

    try:
        spec = registry.get(config.get("model"))
    except registry.UnknownModel as e:
        raise UsageError("%s/config.json: %s" % (run_dir, e))
    covered = [n for n in registry.names(registry.CLASSIFIER) if registry.get(n).evaluation is not None]
    if spec.name not in covered:
        raise UsageError("%s is a %s run; the evaluation covers the classifiers (%s) and the seq2seq models"
                         % (run_dir, spec.name, ", ".join(covered)))
    import keras

    import attn_tf.layers  # noqa: F401  (registers the custom layers)
    from attn_tf.data.run_data import load_classification_data as load_data
    from attn_tf.evaluation.adapter import model_kind

    vectorizer = spec.saved_tokenizer(run_dir, config)
    try:
        model = keras.saving.load_model(run.file(rd.MODEL))
    except Exception as e:  # noqa: BLE001 - any load failure is a bad run dir for the user
        raise UsageError("%s/model.keras cannot be loaded (%s: %s)" % (run_dir, type(e).__name__, e))
    try:
        model_kind(model, spec.name)
    except ValueError as e:
        raise UsageError(str(e))
    data = load_data(config)
    results = run.load_results()
    return Run(run_dir, config, model, vectorizer, data, results)


def parse_sections(spec):
    """'a,b c' or a list -> tuple of section names (SECTIONS when None/'all'; OPT_IN ones only when named)."""
    if spec is None:
        return SECTIONS
    if isinstance(spec, str):
        spec = [spec]
    names = [s.strip() for item in spec for s in item.replace(",", " ").split() if s.strip()]
    if not names or names == ["all"]:
        return SECTIONS
    known = SECTIONS + OPT_IN
    unknown = [s for s in names if s not in known and s != "all"]
    if unknown:
        raise UsageError("unknown section(s) %s; choose from: %s" % (", ".join(unknown), ", ".join(known)))
    return tuple(s for s in known if s in names or ("all" in names and s in SECTIONS))


def select_samples(num_test, samples, seed=0):
    order = np.random.default_rng(seed).permutation(num_test)
    return np.sort(order[:min(samples, num_test)])


class _Cache:
    """Importances computed once and shared by the sections that need them."""

    def __init__(self, run, ids, probs, log):
        self.run, self.ids, self.probs, self.log = run, ids, probs, log
        self._values = {}

    def get(self, name):
        if name not in self._values:
            from attn_tf.evaluation import importance as imp

            a = self.run.adapter
            t = time.time()
            if name == "gradient":
                self._values[name] = imp.gradient_importance(a, self.ids, hold_attention=a.has_pooling_attention)
            elif name == "ig":
                self._values["ig"], self._values["ig_delta"] = imp.integrated_gradients(
                    a, self.ids, self.probs.argmax(-1))
            elif name == "ig_delta":
                self.get("ig")
            elif name == "loo":
                self._values[name] = imp.leave_one_out(a, self.ids, self.probs)[0]
            elif name == "blankout":
                pred = self.probs.argmax(-1)
                self._values[name] = imp.leave_one_out(a, self.ids, self.probs, mode="unk", target=pred)[0]
            elif name == "rollout":
                from attn_tf.evaluation.transformer_attribution import rollout_vector

                self._values[name] = rollout_vector(a, self.ids)
            else:
                raise KeyError(name)
            self.log("  %s importance: %.1f s" % (name, time.time() - t))
        return self._values[name]


def _pair(tokens_a, tokens_b, att_a, att_b, name_a="clean", name_b="perturbed", **extra):
    return {"tokens": {name_a: list(tokens_a), name_b: list(tokens_b)},
            "attention": {name_a: np.asarray(att_a[:len(tokens_a)], np.float32),
                          name_b: np.asarray(att_b[:len(tokens_b)], np.float32)},
            "extra": extra}


def _stability_split(per, subset):
    from attn_tf.evaluation import stability as st

    return st.summarize(per, subset)


def evaluate(run, samples=500, sections=None, second_run=None, seed=0, log=print):
    """Runs the sections; returns (results dict, artefacts dict)."""
    from attn_tf.data import vectorize_numpy
    from attn_tf.evaluation import attacks, erasure, faithfulness, metrics, perturb, stability
    from attn_tf.evaluation.adapter import real_lengths
    from attn_tf.metrics.attention_faithfulness import entropy_ratio

    sections = parse_sections(sections)
    if getattr(run, "task", None) == "seq2seq":
        from attn_tf.evaluation import seq2seq_alignment

        idx = select_samples(len(run.data.test_sources), samples, seed)
        return seq2seq_alignment.evaluate(run, idx, sections, seed=seed, log=log)
    adapter = run.adapter
    data = run.data
    idx = select_samples(len(data.test_texts), samples, seed)
    texts = [data.test_texts[i] for i in idx]
    labels = np.asarray(data.test_labels, np.int64)[idx]
    vec = run.vectorizer
    ids = vectorize_numpy(texts, vec)
    tokens = vec.tokens_for(texts)
    from attn_tf.evaluation.special_tokens import content_ids, content_tokens

    specials = getattr(adapter, "specials", None)
    if specials:  # MiniLM: [CLS]/[SEP] are not ranked, deleted or perturbed (special_tokens.py)
        ids, tokens = content_ids(ids, adapter.cls_id, adapter.sep_id), content_tokens(tokens)
    lengths = real_lengths(ids)
    start_all = time.time()
    probs, attention = adapter.predict(ids)
    pred = probs.argmax(-1)
    results = {
        "run_dir": run.run_dir,
        "model": run.config.get("model"),
        "dataset": run.config.get("dataset") or run.config.get("data"),
        "config": {k: run.config.get(k) for k in ("augment", "adversarial_training", "seed", "max_length",
                                                   "epochs", "max_steps", "lstm", "attention_normalizer",
                                                   "conicity_weight", "tying_weight")},
        "test_accuracy_full": (run.train_results or {}).get("test_accuracy"),
        "samples": int(len(idx)),
        "sample_seed": seed,
        "sample_accuracy": float(np.mean(pred == labels)),
        "mean_tokens": float(lengths.mean()) if len(lengths) else 0.0,
        # H(attention) / log(n), mean over the sample (1 = uniform); the training curve logs the same.
        "attention_entropy_ratio": entropy_ratio(attention, ids),
        "attention": ("pooling weights" if adapter.has_pooling_attention else
                      "last block, mean over heads and real query rows (attention received)"
                      + ("; [CLS]/[SEP] excluded (renormalised over the text's pieces)" if specials else "")
                      + "; also rollout of all blocks, mean over real query rows (`rollout` rows)"),
        "sections": {},
        "timing_seconds": {},
    }
    art = {"pairs": {}, "class_names": list(data.class_names), "tokens": tokens, "attention": attention,
           "probs": probs, "labels": labels}
    cache = _Cache(run, ids, probs, log)

    for name in sections:
        if name in POOLING_ONLY and not adapter.has_pooling_attention:
            results["sections"][name] = {"skipped": "needs a model with pooling attention (bilstm_attention)"}
            continue
        if name in TRANSFORMER_ONLY and adapter.has_pooling_attention:
            results["sections"][name] = {"skipped": "applies to transformer models"}
            continue
        if name in SEQ2SEQ_ONLY:
            results["sections"][name] = {"skipped": "applies to seq2seq runs"}
            continue
        if name in WORD_LEVEL and specials:
            results["sections"][name] = {"skipped": "word-level perturbations; not implemented for WordPiece "
                                                    "(minilm) runs"}
            continue
        if name == "seeds" and second_run is None:
            results["sections"][name] = {"skipped": "pass --second-run RUN_DIR (same setup, another seed)"}
            continue
        log("section %s ..." % name)
        t = time.time()
        out = {}
        if name == "agreement":
            grad, loo, ig = cache.get("gradient"), cache.get("loo"), cache.get("ig")
            summary, per = faithfulness.agreement(attention, grad, loo, ids, ig)
            if not adapter.has_pooling_attention:  # the Transformer's rollout ranked the same way
                roll, roll_per = faithfulness.agreement(cache.get("rollout"), grad, loo, ids)
                for k in ("attn_grad", "attn_loo"):
                    summary[k.replace("attn", "rollout")] = roll[k]
                    per[k.replace("attn", "rollout")] = roll_per[k]
            delta = cache.get("ig_delta")
            rel = np.abs(ig.sum(1) - delta) / np.maximum(np.abs(delta), 1e-6)
            big = np.abs(delta) >= 0.01
            out = {"kendall_tau": summary,
                   "gradient": "J&W: sum_c |grad . e|, attention held constant" if adapter.has_pooling_attention
                   else "sum_c |grad . e| (input gradient)",
                   "ig_completeness": {
                       "steps": 50, "baseline": "zero embedding",
                       "median_relative_error": metrics.summarize(rel[big])["median"],
                       "frac_within_5pct": float(np.mean(rel[big] <= 0.05)) if big.any() else None,
                       "aggregate_relative_error": float(np.abs(ig.sum() - delta.sum()) /
                                                         max(np.abs(delta.sum()), 1e-9)),
                       "n": int(big.sum()),
                   }}
            art["taus"] = per
        elif name == "permutation":
            r = faithfulness.permutation(adapter, ids, probs, attention, seed=seed)
            out = faithfulness.permutation_summary(r)
            art["permutation"] = r
        elif name == "adversarial":
            r = faithfulness.adversarial_attention(adapter, ids, probs, attention, seed=seed)
            out = faithfulness.adversarial_summary(r)
            art["adversarial"] = r
            pairs = []
            for i in np.argsort(-np.nan_to_num(r["jsd"], nan=-1))[:MAX_PAIRS]:
                if np.isfinite(r["jsd"][i]):
                    pairs.append(_pair(tokens[i], tokens[i], attention[i], r["attention"][i], "original",
                                       "adversarial", text=texts[i], label=int(labels[i]), prediction=int(pred[i]),
                                       probabilities=probs[i].tolist(), jsd=float(r["jsd"][i]),
                                       delta_p=float(r["delta"][i]), shared_tokens=True))
            art["pairs"]["faithfulness/adversarial"] = pairs
        elif name == "uniform":
            out = faithfulness.uniform_gap(adapter, ids, probs, labels)
        elif name == "erasure":
            single = erasure.single_weight(adapter, ids, probs, attention, seed=seed)
            many = erasure.many_weights(adapter, ids, probs, attention, seed=seed)
            out = {"single_weight": single["summary"], "until_flip": many["summary"]}
            art["erasure"] = {"single": single, "many": many}
        elif name == "eraser":
            rng = np.random.default_rng(seed)
            rankings = {"attention": attention, "gradient": cache.get("gradient"), "ig": cache.get("ig"),
                        "loo": cache.get("loo"), "random": rng.random(ids.shape)}
            if not adapter.has_pooling_attention:
                rankings["rollout"] = cache.get("rollout")
            r = erasure.eraser(adapter, ids, probs, rankings, seed=seed)
            out = {"rankings": erasure.eraser_summary(r), "convention": erasure.bins_note()}
            art["eraser"] = r
        elif name == "transformer":
            from attn_tf.evaluation import transformer_attribution as ta

            r = ta.evaluate(adapter, ids, probs, cache.get("blankout"), cache.get("gradient"))
            out = r["summary"]
            art["transformer"] = r["summary"]
        elif name == "noise":
            out = {}
            art["noise"] = {}
            for cfg in perturb.NOISE_CONFIGS:
                pert = perturb.apply_noise(tokens, cfg, seed=seed)
                pids = perturb.tokens_to_ids(vec, [p.tokens for p in pert])
                pp, pa = adapter.predict(pids)
                per = stability.compare(attention, pa, probs, pp, [p.align for p in pert], lengths,
                                        real_lengths(pids))
                out[cfg] = {"accuracy": float(np.mean(pp.argmax(-1) == labels)),
                            "flip_rate": float(per["flipped"].mean()),
                            "stability": _stability_split(per, None)}
                art["noise"][cfg] = per
                if cfg in ("char_2", "drop_10"):
                    pairs = [_pair(tokens[i], pert[i].tokens, attention[i], pa[i], text=texts[i],
                                   perturbed_text=pert[i].text, label=int(labels[i]),
                                   clean_prediction=int(pred[i]), prediction=int(pp[i].argmax()),
                                   probabilities=pp[i].tolist(), jsd=float(per["jsd"][i]), attack=cfg)
                             for i in np.nonzero(per["flipped"])[0][:MAX_PAIRS // 2]]
                    art["pairs"]["robustness/noise_%s" % cfg] = pairs
            out["clean_accuracy"] = results["sample_accuracy"]
        elif name in ("deepwordbug", "hotflip"):
            if name == "deepwordbug":
                r = attacks.deepwordbug(adapter, vec, tokens, labels, seed=seed)
                budget = {"max_edit_distance": 30, "max_word_fraction": None, "query_budget": None,
                          "stopwords": "not modified", "each word": "at most once"}
            else:
                r = attacks.hotflip(adapter, vec, tokens, labels)
                budget = {"max_words": 2, "positions": 5, "top_n": 10, "query_budget": None,
                          "stopwords": "not modified"}
            summary = attacks.summarize(r)
            attacked = np.asarray(r["status"]) != attacks.SKIPPED
            pp, pa = adapter.predict(r["ids"])
            per = stability.compare(attention, pa, probs, pp, [np.arange(len(t)) for t in tokens], lengths,
                                    real_lengths(r["ids"]))
            summary["budget"] = budget
            summary["stability"] = _stability_split(per, attacked)
            out = summary
            art[name] = {"result": r, "stability": per, "attacked": attacked}
            succ = np.nonzero(np.asarray(r["status"]) == attacks.SUCCEEDED)[0][:MAX_PAIRS]
            art["pairs"]["robustness/%s" % name] = [
                _pair(tokens[i], r["tokens"][i], attention[i], pa[i], text=texts[i],
                      perturbed_text=" ".join(r["tokens"][i]), label=int(labels[i]),
                      clean_prediction=int(pred[i]), prediction=int(pp[i].argmax()),
                      probabilities=pp[i].tolist(), jsd=float(per["jsd"][i]), attack=name,
                      changed=sorted(int(c) for c in r["changed"][i]))
                for i in succ]
        elif name in OPT_IN:
            from attn_tf.evaluation import diagnostics

            out = diagnostics.run_section(name, run, log=log)
        elif name == "sensitivity":
            s = stability.sensitivity_max(adapter, ids, seed=seed)
            out = {"sensitivity_max": metrics.summarize(s), "draws": 10, "radius": 0.02}
            art["sensitivity"] = s
        elif name == "seeds":
            other = second_run
            texts_ok = other.vectorizer.get_config()["max_length"] == vec.max_length
            ids_b = vectorize_numpy(texts, other.vectorizer)
            tokens_b = other.vectorizer.tokens_for(texts)
            if getattr(other.adapter, "specials", None):
                ids_b = content_ids(ids_b, other.adapter.cls_id, other.adapter.sep_id)
                tokens_b = content_tokens(tokens_b)
            out = stability.seed_floor(adapter, ids, other.adapter, ids_b, tokens, tokens_b)
            out["second_run"] = other.run_dir
            out["same_max_length"] = bool(texts_ok)
        results["sections"][name] = out
        results["timing_seconds"][name] = round(time.time() - t, 1)
        log("  done in %.1f s" % (time.time() - t))
    results["timing_seconds"]["total"] = round(time.time() - start_all, 1)
    return results, art
