"""Raw attention, rollout and flow of a Transformer vs blank-out and input gradients.

Abnar & Zuidema (2020), per layer l (bottom = 1): the importance of input
token t for the prediction is read from
  raw:     mean over heads of A_l, then the mean of the rows of the real
           positions (the classifier mean-pools the top layer);
  rollout: rollout of layers 1..l (A' = 0.5 * mean_h A + 0.5 * I, rows
           renormalised, R = A'_l ... A'_1), mean of the real rows;
  flow:    max-flow in the layered graph of layers 1..l, averaged over the
           real output positions (only for `flow_samples` short inputs: it
           costs n^2 max-flow problems per layer).
Each is compared per instance with Spearman rho against blank-out (signed drop
of p_c when the token is replaced by [UNK]) and against the input gradient
(J&W's g without holding the attention); mean over instances per layer. Flow
is averaged over its subset only; raw and rollout are also given on that
subset (`*_flow_subset`).

Rollout and flow come from `tb_plugin.flows` (the Attention tab's code).
"""

import numpy as np

from attn_tf.evaluation import metrics
from attn_tf.evaluation.adapter import length_batches, real_lengths, trim

try:  # the plugin's implementation, so the tab and the report agree
    from tb_plugin.flows import attention_flow as _flow
    from tb_plugin.flows import rollout as _rollout
except ImportError:  # pragma: no cover - plugin not installed
    _flow = None

    def _rollout(layers, head_fusion="mean", exclude_first=False):
        result = None
        for a in layers:
            f = np.asarray(a, np.float64).mean(0)
            f = 0.5 * f + 0.5 * np.eye(f.shape[0])
            f = f / f.sum(-1, keepdims=True)
            result = f if result is None else f @ result
        return result


def layer_importances(attention, n, with_flow=False, specials=(0, 0)):
    """attention [L, H, T, T] of one instance -> dict kind -> [L, n] importances.

    `specials` = (before, after): special positions around the n content
    tokens ([CLS], [SEP]); the attention, rollout and flow run over all
    n + before + after real positions (rows: all of them, as the model
    pools them) and the importances are those of the content columns only.
    """
    before, after = specials
    m = n + before + after
    att = np.asarray(attention, np.float64)[:, :, :m, :m]
    num_layers = att.shape[0]
    cols = slice(before, before + n)
    raw = att.mean(1).mean(1)[:, cols]  # [L, n]
    roll = np.stack([_rollout(list(att[: l + 1])).mean(0)[cols] for l in range(num_layers)])
    out = {"raw": raw, "rollout": roll}
    if with_flow and _flow is not None:
        out["flow"] = np.stack([
            np.mean([_flow(list(att[: l + 1]), p) for p in range(m)], axis=0)[cols] for l in range(num_layers)
        ])
    return out


def rollout_vector(adapter, ids, batch_size=64):
    """Rollout of all layers, mean over the real query rows: [N, T] over the (content) tokens, rows sum to 1.

    The attention summary of a Transformer that the agreement and ERASER
    sections rank beside the last block's raw attention.
    """
    ids = np.asarray(ids, np.int32)
    lengths = real_lengths(ids)
    specials = getattr(adapter, "specials", (0, 0))
    out = np.zeros(ids.shape, np.float64)
    for idx in length_batches(lengths, batch_size):
        _, att = adapter.predict_full(trim(ids[idx]))
        for j, i in enumerate(idx):
            n = int(lengths[i])
            if n:
                v = layer_importances(att[j], n, specials=specials)["rollout"][-1]
                out[i, :n] = v / max(v.sum(), 1e-12)
    return out


def evaluate(adapter, ids, probs, blankout, gradient, flow_samples=20, flow_max_tokens=24, batch_size=64):
    """Spearman rho per layer of raw/rollout/flow vs blank-out and vs gradient."""
    ids = np.asarray(ids, np.int32)
    lengths = real_lengths(ids)
    num_layers = adapter.num_layers
    flow_candidates = np.nonzero((lengths >= 3) & (lengths <= flow_max_tokens))[0][:flow_samples]
    flow_set = set(flow_candidates.tolist())
    rho = {ref: {kind: np.full((len(ids), num_layers), np.nan) for kind in ("raw", "rollout", "flow")}
           for ref in ("blankout", "gradient")}
    specials = getattr(adapter, "specials", (0, 0))  # [CLS]/[SEP] around the content (SpecialTokensAdapter)
    for idx in length_batches(lengths, batch_size):
        sub = trim(ids[idx])
        _, att = adapter.predict_full(sub)  # [B, L, H, T, T] (T + 2 with [CLS]/[SEP])
        for j, i in enumerate(idx):
            n = int(lengths[i])
            if n < 3:
                continue
            imps = layer_importances(att[j], n, with_flow=i in flow_set, specials=specials)
            for ref, target in (("blankout", blankout[i, :n]), ("gradient", gradient[i, :n])):
                for kind, vals in imps.items():
                    for l in range(num_layers):
                        rho[ref][kind][i, l] = metrics.spearman(vals[l], target)
    summary = {}
    for ref, kinds in rho.items():
        summary[ref] = {}
        for kind, arr in kinds.items():
            summary[ref][kind] = [metrics.summarize(arr[:, l])["mean"] for l in range(num_layers)]
        for kind in ("raw", "rollout"):  # on the instances flow was computed for, to compare like with like
            summary[ref][kind + "_flow_subset"] = [
                metrics.summarize(rho[ref][kind][flow_candidates, l])["mean"] for l in range(num_layers)]
    summary["flow_instances"] = int(len(flow_candidates)) if _flow is not None else 0
    summary["num_layers"] = num_layers
    return {"summary": summary, "rho": rho}
