"""Adversarial attacks with budgets, batched over instances (TextAttack's definitions).

`deepwordbug`: DeepWordBug (Gao et al. 2018) as TextAttack's recipe: words
  ranked by the drop of the true-class probability when replaced by [UNK]
  (one query per candidate word); then, in that order, each word gets one
  candidate per edit kind (neighbour swap, substitution, deletion, insertion),
  the one lowering p_y most is kept if it lowers it, until the prediction
  changes. Stopwords are not modified; each word at most once; budgets: total
  Levenshtein distance (30, as TextAttack), optionally a fraction of words and
  a number of queries.
`hotflip`: HotFlip-style gradient word flips: the first-order change of the
  loss -log p_y when token i becomes word w is (E_w - e_i) . dL/de_i; the
  `positions` most salient eligible positions are scored against the whole
  vocabulary, the `top_n` best flips are checked with real queries and the
  best is applied if it lowers p_y. Budget: `max_words` flips (2, as
  TextAttack's hotflip recipe), optionally a fraction of words and queries.
  Replacement words are unconstrained vocabulary words (letters only): a flip
  may change the meaning, so this is a worst-case probe.

Results follow TextAttack: instances the model already gets wrong are skipped;
attack success rate = succeeded / (succeeded + failed); accuracy under attack =
failed / N; perturbed-word % = mean over successes of 100 * changed words /
words; queries = mean model evaluations per attacked instance (the original
included).
"""

import numpy as np
import tensorflow as tf

from attn_tf.data import UNK_ID
from attn_tf.data.perturb import EDIT_KINDS, STOPWORDS, char_edit, editable, is_word, tokens_to_ids  # noqa: F401
from attn_tf.models.adapter import length_batches, real_lengths, trim
from attn_tf.models.gradients import loss_gradients  # noqa: F401  (moved below training and evaluation)


SUCCEEDED, FAILED, SKIPPED = "succeeded", "failed", "skipped"


def _word_budget(n_words, max_word_fraction, max_words):
    b = np.inf
    if max_word_fraction is not None:
        b = min(b, max(1, int(np.floor(max_word_fraction * n_words))))
    if max_words is not None:
        b = min(b, max_words)
    return b


def summarize(result):
    status = np.asarray(result["status"])
    n = len(status)
    succ, fail = status == SUCCEEDED, status == FAILED
    attacked = succ | fail
    words = np.asarray(result["words"], float)
    changed = np.asarray(result["changed_words"], float)
    pct = 100.0 * changed[succ] / np.maximum(words[succ], 1)
    return {
        "n": int(n),
        "clean_accuracy": float(attacked.mean()) if n else None,
        "accuracy_under_attack": float(fail.sum() / n) if n else None,
        "attack_success_rate": float(succ.sum() / attacked.sum()) if attacked.any() else None,
        "perturbed_word_pct": float(pct.mean()) if succ.any() else None,
        "avg_queries": float(np.asarray(result["queries"], float)[attacked].mean()) if attacked.any() else None,
        "counts": {"succeeded": int(succ.sum()), "failed": int(fail.sum()),
                   "skipped_already_wrong": int((status == SKIPPED).sum())},
    }


def _start(adapter, vectorizer, token_lists, labels):
    ids = tokens_to_ids(vectorizer, token_lists)
    probs, _ = adapter.predict(ids)
    labels = np.asarray(labels)
    status = np.where(probs.argmax(-1) == labels, FAILED, SKIPPED).astype(object)
    words = np.array([sum(is_word(t) for t in toks[:ids.shape[1]]) for toks in token_lists])
    return ids, probs, status, words


def deepwordbug(adapter, vectorizer, token_lists, labels, max_edit_distance=30, max_word_fraction=None,
                max_words=None, query_budget=None, stopwords=STOPWORDS, seed=0):
    """DeepWordBug-style character attack. Returns a dict of per-instance results (see `summarize`)."""
    width = vectorizer.max_length
    tokens = [list(t[:width]) for t in token_lists]
    ids, probs, status, words = _start(adapter, vectorizer, tokens, labels)
    labels = np.asarray(labels)
    n = len(tokens)
    rng = np.random.default_rng(seed)
    queries = np.ones(n, int)
    attack = np.nonzero(status == FAILED)[0]
    cur_p = probs[np.arange(n), labels].astype(np.float64)
    dist = np.zeros(n, int)
    changed = [set() for _ in range(n)]
    done = status != FAILED

    # word importance ranking: [UNK] replacement of each eligible word
    eligible = [[j for j, t in enumerate(tokens[i]) if editable(t) and t not in stopwords] for i in range(n)]
    rows, cols = [], []
    for i in attack:
        e = eligible[i]
        if query_budget is not None:
            e = e[:max(0, query_budget - queries[i])]
            eligible[i] = e
        rows += [i] * len(e)
        cols += e
    rows, cols = np.array(rows, int), np.array(cols, int)
    order = [[] for _ in range(n)]
    if len(rows):
        var = ids[rows].copy()
        var[np.arange(len(rows)), cols] = UNK_ID
        p_var, _ = adapter.predict(var)
        drop = cur_p[rows] - p_var[np.arange(len(rows)), labels[rows]]
        np.add.at(queries, rows, 1)
        for i in attack:
            sel = rows == i
            o = np.argsort(-drop[sel], kind="stable")
            order[i] = cols[sel][o].tolist()
    budget = np.array([_word_budget(words[i], max_word_fraction, max_words) for i in range(n)], float)

    step = 0
    while True:
        cand_rows, cand_tokens, cand_info = [], [], []
        for i in attack:
            if done[i]:
                continue
            if step >= len(order[i]) or len(changed[i]) + 1 > budget[i]:
                done[i] = True
                continue
            pos = order[i][step]
            word = tokens[i][pos]
            options = []
            for kind in EDIT_KINDS:
                new, d = char_edit(word, kind, rng)
                if d and dist[i] + d <= max_edit_distance and new != word:
                    options.append((new, d))
            if query_budget is not None:
                options = options[:max(0, query_budget - queries[i])]
                if not options and queries[i] >= query_budget:
                    done[i] = True
                    continue
            for new, d in options:
                t = list(tokens[i])
                t[pos] = new
                cand_rows.append(i)
                cand_tokens.append(t)
                cand_info.append((pos, new, d))
        if not cand_rows and done[attack].all():
            break
        step += 1
        if not cand_rows:
            continue
        cand_ids = tokens_to_ids(vectorizer, cand_tokens, width)
        p_c, _ = adapter.predict(cand_ids)
        cand_rows = np.array(cand_rows)
        np.add.at(queries, cand_rows, 1)
        py = p_c[np.arange(len(cand_rows)), labels[cand_rows]]
        for i in np.unique(cand_rows):
            sel = np.nonzero(cand_rows == i)[0]
            best = sel[np.argmin(py[sel])]
            if py[best] < cur_p[i]:
                pos, new, d = cand_info[best]
                tokens[i] = cand_tokens[best]
                ids[i] = cand_ids[best]
                cur_p[i] = py[best]
                dist[i] += d
                changed[i].add(pos)
                if p_c[best].argmax() != labels[i]:
                    status[i] = SUCCEEDED
                    done[i] = True
    return {"status": status, "queries": queries, "words": words,
            "changed_words": np.array([len(c) for c in changed]), "edit_distance": dist,
            "tokens": tokens, "ids": ids, "changed": changed}


def word_vocabulary_mask(vectorizer):
    """[V] bool: vocabulary entries usable as replacement words (letters only)."""
    vocab = vectorizer.vocabulary
    return np.array([i > UNK_ID and tok.isalpha() for i, tok in enumerate(vocab)])


def first_order_flips(grads, embs, ids, allowed_positions, vocab_mask, emb_matrix, positions, top_n):
    """Best `top_n` (position, word) flips per row by the first-order loss increase.

    grads, embs [B, T, D]; allowed_positions [B, T] bool. Returns (pos [B, k],
    word [B, k], score [B, k]); score -inf marks no candidate.
    """
    b, t, _ = grads.shape
    sal = np.abs((grads * embs).sum(-1))
    sal = np.where(allowed_positions, sal, -np.inf)
    p = min(positions, t)
    top_pos = np.argsort(-sal, axis=1, kind="stable")[:, :p]  # [B, P]
    pos_ok = np.take_along_axis(sal, top_pos, 1) > -np.inf
    g = np.take_along_axis(grads, top_pos[:, :, None], 1)  # [B, P, D]
    e = np.take_along_axis(embs, top_pos[:, :, None], 1)
    scores = g @ emb_matrix.T - (g * e).sum(-1, keepdims=True)  # [B, P, V]
    cur = np.take_along_axis(ids, top_pos, 1)
    bad = ~vocab_mask[None, None, :] | ~pos_ok[:, :, None]
    scores = np.where(bad, -np.inf, scores)
    np.put_along_axis(scores, cur[:, :, None], -np.inf, axis=2)
    flat = scores.reshape(b, -1)
    k = min(top_n, flat.shape[1])
    best = np.argpartition(-flat, k - 1, axis=1)[:, :k]
    best_scores = np.take_along_axis(flat, best, 1)
    o = np.argsort(-best_scores, axis=1)
    best, best_scores = np.take_along_axis(best, o, 1), np.take_along_axis(best_scores, o, 1)
    v = scores.shape[2]
    return np.take_along_axis(top_pos, best // v, 1), best % v, best_scores


def hotflip(adapter, vectorizer, token_lists, labels, max_words=2, max_word_fraction=None, query_budget=None,
            positions=5, top_n=10, stopwords=STOPWORDS, batch_size=64):
    """HotFlip-style gradient word-flip attack. Returns per-instance results (see `summarize`)."""
    width = vectorizer.max_length
    tokens = [list(t[:width]) for t in token_lists]
    ids, probs, status, words = _start(adapter, vectorizer, tokens, labels)
    labels = np.asarray(labels, np.int32)
    n = len(tokens)
    queries = np.ones(n, int)
    cur_p = probs[np.arange(n), labels].astype(np.float64)
    changed = [set() for _ in range(n)]
    done = status != FAILED
    budget = np.array([_word_budget(words[i], max_word_fraction, max_words) for i in range(n)], float)
    vocab = vectorizer.vocabulary
    vocab_mask = word_vocabulary_mask(vectorizer)
    emb_matrix = np.asarray(adapter.embedding_matrix.numpy(), np.float32)
    eligible = np.zeros(ids.shape, bool)
    for i, toks in enumerate(tokens):
        for j, tok in enumerate(toks):
            eligible[i, j] = is_word(tok) and tok not in stopwords
    gradient_calls = np.zeros(n, int)
    while True:
        for i in np.nonzero(~done)[0]:
            if len(changed[i]) + 1 > budget[i] or (query_budget is not None and queries[i] >= query_budget):
                done[i] = True
        active = np.nonzero(~done)[0]
        if not len(active):
            break
        grads, embs = loss_gradients(adapter, ids[active], labels[active])
        gradient_calls[active] += 1
        cand_rows, cand_ids, cand_pos = [], [], []
        for start in range(0, len(active), batch_size):
            rows = active[start:start + batch_size]
            sl = slice(start, start + batch_size)
            allowed = eligible[rows].copy()
            for r, i in enumerate(rows):
                allowed[r, list(changed[i])] = False
            pos, word, score = first_order_flips(grads[sl], embs[sl], ids[rows], allowed, vocab_mask,
                                                 emb_matrix, positions, top_n)
            for r, i in enumerate(rows):
                ok = np.isfinite(score[r])
                k = int(ok.sum())
                if query_budget is not None:
                    k = min(k, query_budget - queries[i])
                for c in np.nonzero(ok)[0][:k]:
                    v = ids[i].copy()
                    v[pos[r, c]] = word[r, c]
                    cand_rows.append(i)
                    cand_ids.append(v)
                    cand_pos.append((int(pos[r, c]), int(word[r, c])))
        if not cand_rows:
            break
        cand_rows = np.array(cand_rows)
        cand_ids = np.stack(cand_ids)
        p_c, _ = adapter.predict(cand_ids)
        np.add.at(queries, cand_rows, 1)
        py = p_c[np.arange(len(cand_rows)), labels[cand_rows]]
        improved = np.zeros(n, bool)
        for i in np.unique(cand_rows):
            sel = np.nonzero(cand_rows == i)[0]
            best = sel[np.argmin(py[sel])]
            if py[best] < cur_p[i]:
                improved[i] = True
                pos, w = cand_pos[best]
                ids[i] = cand_ids[best]
                tokens[i][pos] = vocab[w]
                cur_p[i] = py[best]
                changed[i].add(pos)
                if p_c[best].argmax() != labels[i]:
                    status[i] = SUCCEEDED
                    done[i] = True
        done[active[~improved[active]]] = True  # no flip lowers p_y: give up
    return {"status": status, "queries": queries, "gradient_calls": gradient_calls, "words": words,
            "changed_words": np.array([len(c) for c in changed]), "tokens": tokens, "ids": ids,
            "changed": changed}

