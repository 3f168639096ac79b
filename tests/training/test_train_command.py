"""The train command: train, then export, then results.json once; the attn-tf console script; bad input."""

import json
import os
import subprocess
import sys

import pytest

from synthetic import write_csv

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_results_json_is_written_once_after_the_export(tmp_path, monkeypatch):
    from attn_tf import cli
    from attn_tf import run_dir as rd

    csv = write_csv(tmp_path / "reviews.csv", n=200)
    writes = []
    real = rd.write_json

    def counting(path, obj, **kw):
        if os.path.basename(path) == rd.RESULTS:
            writes.append(json.loads(json.dumps(obj)))
        return real(path, obj, **kw)

    monkeypatch.setattr(rd, "write_json", counting)
    code = cli.main(["train", "--data", str(csv), "--text-column", "review", "--label-column", "sentiment",
                     "--logdir", str(tmp_path / "runs"), "--batch-size", "32", "--max-length", "12",
                     "--verbose", "0", "--epochs", "1", "--attention-every", "0",
                     "--export-dir", str(tmp_path / "saved")])
    assert code == 0
    assert len(writes) == 1 and "export" in writes[0]
    (run,) = os.listdir(tmp_path / "runs")
    results = json.loads((tmp_path / "runs" / run / "results.json").read_text())
    export = results["export"]
    # the SavedModel version directory (the plugin's live-text route reads this path)
    assert export["path"] == os.path.join(str(tmp_path / "saved"), export["name"], str(export["version"]))
    assert os.path.isfile(os.path.join(export["path"], "saved_model.pb"))
    assert results["steps"] == 6  # 162 training rows / 32 per batch, one epoch
    assert 0.0 <= results["test_accuracy"] <= 1.0


def test_console_script_lists_and_dispatches_subcommands(capsys):
    from attn_tf import cli

    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("train", "evaluate", "export", "data"):
        assert name in out
    assert cli.main(["nope"]) == 2
    assert "unknown command 'nope'" in capsys.readouterr().err
    assert cli.main(["export", "/nonexistent/run"]) == 2  # the export command's own message and status
    assert "not a directory" in capsys.readouterr().err


def test_console_script_is_installed_by_setup_cfg():
    text = open(os.path.join(ROOT, "setup.cfg")).read()
    assert "attn-tf = attn_tf.cli:main" in text


def _run(*args):
    return subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)


def test_unknown_dataset_names_the_data_flag(tmp_path):
    r = _run("--dataset", "imdb_nope", "--logdir", str(tmp_path / "runs"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "imdb_nope" in r.stderr and "--data PATH" in r.stderr


def test_binary_csv_gives_a_short_message(tmp_path):
    path = tmp_path / "nul.csv"
    path.write_bytes(b"\x00" * 4096 + b"\n" + b"\x00" * 100 + b"\n")
    r = _run("--data", str(path), "--logdir", str(tmp_path / "runs"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    (line,) = [l for l in r.stderr.splitlines() if l.startswith("error: ")]
    assert len(line) < 400 and "--text-column" in line, line[:300]  # was 16.9 KB of "\x00"s
