"""Training: the CLI behind train.py, callbacks that log attention, resume logic."""
