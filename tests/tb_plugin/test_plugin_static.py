"""/index.js and /static/<path>: MIME types and path traversal."""

import os

import pytest

from tb_plugin import static_files

BASE = "/data/plugin/attention"
SECRET = "TOP-SECRET-CONTENT"


@pytest.fixture
def static_dir(tmp_path, monkeypatch):
    root = tmp_path / "pkg"
    static = root / "static"
    (static / "lib").mkdir(parents=True)
    (static / "index.js").write_text("export function render() {}\n")
    (static / "lib" / "style.css").write_text("body { color: red }\n")
    (static / "lib" / "icon.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (static / "lib" / "data.json").write_text('{"a": 1}')
    (static / "lib" / "pic.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (static / "notes.txt").write_text("not served")
    (root / "secret.js").write_text(SECRET)
    (root / "secret.txt").write_text(SECRET)
    os.symlink(str(root / "secret.js"), str(static / "link.js"))
    monkeypatch.setattr(static_files, "STATIC_DIR", str(static))
    return static


def test_index_js(client, static_dir):
    r = client.get(BASE + "/index.js")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/javascript")
    assert b"export function render" in r.get_data()


@pytest.mark.parametrize(
    "path, mime",
    [
        ("lib/style.css", "text/css"),
        ("lib/icon.svg", "image/svg+xml"),
        ("lib/data.json", "application/json"),
        ("lib/pic.png", "image/png"),
        ("index.js", "text/javascript"),
    ],
)
def test_static_files(client, static_dir, path, mime):
    r = client.get(BASE + "/static/" + path)
    assert r.status_code == 200
    assert r.headers["Content-Type"].split(";")[0] == mime
    assert r.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    "path",
    [
        "../secret.js",
        "%2e%2e/secret.js",
        "%2e%2e%2fsecret.js",
        "%2E%2E%2Fsecret.js",
        "..%2fsecret.js",
        "..%5csecret.js",
        "..\\secret.js",
        "lib/../../secret.js",
        "lib/%2e%2e/%2e%2e/secret.js",
        "%252e%252e%252fsecret.js",
        "/" + "etc/passwd",
        "%2fetc%2fpasswd",
        "C:/Windows/win.ini",
        "link.js",  # symlink out of static/
        ".hidden.js",
        "lib//style.css",
        "",
    ],
)
def test_static_traversal_refused(client, static_dir, path):
    r = client.get(BASE + "/static/" + path)
    assert r.status_code in (400, 404), (path, r.status_code)
    assert SECRET.encode() not in r.get_data()
    assert b"root:" not in r.get_data()


def test_static_missing_and_unknown_types(client, static_dir):
    assert client.get(BASE + "/static/nope.js").status_code == 404
    assert client.get(BASE + "/static/notes.txt").status_code == 404  # type not served


def test_missing_static_dir_is_404(client, tmp_path, monkeypatch):
    monkeypatch.setattr(static_files, "STATIC_DIR", str(tmp_path / "absent"))
    assert client.get(BASE + "/index.js").status_code == 404
    assert client.get(BASE + "/static/lib/app.js").status_code == 404


def test_resolve_directly(static_dir):
    assert static_files.resolve("index.js")[1] == "text/javascript"
    for bad in ("../secret.js", "/etc/passwd", "a\\b.js", "lib/../index.js", "link.js"):
        with pytest.raises(static_files.UnsafePathError):
            static_files.resolve(bad)


def test_real_frontend_files_are_served(client):
    """Every servable file of the real tb_plugin/static/ answers 200 with its MIME type.

    Also catches file names the traversal guard refuses (allowed per component:
    letters, digits, '_', '-', '.', not starting with '.').
    """
    root = static_files.STATIC_DIR
    if not os.path.isdir(root):
        pytest.skip("tb_plugin/static/ not there yet")
    checked = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            mime = static_files.MIME_TYPES.get(os.path.splitext(name)[1].lower())
            if mime is None or name.startswith("."):
                continue
            rel = os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/")
            r = client.get(BASE + "/static/" + rel)
            assert r.status_code == 200, (rel, r.get_data(as_text=True)[:200])
            assert r.headers["Content-Type"].split(";")[0] == mime
            checked += 1
    if os.path.isfile(os.path.join(root, "index.js")):
        r = client.get(BASE + "/index.js")
        assert r.status_code == 200
        assert r.headers["Content-Type"].startswith("text/javascript")
    if not checked:
        pytest.skip("no servable file in tb_plugin/static/ yet")
