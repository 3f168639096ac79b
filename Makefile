# Two entry points (see README): `make train` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
ARGS ?=
PYTEST_ARGS ?=

.PHONY: setup train test browser data bench clean

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

setup: $(VENV)/.installed

# Fetches (and sha256-checks) the default dataset into ~/.cache/attn_tf
# (or $$ATTN_TF_CACHE); train.py would do it too, this just shows it.
data: setup
	$(PY) -m attn_tf.data fetch movie_reviews

train: data
	$(PY) train.py $(ARGS)

# Headless Chromium for the browser tests; they skip, saying why, without it.
browser:
	@command -v chromium >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) ; } || \
	  echo "note: chromium not installed (needs root: apt-get install chromium); browser tests will be skipped"

test: setup browser data
	$(PY) -m pytest -q $(PYTEST_ARGS)

bench: setup
	$(PY) bench/train_throughput.py
	$(PY) bench/plugin_latency.py
	$(PY) bench/serving_latency.py
	$(PY) bench/evaluation_time.py
	$(PY) bench/decode_throughput.py

clean:
	rm -rf $(VENV) build *.egg-info
