"""Attention faithfulness and robustness evaluation.

Modules (one job each):
  adapter      batched, compiled access to a classifier's attention and gradients
  metrics      JSD, TVD, top-k overlap, Kendall/Spearman helpers
  importance   gradient, integrated gradients, leave-one-out importances
  faithfulness agreement taus, permutation, adversarial attention, uniform gap
  erasure      erasure at the attention layer (S&S) and ERASER deletion metrics
  transformer_attribution  raw / rollout / flow vs blank-out and gradient
  perturb      random character and word noise with token alignment
  attacks      DeepWordBug- and HotFlip-style attacks with budgets
  stability    attention stability under perturbation, seed floor, sensitivity
  runner       loads a run and runs the sections
  report       report.json, report.md, plots, TensorBoard summaries
  compare      several evaluations side by side (--compare RUN_A RUN_B ...)
CLI: python -m attn_tf.evaluate RUN_DIR (see attn_tf/evaluate.py).
"""
