"""The ops a SavedModel's graphs use: the GPU/cuDNN check and model-server compatibility.

    python -m attn_tf.export.graph_ops SAVED_MODEL_DIR [...]

lists the ops (and the attrs their nodes set) of exported models and checks each against the op
registry of the TensorFlow (+ tensorflow-text) running it. Run it with an older TensorFlow to check
that a model exported with TF 2.21 can be served by a model server built on that version:

    python -m venv /tmp/tf220 && /tmp/tf220/bin/pip install tensorflow==2.20.0 tensorflow-text==2.20.0
    PYTHONPATH=. /tmp/tf220/bin/python -m attn_tf.export.graph_ops saved_models/*/[0-9]*

(only tensorflow and tensorflow_text are imported). VERIFIED_WITH_TF_2_20 below lists the ops
checked that way (README.md, section 'Serve with TF Serving'); tests/export fails when an export uses an op outside it.
"""

import os
import sys

# Every op of the bilstm_attention and transformer exports: registered, with every attr the nodes
# set, in TensorFlow 2.20.0 + tensorflow-text 2.20.0 (what TF Serving 2.20.0 links); the exports
# also load and run there (tf.saved_model.load and the TF1 loader of saved_model_cli). Re-checked
# for the predict / serving_default / attention exports (LogicalNot: the tokenizer's whitespace
# filter) on movie_reviews runs of both models, every signature run with both loaders.
VERIFIED_WITH_TF_2_20 = frozenset("""
AddV2 All ArgMax Assert AssignVariableOp BatchMatMulV2 BiasAdd BroadcastTo CaseFoldUTF8 Cast ConcatV2
Const Cumsum DisableCopyOnRead Einsum EnsureShape Equal ExpandDims Fill GatherV2 HashTableV2 Identity
If Less LessEqual LogicalAnd LogicalNot LogicalOr LookupTableFindV2 LookupTableImportV2 MatMul Max Maximum Mean
MergeV2Checkpoints Minimum Mul Neg NoOp NotEqual Pack Placeholder Prod RaggedGather RaggedRange
RaggedTensorToTensor Range ReadVariableOp RealDiv Relu Reshape RestoreV2 ReverseV2 Rsqrt SaveV2 Select
SelectV2 Shape ShardedFilename Sigmoid Softmax Split SquaredDifference Squeeze StatefulPartitionedCall
StatelessIf StaticRegexFullMatch StopGradient StridedSlice StringJoin StringLength Sub Sum Tanh
TensorListFromTensor TensorListGetItem TensorListReserve TensorListSetItem TensorListStack Tile
Transpose UnicodeDecodeWithOffsets UnicodeEncode UnicodeScriptTokenizeWithOffsets UnicodeTranscode
VarHandleOp VarIsInitializedOp Where While ZerosLike
""".split())


def _saved_model(export_dir):
    from tensorflow.core.protobuf import saved_model_pb2

    sm = saved_model_pb2.SavedModel()
    with open(os.path.join(export_dir, "saved_model.pb"), "rb") as f:
        sm.ParseFromString(f.read())
    return sm


def saved_model_op_attrs(export_dir):
    """{op type: set of attr names its nodes set} over every MetaGraph, functions included."""
    ops = {}
    for meta in _saved_model(export_dir).meta_graphs:
        functions = {fn.signature.name for fn in meta.graph_def.library.function}
        nodes = list(meta.graph_def.node)
        for fn in meta.graph_def.library.function:
            nodes.extend(fn.node_def)
        for n in nodes:
            if n.op in functions:  # a call of a library function, not an op
                continue
            ops.setdefault(n.op, set()).update(a for a in n.attr if not a.startswith("_"))
    return ops


def saved_model_ops(export_dir):
    """Set of op type names in every MetaGraph of export_dir, functions included."""
    return set(saved_model_op_attrs(export_dir))


def gpu_only_ops(ops):
    """The cuDNN-only ops among `ops` (these have no CPU kernel)."""
    return sorted(op for op in ops if op.startswith("Cudnn"))


def registry_problems(op_attrs):
    """Ops unknown to the running TensorFlow's registry, or nodes setting attrs its op defs lack."""
    import tensorflow  # noqa: F401
    import tensorflow_text  # noqa: F401  (registers the TF Text ops)
    from tensorflow.python.framework import op_def_registry

    problems = []
    for op, attrs in sorted(op_attrs.items()):
        op_def = op_def_registry.get(op)
        if op_def is None:
            problems.append("%s: not registered" % op)
            continue
        unknown = sorted(set(attrs) - {a.name for a in op_def.attr})
        if unknown:
            problems.append("%s: unknown attrs %s" % (op, ", ".join(unknown)))
    return problems


def main(argv=None):
    dirs = sys.argv[1:] if argv is None else argv
    if not dirs:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    import tensorflow as tf
    import tensorflow_text

    op_attrs = {}
    for d in dirs:
        for op, attrs in saved_model_op_attrs(d).items():
            op_attrs.setdefault(op, set()).update(attrs)
    problems = registry_problems(op_attrs)
    print("TensorFlow %s, tensorflow-text %s: %d ops in %d SavedModel(s)" % (
        tf.__version__, tensorflow_text.__version__, len(op_attrs), len(dirs)))
    print(" ".join(sorted(op_attrs)))
    new = sorted(set(op_attrs) - VERIFIED_WITH_TF_2_20)
    if new:
        print("not in VERIFIED_WITH_TF_2_20: %s" % " ".join(new))
    print("problems: %s" % ("; ".join(problems) if problems else "none"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
