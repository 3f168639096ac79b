"""Reading a training run directory for export (no TensorFlow import until a model is loaded)."""

import os
import re

from attn_tf import run_dir as rd
from attn_tf.errors import UsageError

# File names: attn_tf.run_dir owns them. CLASS_NAMES is optional: a JSON list
# of class names (index = class id); a run's config.json may carry the same
# list under "class_names" (see classifier.class_names_of).
CONFIG, MODEL, VECTORIZER, CLASS_NAMES = rd.CONFIG, rd.MODEL, rd.VECTORIZER, rd.CLASS_NAMES


class ExportError(UsageError):
    """A run directory that cannot be exported; the message says what is missing and what to do.

    `python -m attn_tf.export` and train.py print it and exit 2.
    """


def safe_name(name):
    """A model name usable as a directory and a TF Serving model name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)).strip("._") or "model"


class RunDir:
    """A run directory made by train.py: its config and the paths of its files."""

    def __init__(self, path):
        self.path = os.fspath(path)
        if not os.path.isdir(self.path):
            raise ExportError("%s is not a directory; pass a run directory made by train.py "
                              "(runs/<model>-<dataset>-<timestamp>)" % self.path)
        try:
            self.config = rd.RunDir(self.path).load_config()
        except ExportError:
            raise
        except UsageError as e:
            raise ExportError(str(e)) from None

    @property
    def kind(self):
        return self.config["model"]

    def file(self, name):
        return os.path.join(self.path, name)

    def require(self, *names):
        """Raises ExportError naming every missing file."""
        missing = [n for n in names if not os.path.isfile(self.file(n))]
        if missing:
            raise ExportError(
                "run directory %s is incomplete: missing %s. The run has not finished (train.py writes "
                "%s at the end of training); finish it with `python train.py --resume %s`, or export a "
                "finished run." % (self.path, ", ".join(missing), MODEL, self.path))

    def dataset_name(self):
        """The named dataset, or the --data file's stem ("data" if neither is known)."""
        dataset = self.config.get("dataset")
        if not dataset and self.config.get("data"):
            dataset = os.path.splitext(os.path.basename(str(self.config["data"])))[0]
        return dataset or "data"

    def default_name(self):
        """<model>-<dataset> (`dataset_name`)."""
        return safe_name("%s-%s" % (self.kind, self.dataset_name()))

    def load_keras_model(self):
        """The trained model from model.keras, set up for CPU-portable tracing.

        Every recurrent layer gets use_cudnn=False, so tracing never picks the
        cuDNN kernel (CudnnRNNV3), even when a GPU is visible: the SavedModel
        then runs on CPU-only model servers (keras-team/keras#18504).
        """
        import keras

        import attn_tf.layers  # noqa: F401  (registers the custom layers)
        import attn_tf.models  # noqa: F401

        try:
            model = keras.saving.load_model(self.file(MODEL), compile=False)
        except Exception as e:  # noqa: BLE001 - any load failure is a user-facing problem here
            raise ExportError("cannot load %s (%s: %s); the file is damaged or was written by another "
                              "version of attn_tf" % (self.file(MODEL), type(e).__name__, e)) from e
        disable_cudnn(model)
        return model


def disable_cudnn(model):
    """Sets use_cudnn=False on every LSTM/GRU in `model` (nested and Bidirectional included)."""
    seen, stack, changed = set(), [model], 0
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        if hasattr(layer, "use_cudnn"):
            layer.use_cudnn = False
            changed += 1
        for attr in ("forward_layer", "backward_layer", "layer"):
            sub = getattr(layer, attr, None)
            if sub is not None and hasattr(sub, "name"):
                stack.append(sub)
        for sub in getattr(layer, "_layers", None) or ():
            stack.append(sub)
        try:
            stack.extend(layer._flatten_layers(include_self=False, recursive=False))
        except (AttributeError, TypeError):
            pass
    return changed
