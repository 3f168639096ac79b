"""The data of a run, from its configuration (the --dataset / --data flags saved in config.json).

    load_classification_data(config) -> TextClassificationData
    load_seq2seq_data(config)        -> the seq2seq pairs (attn_tf.data.seq2seq_datasets)

Training, evaluation and export all load a run's data this way, so the rule
"a named dataset, or the user's file with its column names, split by the
run's seed" has one owner, below all three.
"""


def load_classification_data(config):
    from attn_tf.data.datasets import load_dataset
    from attn_tf.data.user_data import load_user_data

    if config.get("data"):
        return load_user_data(config["data"], text_column=config.get("text_column", "text"),
                              label_column=config.get("label_column", "label"), seed=config["seed"])
    return load_dataset(config["dataset"], seed=config["seed"])


def load_seq2seq_data(config):
    from attn_tf.data.seq2seq_datasets import load_seq2seq_dataset, load_seq2seq_user_data

    if config.get("data"):
        return load_seq2seq_user_data(config["data"], seed=config["seed"])
    return load_seq2seq_dataset(config["dataset"], seed=config["seed"],
                                phrases_per_epoch=config.get("phrases_per_epoch"))
