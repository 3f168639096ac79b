"""python -m attn_tf.evaluate --compare: variants side by side from their report.json files."""

import json
import os

from attn_tf import evaluate
from attn_tf.evaluation import compare


def _report(tmp_path, name, tau, comp, lstm=None):
    run = tmp_path / name
    (run / "evaluation").mkdir(parents=True)
    report = {
        "run_dir": str(run), "samples": 500, "sample_accuracy": 0.77, "test_accuracy_full": 0.78,
        "attention_entropy_ratio": 0.6,
        "config": {"lstm": lstm, "attention_normalizer": "softmax"},
        "sections": {
            "agreement": {"kendall_tau": {"attn_grad": {"mean": tau}, "attn_loo": {"mean": tau / 2}}},
            "eraser": {"rankings": {"attention": {"aopc_comprehensiveness": comp},
                                    "random": {"aopc_comprehensiveness": 0.04}}},
        },
        "timing_seconds": {},
    }
    with open(run / "evaluation" / "report.json", "w") as f:
        json.dump(report, f)
    return str(run)


def test_compare_writes_one_column_and_one_plot_per_variant(tmp_path, capsys):
    a = _report(tmp_path, "plain", 0.06, 0.03)
    b = _report(tmp_path, "ortho", 0.41, 0.22, lstm="orthogonal")
    out = str(tmp_path / "cmp")
    assert evaluate.main(["--compare", a, b, "--out", out, "--quiet"]) == 0
    md = open(os.path.join(out, "report.md")).read()
    assert "| figure | plain | ortho (lstm=orthogonal) |" in md
    assert "| tau attention vs gradient | 0.060 | 0.410 |" in md
    assert "| AOPC comprehensiveness: attention | 0.030 | 0.220 |" in md
    assert "| attention entropy / uniform entropy | 0.600 | 0.600 |" in md
    # Rows no variant has are left out rather than shown empty.
    assert "DeepWordBug" not in md
    data = json.load(open(os.path.join(out, "compare.json")))
    assert [v["label"] for v in data["variants"]] == ["plain", "ortho (lstm=orthogonal)"]
    from attn_tf.evaluation import plots

    if plots.available():
        pngs = sorted(os.listdir(os.path.join(out, "plots")))
        assert len(pngs) == 2 and md.count("![") == 2


def test_compare_bad_input_exits_2_with_a_message(tmp_path, capsys):
    a = _report(tmp_path, "plain", 0.06, 0.03)
    assert evaluate.main(["--compare", a, str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert "no report.json" in err and "python -m attn_tf.evaluate" in err
    assert evaluate.main(["--compare", a]) == 2
    assert "at least two" in capsys.readouterr().err
    assert evaluate.main([]) == 2
    assert "RUN_DIR" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert evaluate.main(["--compare", a, str(bad)]) == 2
    assert "not a readable report.json" in capsys.readouterr().err
    assert compare.label({"run_dir": "/x/r/", "config": {"tying_weight": 0.5}}) == "r (tying_weight=0.5)"
