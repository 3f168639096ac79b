"""TensorBoard entry point. Keep it import-light.

TensorBoard imports entry-point modules at start-up without catching errors,
so an import failure here would kill `tensorboard`. `load()` is guarded, so
heavy imports happen there.
"""

from tensorboard.plugins import base_plugin


class AttentionLoader(base_plugin.TBLoader):
    """Loads the Attention tab."""

    def load(self, context):
        try:
            from tb_plugin.plugin import AttentionPlugin
        except ImportError:
            # The tab itself is built in a later change; until then the data
            # is still written and readable through the data providers.
            return None
        return AttentionPlugin(context)
