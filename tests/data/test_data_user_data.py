"""load_user_data: CSV / TSV / JSONL happy paths and every user-fixable error."""

import json

import numpy as np
import pytest

from attn_tf.data import DataError, load_user_data


def _rows(n_per_class=10, classes=("neg", "pos")):
    return [(f"text {c} {i}, with comma", c) for c in classes for i in range(n_per_class)]


def _write_csv(path, rows, header="text,label"):
    lines = [header] + ['"{}",{}'.format(t.replace('"', '""'), y) for t, y in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _check_split(d, n_total, class_names):
    assert d.class_names == class_names
    parts = [(d.train_texts, d.train_labels), (d.val_texts, d.val_labels), (d.test_texts, d.test_labels)]
    assert sum(len(t) for t, _ in parts) == n_total
    for texts, labels in parts:
        assert labels.dtype == np.int32 and len(texts) == len(labels)
    all_texts = d.train_texts + d.val_texts + d.test_texts
    assert len(set(all_texts)) == n_total  # disjoint, complete


def test_csv_happy_path(tmp_path):
    rows = _rows() + [('quoted "word", and\nnewline', "pos")]
    p = _write_csv(tmp_path / "reviews.csv", rows)
    d = load_user_data(p, seed=0)
    _check_split(d, 21, ["neg", "pos"])
    assert len(d.test_texts) == 2 and len(d.val_texts) == 2  # round(21*.1)=2, round(19*.1)=2
    by_text = dict(zip(d.train_texts + d.val_texts + d.test_texts,
                       np.concatenate([d.train_labels, d.val_labels, d.test_labels])))
    assert by_text['quoted "word", and\nnewline'] == 1
    assert by_text["text neg 3, with comma"] == 0
    assert str(p) in d.description and d.name == "reviews"
    # seeded: same seed same split, other seed other split
    assert load_user_data(p, seed=0).test_texts == d.test_texts
    assert load_user_data(p, seed=1).test_texts != d.test_texts or load_user_data(p, seed=2).test_texts != d.test_texts


def test_csv_bom_and_custom_columns(tmp_path):
    p = tmp_path / "x.csv"
    body = "id,sentence,sentiment\n" + "".join(f"{i},s{i},{'a' if i % 2 else 'b'}\n" for i in range(10))
    p.write_bytes(b"\xef\xbb\xbf" + body.encode())
    d = load_user_data(p, text_column="sentence", label_column="sentiment", test_fraction=0.2, validation_fraction=0)
    _check_split(d, 10, ["a", "b"])
    assert len(d.test_texts) == 2 and len(d.val_texts) == 0


def test_tsv_no_quoting(tmp_path):
    p = tmp_path / "x.tsv"
    lines = ["label\ttext"] + [f"{'yes' if i % 2 else 'no'}\t\"quoted start\" text {i}" for i in range(20)]
    p.write_text("\n".join(lines) + "\n\n", encoding="utf-8")
    d = load_user_data(p)
    _check_split(d, 20, ["no", "yes"])
    assert all(t.startswith('"quoted start"') for t in d.train_texts)


def test_orange_tab_header_rows_skipped(tmp_path):
    p = tmp_path / "x.tab"
    lines = ["Category\tText", "d\tstring", "class\t", ""] + [f"{'a' if i % 2 else 'b'}\tdoc {i}" for i in range(10)]
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    d = load_user_data(p, text_column="Text", label_column="Category")
    _check_split(d, 10, ["a", "b"])


def test_jsonl_numeric_labels_sorted_numerically(tmp_path):
    p = tmp_path / "x.jsonl"
    recs = [{"text": f"t{i}", "label": [2, 10, 1][i % 3]} for i in range(30)]
    p.write_text("\n".join(json.dumps(r) for r in recs) + "\n\n", encoding="utf-8")
    d = load_user_data(p)
    _check_split(d, 30, ["1", "2", "10"])
    lab = dict(zip(d.train_texts + d.val_texts + d.test_texts,
                   np.concatenate([d.train_labels, d.val_labels, d.test_labels]).tolist()))
    assert lab["t0"] == 1 and lab["t1"] == 2 and lab["t2"] == 0


def test_ndjson_extension(tmp_path):
    p = tmp_path / "x.ndjson"
    p.write_text("".join(json.dumps({"text": f"t{i}", "label": "ab"[i % 2]}) + "\n" for i in range(6)))
    assert load_user_data(p).num_classes == 2


# ----------------------------------------------------------------------------- errors

def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_user_data(tmp_path / "nope.csv")


def test_unknown_extension(tmp_path):
    p = tmp_path / "data.xlsx"
    p.write_text("x")
    with pytest.raises(DataError) as ei:
        load_user_data(p)
    assert ".xlsx" in str(ei.value) and ".csv" in str(ei.value) and ".jsonl" in str(ei.value)


@pytest.mark.parametrize("ext", [".csv", ".tsv", ".jsonl"])
def test_empty_file(tmp_path, ext):
    p = tmp_path / f"empty{ext}"
    p.write_text("  \n\n")
    with pytest.raises(DataError, match="empty"):
        load_user_data(p)


def test_header_only(tmp_path):
    p = tmp_path / "h.csv"
    p.write_text("text,label\n")
    with pytest.raises(DataError, match="no data rows"):
        load_user_data(p)


def test_missing_column_csv(tmp_path):
    p = _write_csv(tmp_path / "x.csv", _rows(), header="review,label")
    with pytest.raises(DataError) as ei:
        load_user_data(p)
    msg = str(ei.value)
    assert "'text'" in msg and "'review'" in msg and "'label'" in msg and "--text-column" in msg
    p = _write_csv(tmp_path / "y.csv", _rows(), header="text,sentiment")
    with pytest.raises(DataError) as ei:
        load_user_data(p)
    assert "--label-column" in str(ei.value) and "'sentiment'" in str(ei.value)


def test_missing_column_jsonl(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text('{"text": "a", "label": "x"}\n{"body": "b", "label": "y"}\n')
    with pytest.raises(DataError) as ei:
        load_user_data(p)
    msg = str(ei.value)
    assert "line 2" in msg and "'body'" in msg and "--text-column" in msg


def test_empty_label_csv(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("text,label\na,x\nb,y\nc,  \nd,x\n")
    with pytest.raises(DataError) as ei:
        load_user_data(p)
    assert "line 4" in str(ei.value) and "empty label" in str(ei.value)


def test_empty_label_jsonl(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text('{"text": "a", "label": "x"}\n{"text": "b", "label": null}\n')
    with pytest.raises(DataError, match="line 2"):
        load_user_data(p)


def test_malformed_json_line(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text('{"text": "a", "label": "x"}\n\n{"text": "b", "label": "y"\n')
    with pytest.raises(DataError) as ei:
        load_user_data(p)
    assert "line 3" in str(ei.value) and "not valid JSON" in str(ei.value)


def test_json_line_not_object(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text('["a", "x"]\n')
    with pytest.raises(DataError, match="line 1"):
        load_user_data(p)


def test_single_class(tmp_path):
    p = _write_csv(tmp_path / "x.csv", _rows(classes=("only",)))
    with pytest.raises(DataError) as ei:
        load_user_data(p)
    assert "at least 2 classes" in str(ei.value) and "'only'" in str(ei.value)


def test_short_row(tmp_path):
    p = tmp_path / "x.tsv"
    p.write_text("text\tlabel\na\tx\nno tab here\nb\ty\n")
    with pytest.raises(DataError) as ei:
        load_user_data(p)
    assert "line 3" in str(ei.value)


def test_not_utf8(tmp_path):
    p = tmp_path / "x.csv"
    p.write_bytes("text,label\nok,a\ncaf\xe9,b\n".encode("latin-1"))
    with pytest.raises(DataError) as ei:
        load_user_data(p)
    assert "UTF-8" in str(ei.value) and "line 3" in str(ei.value)
