"""Published reference numbers shown beside ours (from notes/interpretability.md).

Only figures checked against the papers' code, results files or docs are listed.
"""

JW_TAU = {
    # J&W 2019, BiLSTM + additive attention: tau attn-grad / attn-LOO / grad-LOO (mean, std where given)
    "SST": {"accuracy": 0.808, "attn_grad": (0.351, 0.211), "attn_loo": (0.291, 0.191), "grad_loo": (0.656, 0.163)},
    "IMDB": {"accuracy": 0.898, "attn_grad": (0.437, None), "attn_loo": (0.341, None), "grad_loo": (0.517, None)},
    "AG News": {"accuracy": 0.958, "attn_grad": (0.389, None), "attn_loo": (0.367, None), "grad_loo": (0.612, None)},
}
JW_SOURCE = "Jain & Wallace 2019 (their results files), BiLSTM + additive attention"

AZ_SPEARMAN = {
    # Abnar & Zuidema 2020: Spearman rho raw / rollout / flow
    "blankout": {"setting": "6-layer Transformer, subject-verb agreement, layer 6", "raw": 0.29, "rollout": 0.71,
                 "flow": 0.70},
    "gradient": {"setting": "6-layer Transformer, subject-verb agreement, layer 6", "raw": 0.46, "rollout": 0.54,
                 "flow": 0.61},
    "gradient_distilbert": {"setting": "DistilBERT SST-2, layer 6", "raw": 0.09, "rollout": 0.13, "flow": 0.14},
}

TEXTATTACK_DEEPWORDBUG = {
    "setting": "TextAttack docs: LSTM on Rotten Tomatoes (= MR), DeepWordBug, 200 examples",
    "clean_accuracy": 0.785,
    "accuracy_under_attack": 0.145,
    "attack_success_rate": 0.815,
    "perturbed_word_pct": 15.5,
    "avg_queries": 32.7,
}
TEXTATTACK_ZOO_MR_ACCURACY = 0.781  # TextAttack model zoo, BiLSTM (GloVe), MR clean accuracy
PRUTHI = "Pruthi et al. 2019, BERT sentiment, one adversarial character: 90.3 -> 45.8 -> 75 (with defence)"
