"""python -m attn_tf.evaluate on tiny trained runs: every section, the outputs, bad input."""

import csv
import json
import os

import numpy as np
import pytest

import train as train_script
from attn_tf import evaluate
from attn_tf.evaluation.runner import SECTIONS


def _write_csv(path, n=240, seed=0):
    rng = np.random.default_rng(seed)
    filler = ["the", "movie", "plot", "was", "a", "film", "story", "and", "acting", "really", "quite", "its"]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for i in range(n):
            words = list(rng.choice(filler, size=int(rng.integers(4, 10))))
            pos = i % 2 == 0
            words.insert(int(rng.integers(0, len(words) + 1)), rng.choice(["good", "great", "fine"] if pos
                                                                         else ["bad", "awful", "dull"]))
            w.writerow([" ".join(words) + ".", "pos" if pos else "neg"])
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("evalruns")
    data = _write_csv(d / "reviews.csv")
    common = ["--data", str(data), "--logdir", str(d / "runs"), "--batch-size", "32", "--max-length", "16",
              "--verbose", "0", "--no-export", "--attention-every", "0"]
    # the BiLSTM run also exercises the robustness remedies of train.py
    assert train_script.main(common + ["--run-name", "bilstm", "--max-steps", "40", "--augment", "noise",
                                       "--adversarial-training"]) == 0
    assert train_script.main(common + ["--run-name", "tf", "--model", "transformer", "--max-steps", "6"]) == 0
    return d


def test_cli_writes_every_section(runs, capsys):
    run = str(runs / "runs" / "bilstm")
    assert evaluate.main([run, "--samples", "16", "--second-run", run, "--quiet"]) == 0
    out = os.path.join(run, "evaluation")
    with open(os.path.join(out, "report.json")) as f:
        report = json.load(f)
    sections = report["sections"]
    assert set(sections) == set(SECTIONS)
    for name in SECTIONS:
        if name in ("transformer", "alignment"):  # Transformer / seq2seq only
            assert "skipped" in sections[name]
        else:
            assert "skipped" not in sections[name], (name, sections[name])
            assert name in report["timing_seconds"]
    assert report["samples"] == 16 and report["config"]["augment"] == "noise"
    assert sections["seeds"]["jsd"]["mean"] == pytest.approx(0.0, abs=1e-9)  # same run twice
    md = open(os.path.join(out, "report.md")).read()
    for heading in ("Jain & Wallace", "Permutation", "Adversarial attention", "Uniform attention",
                    "Serrano & Smith", "ERASER", "Attacks", "Random noise", "Attention stability",
                    "sensitivity_max", "seed floor"):
        assert heading in md, heading
    # The report shows what this run computed (the literature's numbers are printed next to it
    # whatever the code computes, so looking for them proved nothing).
    from attn_tf.evaluation.report import _pm

    tau = sections["agreement"]["kendall_tau"]["attn_grad"]
    assert -1.0 <= tau["mean"] <= 1.0 and tau["std"] >= 0.0
    assert "| attention vs gradient | %s |" % _pm(tau["mean"], tau["std"]) in md
    assert os.path.isfile(os.path.join(out, "plots", "eraser.png"))
    events = [f for f in os.listdir(out) if f.startswith("events.out.tfevents")]
    assert len(events) == 2
    tags = report["tensorboard"]["attention_tags"]
    assert any(t.startswith("faithfulness/adversarial_") for t in tags)
    assert any(t.startswith("robustness/deepwordbug_") for t in tags) == (
        sections["deepwordbug"]["counts"]["succeeded"] > 0)
    assert "Report:" in capsys.readouterr().out


def test_cli_transformer_sections_and_compare(runs, tmp_path):
    run = str(runs / "runs" / "tf")
    other = str(runs / "runs" / "bilstm")
    if not os.path.isfile(os.path.join(other, "evaluation", "report.json")):
        assert evaluate.main([other, "--samples", "8", "--sections", "agreement", "--quiet"]) == 0
    out = str(tmp_path / "tf_eval")
    assert evaluate.main([run, "--samples", "12", "--out", out, "--quiet", "--compare", other,
                          "--sections", "transformer,agreement", "permutation", "deepwordbug"]) == 0
    report = json.load(open(os.path.join(out, "report.json")))
    s = report["sections"]
    assert set(s) == {"transformer", "agreement", "permutation", "deepwordbug"}
    assert "skipped" in s["permutation"]  # needs pooling attention
    tr = s["transformer"]
    assert tr["num_layers"] == 2 and len(tr["blankout"]["rollout"]) == 2
    assert tr["flow_instances"] > 0 and tr["gradient"]["flow"][0] is not None
    assert "Compared with" in open(os.path.join(out, "report.md")).read()


def test_cli_bad_input_exits_2(tmp_path, capsys):
    assert evaluate.main([str(tmp_path / "missing")]) == 2
    assert "not a directory" in capsys.readouterr().err
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    assert evaluate.main([str(tmp_path / "half")]) == 2
    err = capsys.readouterr().err
    assert "missing vectorizer.json, model.keras" in err
    assert evaluate.main([str(tmp_path / "half"), "--sections", "bogus"]) == 2
    assert "unknown section" in capsys.readouterr().err
