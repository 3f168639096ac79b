#!/usr/bin/env python
"""Screenshots of a real MiniLM probe in the Attention tab (docs/img/minilm_probe_*.png).

Runs `python -m attn_tf.probe --pretrained minilm` on a few sentences into a
temporary logdir, starts a real `tensorboard` on it and drives headless
Chromium through the tab's heatmaps and head view. Unlike
scripts/screenshots.py (synthetic logdir, for the docs of every view), these
pictures are what a new user sees for the pretrained model.

    python scripts/minilm_probe_screenshots.py [--out docs/img]
"""

import argparse
import os
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "scripts"))

from screenshots import CHROMIUM, CHROMIUM_ARGS, Shooter, wait_for_runs  # noqa: E402
from tb_plugin.local_tensorboard import start_tensorboard  # noqa: E402

TEXTS = ["The film's quiet, patient storytelling pays off in a genuinely moving final act.",
         "A man is eating a piece of bread."]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=os.path.join(REPO, "docs", "img"))
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as logdir:
        cmd = [sys.executable, "-m", "attn_tf.probe", "--pretrained", "minilm", "--logdir", logdir,
               "--run-name", "probe-minilm"]
        for t in TEXTS:
            cmd += ["--text", t]
        subprocess.run(cmd, check=True, cwd=REPO)
        proc, base = start_tensorboard(logdir)
        try:
            wait_for_runs(base, ["probe-minilm"])
            from playwright.sync_api import sync_playwright

            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                try:
                    s = Shooter(browser, base, args.out)
                    s.run("probe-minilm")
                    s.shot("minilm_probe_heatmaps.png")
                    s.view("headview")
                    s.shot("minilm_probe_head_view.png")
                finally:
                    browser.close()
        finally:
            proc.kill()


if __name__ == "__main__":
    main()
