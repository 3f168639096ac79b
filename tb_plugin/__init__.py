"""TensorBoard "Attention" plugin and the summary format it reads.

Importing this package must stay cheap: TensorBoard imports the entry point
(`tb_plugin.loader`) at start-up without a guard, so nothing here may import
TensorFlow, NumPy-heavy code or the plugin itself.
"""
