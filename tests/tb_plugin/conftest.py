"""Fixtures for the Attention plugin tests (helpers in attention_logdirs.py)."""

import pytest

from attention_logdirs import (
    ALL_TAGS,
    Logdir,
    make_app,
    python_provider,
    rust_provider,
    wait_for_data,
    write_logdir,
)
from tb_plugin import metadata


@pytest.fixture(scope="session")
def logdir(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("attention_logdir"))
    return Logdir(root, write_logdir(root))


@pytest.fixture(scope="session", params=["python", "rust"])
def provider(request, logdir):
    """(name, data provider) for both readers."""
    if request.param == "python":
        dp, ingester = python_provider(logdir.path)
    else:
        dp, ingester = rust_provider(logdir.path)
    wait_for_data(dp, ALL_TAGS)
    yield request.param, dp
    if ingester is not None:
        # `--die-after-stdin`: closing its stdin stops the data server.
        handle = getattr(ingester, "_stdin_handle", None)
        if handle is not None:
            handle.close()


@pytest.fixture(scope="session")
def app(provider):
    """WSGI app with `--samples_per_plugin=attention=0` (every step)."""
    return make_app(provider[1], {metadata.PLUGIN_NAME: 0})[0]


@pytest.fixture(scope="session")
def default_app(provider):
    """WSGI app with the default sampling (10 steps per series)."""
    return make_app(provider[1])[0]


@pytest.fixture
def client(app):
    from werkzeug.test import Client

    return Client(app)


@pytest.fixture
def default_client(default_app):
    from werkzeug.test import Client

    return Client(default_app)
