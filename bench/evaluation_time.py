#!/usr/bin/env python
"""Wall time of the full evaluation suite on 500 test examples of a real run.

Target (issue "evaluation"): <= 10 minutes on 2 CPU cores for --samples 500.

    python bench/evaluation_time.py [RUN_DIR] [--samples 500] [--second-run RUN_DIR2]

Without RUN_DIR the newest plain (no augmentation) bilstm_attention
movie_reviews run under runs/ with a model.keras is used (seed 0 preferred); if there is none, one is trained first with
`python train.py --no-export` (the default BiLSTM on movie_reviews; minutes).
Reports the wall time and the process CPU time of loading, of every section
and of writing the report (to a temporary directory, so the run's own
evaluation/ is left alone), the machine's cores and its load average (the
machine may be shared: CPU time is the steadier figure).
"""

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

TARGET_SECONDS = 600


def find_run(logdir):
    cands = []
    for cfg in glob.glob(os.path.join(logdir, "*", "config.json")):
        d = os.path.dirname(cfg)
        try:
            c = json.load(open(cfg))
        except (OSError, ValueError):
            continue
        if (c.get("model") == "bilstm_attention" and c.get("dataset") == "movie_reviews" and not c.get("data")
                and c.get("augment", "none") == "none" and not c.get("adversarial_training")
                and os.path.isfile(os.path.join(d, "model.keras"))):
            cands.append((c.get("seed", 0) == 0, os.path.getmtime(os.path.join(d, "model.keras")), d))
    return max(cands)[2] if cands else None  # newest seed-0 run, else the newest


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir", nargs="?", default=None)
    p.add_argument("--samples", type=int, default=500)
    p.add_argument("--second-run", default=None)
    p.add_argument("--logdir", default=os.path.join(ROOT, "runs"))
    args = p.parse_args(argv)

    run_dir = args.run_dir or find_run(args.logdir)
    if run_dir is None:
        print("No movie_reviews BiLSTM run under %s: training one (python train.py --no-export) ..." % args.logdir)
        subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), "--no-export", "--verbose", "2",
                        "--logdir", args.logdir], check=True, cwd=ROOT)
        run_dir = find_run(args.logdir)

    from attn_tf.evaluation import report, runner

    t0, c0 = time.time(), time.process_time()
    run = runner.load_run(run_dir)
    second = runner.load_run(args.second_run) if args.second_run else None
    load_s, load_cpu = time.time() - t0, time.process_time() - c0
    t1, c1 = time.time(), time.process_time()
    results, art = runner.evaluate(run, samples=args.samples, second_run=second, log=lambda m: None)
    eval_s, eval_cpu = time.time() - t1, time.process_time() - c1
    t2 = time.time()
    with tempfile.TemporaryDirectory() as out:
        report.write_report(out, results, art)
    report_s = time.time() - t2
    total = time.time() - t0
    load = os.getloadavg()
    print("Run: %s (%d examples, %.1f tokens on average, accuracy %.3f)" % (
        run_dir, results["samples"], results["mean_tokens"], results["sample_accuracy"]))
    print("Machine: %d CPU cores visible, load average %.1f / %.1f / %.1f" % ((os.cpu_count() or 0,) + load))
    print("")
    print("| step | wall s |")
    print("|---|---|")
    print("| load run (model, vectorizer, data) | %.1f |" % load_s)
    for name, s in results["timing_seconds"].items():
        if name != "total":
            print("| %s | %.1f |" % (name, s))
    print("| report (markdown, plots, TensorBoard) | %.1f |" % report_s)
    print("| **total** | **%.1f** |" % total)
    print("")
    print("Evaluation sections: %.1f s wall, %.1f s CPU (process, all threads); loading: %.1f s wall, %.1f s CPU."
          % (eval_s, eval_cpu, load_s, load_cpu))
    print("Target <= %d s for %d examples: %s" % (TARGET_SECONDS, args.samples,
                                                  "met" if total <= TARGET_SECONDS else "MISSED"))
    return 0 if total <= TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
