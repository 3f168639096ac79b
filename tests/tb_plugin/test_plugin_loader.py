"""The entry point: cheap to import, loads the plugin."""

import configparser
import os
import subprocess
import sys

from tensorboard.plugins import base_plugin

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_loader_import_is_light():
    code = (
        "import sys; import tb_plugin.loader; "
        "heavy = [m for m in ('tensorflow', 'tb_plugin.plugin', 'scipy', 'keras') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", "entry point imported: %s" % out.stdout


def test_loader_returns_the_plugin():
    from tb_plugin.loader import AttentionLoader
    from tb_plugin.plugin import AttentionPlugin

    context = base_plugin.TBContext(data_provider=None, sampling_hints={})
    plugin = AttentionLoader().load(context)
    assert isinstance(plugin, AttentionPlugin)
    assert plugin.plugin_name == "attention"


def test_entry_point_declared():
    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(ROOT, "setup.cfg"))
    entry = cfg["options.entry_points"]["tensorboard_plugins"]
    assert "attention = tb_plugin.loader:AttentionLoader" in entry
