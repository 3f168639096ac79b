"""A local `tensorboard` process for our tools (bench/plugin_latency.py, scripts/screenshots.py).

Started as a user would start it (`python -m tensorboard.main`, the plugin
found through its entry point), on a free port, with every attention step
kept (`--samples_per_plugin=attention=0`).
"""

import os
import queue
import re
import subprocess
import sys
import threading
import time


def start_tensorboard(logdir, timeout=120):
    """-> (process, base URL "http://127.0.0.1:PORT") once TensorBoard says it is serving."""
    argv = [sys.executable, "-m", "tensorboard.main", "--logdir", logdir, "--port", "0",
            "--host", "127.0.0.1", "--samples_per_plugin=attention=0"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    lines = queue.Queue()
    # TensorBoard prints its address on stderr; a thread drains it so the pipe never fills.
    threading.Thread(target=lambda: [lines.put(l) for l in proc.stderr], daemon=True).start()
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            if proc.poll() is not None:
                raise RuntimeError("tensorboard exited with %s" % proc.returncode)
            continue
        m = re.search(r"TensorBoard \S+ at http://127\.0\.0\.1:(\d+)/", line)
        if m:
            return proc, "http://127.0.0.1:%s" % m.group(1)
    proc.kill()
    raise RuntimeError("tensorboard did not start in %d s" % timeout)
