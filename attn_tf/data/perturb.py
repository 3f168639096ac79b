"""Random text noise on token lists, with the alignment to the clean tokens.

Perturbations act on the vectorizer's tokens (already case-folded and split),
so the model sees exactly the edited tokens and every perturbed token knows
which clean token it came from (`align[j]` = clean index, or -1). Character
edits keep one token per token (letters only, so the tokenizer would split the
edited text the same way); word drops and swaps move tokens.

Kinds of character edit (DeepWordBug's four): "swap" two neighbouring
characters, "substitute", "delete", "insert" a random letter. Only alphabetic
tokens of two or more characters are edited.

`NOISE_CONFIGS` is the random-noise suite of the report: 1 and 2 character
edits per sentence, and 5/10/20% word drops or adjacent-word swaps
(round(rate * words) of them, at least one).

`STOPWORDS`: words the attacks and the adversarial training never edit.

Used by the evaluation (random noise, attacks) and by training (--augment
noise, --adversarial-training), so it lives below both (it moved here from
attn_tf.evaluation.perturb, which re-exports it).
"""

from dataclasses import dataclass, field

import numpy as np

LETTERS = "abcdefghijklmnopqrstuvwxyz"

STOPWORDS = frozenset("""
a about above after again against all am an and any are aren't as at be because been before being below
between both but by can can't cannot could couldn't did didn't do does doesn't doing don't down during each
few for from further had hadn't has hasn't have haven't having he he'd he'll he's her here here's hers herself
him himself his how how's i i'd i'll i'm i've if in into is isn't it it's its itself let's me more most mustn't
my myself no nor not of off on once only or other ought our ours ourselves out over own same shan't she she'd
she'll she's should shouldn't so some such than that that's the their theirs them themselves then there
there's these they they'd they'll they're they've this those through to too under until up very was wasn't we
we'd we'll we're we've were weren't what what's when when's where where's which while who who's whom why
why's with won't would wouldn't you you'd you'll you're you've your yours yourself yourselves s t d ll m o re
ve y also just will
""".split())
EDIT_KINDS = ("swap", "substitute", "delete", "insert")

NOISE_CONFIGS = {
    "char_1": ("char", 1),
    "char_2": ("char", 2),
    "drop_5": ("drop", 0.05),
    "drop_10": ("drop", 0.10),
    "drop_20": ("drop", 0.20),
    "swap_5": ("swap", 0.05),
    "swap_10": ("swap", 0.10),
    "swap_20": ("swap", 0.20),
}


@dataclass
class Perturbed:
    tokens: list
    align: np.ndarray  # [len(tokens)] clean index of each token, -1 if new
    changed: set = field(default_factory=set)  # clean indices of modified/dropped/moved words
    edit_distance: int = 0

    @property
    def text(self):
        return " ".join(self.tokens)


def is_word(token):
    return any(ch.isalnum() for ch in token)


def editable(token):
    return len(token) >= 2 and token.isalpha()


def char_edit(word, kind, rng):
    """One character edit of `word`; returns (new word, Levenshtein distance)."""
    n = len(word)
    if kind == "swap":
        if n < 2:
            return word, 0
        i = int(rng.integers(0, n - 1))
        new = word[:i] + word[i + 1] + word[i] + word[i + 2:]
        return new, (0 if new == word else 2)
    if kind == "substitute":
        i = int(rng.integers(0, n))
        choices = [c for c in LETTERS if c != word[i]]
        return word[:i] + choices[int(rng.integers(0, len(choices)))] + word[i + 1:], 1
    if kind == "delete":
        if n < 2:
            return word, 0
        i = int(rng.integers(0, n))
        return word[:i] + word[i + 1:], 1
    if kind == "insert":
        i = int(rng.integers(0, n + 1))
        return word[:i] + LETTERS[int(rng.integers(0, 26))] + word[i:], 1
    raise ValueError("unknown edit kind %r; expected one of %s" % (kind, EDIT_KINDS))


def identity(tokens):
    return Perturbed(list(tokens), np.arange(len(tokens)))


def char_noise(tokens, num_edits, rng):
    """`num_edits` random character edits, each on a different editable word."""
    tokens = list(tokens)
    cand = [i for i, t in enumerate(tokens) if editable(t)]
    chosen = rng.permutation(cand)[:num_edits] if cand else []
    dist, changed = 0, set()
    for i in chosen:
        kind = EDIT_KINDS[int(rng.integers(0, len(EDIT_KINDS)))]
        tokens[i], d = char_edit(tokens[i], kind, rng)
        if d:
            changed.add(int(i))
            dist += d
    return Perturbed(tokens, np.arange(len(tokens)), changed, dist)


def _count(rate, n_words):
    return max(1, int(round(rate * n_words))) if n_words else 0


def word_drop(tokens, rate, rng):
    """Drops round(rate * words) (at least one) random words."""
    words = [i for i, t in enumerate(tokens) if is_word(t)]
    k = min(_count(rate, len(words)), max(len(tokens) - 1, 0))
    drop = set(rng.permutation(words)[:k].tolist()) if words else set()
    keep = [i for i in range(len(tokens)) if i not in drop]
    return Perturbed([tokens[i] for i in keep], np.array(keep, dtype=int), drop)


def word_swap(tokens, rate, rng):
    """round(rate * words) (at least one) swaps of two neighbouring words."""
    tokens = list(tokens)
    order = np.arange(len(tokens))
    pairs = [i for i in range(len(tokens) - 1) if is_word(tokens[i]) and is_word(tokens[i + 1])]
    k = _count(rate, sum(is_word(t) for t in tokens))
    changed = set()
    for i in rng.permutation(pairs)[:k] if pairs else []:
        i = int(i)
        if tokens[i] == tokens[i + 1]:
            continue
        order[[i, i + 1]] = order[[i + 1, i]]
        tokens[i], tokens[i + 1] = tokens[i + 1], tokens[i]
        changed.update((int(order[i]), int(order[i + 1])))
    return Perturbed(tokens, order, changed)


def apply_noise(token_lists, config, seed=0):
    """Applies one entry of NOISE_CONFIGS to every token list (seeded per row)."""
    kind, amount = NOISE_CONFIGS[config] if isinstance(config, str) else config
    out = []
    for i, tokens in enumerate(token_lists):
        rng = np.random.default_rng([seed, i])
        if kind == "char":
            out.append(char_noise(tokens, amount, rng))
        elif kind == "drop":
            out.append(word_drop(tokens, amount, rng))
        elif kind == "swap":
            out.append(word_swap(tokens, amount, rng))
        else:
            raise ValueError("unknown noise kind %r" % kind)
    return out


def tokens_to_ids(vectorizer, token_lists, width=None):
    """Token lists -> int32 ids [N, width] via the vectorizer's table (unknown -> [UNK])."""
    import tensorflow as tf

    width = width or vectorizer.max_length
    lengths = [min(len(t), width) for t in token_lists]
    flat = [tok for t, n in zip(token_lists, lengths) for tok in t[:n]]
    out = np.zeros((len(token_lists), width), np.int32)
    if flat:
        ids = vectorizer.lookup(tf.constant(flat, dtype=tf.string)).numpy()
        rows = np.repeat(np.arange(len(token_lists)), lengths)
        cols = np.concatenate([np.arange(n) for n in lengths]) if lengths else np.zeros(0, int)
        out[rows, cols] = ids
    return out
