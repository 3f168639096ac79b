"""Synthetic seq2seq tasks: copy and reverse of random letter strings.

Sources are space-separated letters ("c a f"), so the word tokenizer makes one
token per letter; with ids directly, tokens 4.. are letters (0-3 reserved).
"""

import numpy as np

LETTERS = "abcdefghijkl"


def pairs(task, n, seed=0, min_len=3, max_len=8):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        k = int(rng.integers(min_len, max_len + 1))
        s = [LETTERS[i] for i in rng.integers(0, len(LETTERS), k)]
        t = s if task == "copy" else s[::-1]
        out.append((" ".join(s), " ".join(t)))
    return out


def id_arrays(task, n, seed=0, min_len=3, max_len=8):
    """(source [n, max_len], target_in [n, max_len+1], target_out [n, max_len+1]) int32 ids."""
    rng = np.random.default_rng(seed)
    v = len(LETTERS)
    src = np.zeros((n, max_len), np.int32)
    tin = np.zeros((n, max_len + 1), np.int32)
    tout = np.zeros((n, max_len + 1), np.int32)
    for i in range(n):
        k = int(rng.integers(min_len, max_len + 1))
        s = rng.integers(4, 4 + v, k)
        t = s if task == "copy" else s[::-1]
        src[i, :k] = s
        tin[i, 0] = 2
        tin[i, 1:k + 1] = t
        tout[i, :k] = t
        tout[i, k] = 3
    return src, tin, tout


def write_tsv(path, task="copy", n=600, seed=0):
    with open(path, "w", encoding="utf-8") as f:
        for s, t in pairs(task, n, seed):
            f.write("%s\t%s\n" % (s, t))
    return path


def alignment_score(source_ids, ids, lengths, attention, task):
    """(sequence accuracy, share of steps whose attention argmax is the expected source position)."""
    correct = steps = on_path = 0
    for i in range(len(source_ids)):
        k = int((source_ids[i] > 0).sum())
        ref = list(source_ids[i, :k]) if task == "copy" else list(source_ids[i, :k][::-1])
        hyp = list(ids[i, : int(lengths[i])])
        correct += hyp == ref + [3]
        for t in range(min(k, len(hyp))):
            steps += 1
            on_path += int(np.argmax(attention[i, t])) == (t if task == "copy" else k - 1 - t)
    return correct / len(source_ids), on_path / max(steps, 1)
