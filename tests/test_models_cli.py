"""`trackstudio models` end to end against a local HTTP server on 127.0.0.1 (never the internet)."""
from __future__ import annotations

import functools
import hashlib
import http.server
import socket
import threading

import pytest
import torch

from trackstudio.app import models_cli
from trackstudio.app.cli import main
from trackstudio.trackers import registry
from trackstudio.trackers.base import Tracker
from trackstudio.trackers.checkpoints import OFFICIAL_WEIGHTS, WeightsSpec

PAYLOAD = bytes(range(256)) * 2048  # 512 KiB


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("TRACKSTUDIO_CACHE", str(folder))
    return folder


@pytest.fixture
def served(tmp_path):
    """A folder served over HTTP on 127.0.0.1; yields (folder, base URL)."""
    folder = tmp_path / "www"
    folder.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _register_test_tracker(monkeypatch, weights: WeightsSpec, name: str = "test-net") -> None:
    """A registered mask tracker that loads `weights` (removed again after the test)."""
    registry.specs()  # load the built-in trackers first so they do not overwrite the patch
    spec = registry.TrackerSpec(name, "mask", Tracker, "test tracker", -100, (weights,), experimental=True)
    monkeypatch.setitem(registry._REGISTRY, name, spec)


def _weights(url: str | None, payload: bytes = PAYLOAD, sha256: str | None = "auto") -> WeightsSpec:
    digest = hashlib.sha256(payload).hexdigest() if sha256 == "auto" else sha256
    return WeightsSpec("test_net.pt", url, digest, len(payload) if sha256 else None, "CC0-1.0", "test weights")


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/test_net.pt"


def _row(name: str) -> models_cli.WeightsRow:
    return next(row for row in models_cli.weights_table() if row.tracker == name)


def test_list_shows_every_tracker_with_its_weights(cache, capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for spec in registry.specs():
        assert spec.name in out
    for row in models_cli.weights_table():
        if row.weights is not None and row.weights.url:
            assert row.weights.url in out and row.licence in out and row.status == "missing"
            assert models_cli.format_size(row.weights.size_bytes) in out
    assert "built-in" in out and str(cache) in out
    defaults = {row.kind: row.tracker for row in models_cli.weights_table() if row.default}
    assert defaults == {kind: registry.default_name(kind) for kind in defaults}


def test_download_with_progress_and_sha256_then_remove(cache, served, monkeypatch, capsys):
    folder, base = served
    (folder / "test_net.pt").write_bytes(PAYLOAD)
    _register_test_tracker(monkeypatch, _weights(f"{base}/test_net.pt"))
    assert _row("test-net").status == "missing"
    assert models_cli.missing_weights("test-net")

    assert main(["models", "download", "test-net"]) == 0
    captured = capsys.readouterr()
    assert (cache / "test_net.pt").read_bytes() == PAYLOAD
    assert "downloaded and verified" in captured.out
    assert "test_net.pt" in captured.err and "100%" in captured.err  # the tqdm bar
    assert _row("test-net").status == "cached" and not models_cli.missing_weights("test-net")

    assert main(["models", "download", "test_net.pt"]) == 0  # by file name; nothing fetched again
    assert "already in the cache" in capsys.readouterr().out

    assert main(["models", "remove", "test-net"]) == 0
    assert "removed" in capsys.readouterr().out
    assert not any(cache.iterdir())
    assert main(["models", "remove", "test-net"]) == 0
    assert "was not in" in capsys.readouterr().out


def test_damaged_download_is_refused(cache, served, monkeypatch, capsys):
    folder, base = served
    damaged = bytearray(PAYLOAD)
    damaged[1000] ^= 0xFF
    (folder / "test_net.pt").write_bytes(bytes(damaged))
    _register_test_tracker(monkeypatch, _weights(f"{base}/test_net.pt"))
    assert main(["models", "download", "test-net"]) == 2
    err = capsys.readouterr().err
    assert "sha256" in err and "damaged" in err and "Traceback" not in err
    assert not (cache / "test_net.pt").exists()


def test_offline_download_says_what_to_fetch_and_how_to_import(cache, monkeypatch, capsys):
    url = _closed_port_url()
    _register_test_tracker(monkeypatch, _weights(url))
    assert main(["models", "download", "test-net"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("trackstudio models: could not download test_net.pt")
    assert url in err and str(cache / "test_net.pt") in err and "trackstudio models import test_net.pt" in err


def test_import_checks_sha256(cache, tmp_path, monkeypatch, capsys):
    _register_test_tracker(monkeypatch, _weights(_closed_port_url()))
    wrong = tmp_path / "wrong.pt"
    wrong.write_bytes(PAYLOAD[::-1])
    assert main(["models", "import", "test-net", str(wrong)]) == 2
    assert "sha256" in capsys.readouterr().err
    assert not (cache / "test_net.pt").exists()

    right = tmp_path / "downloaded elsewhere.pt"
    right.write_bytes(PAYLOAD)
    assert main(["models", "import", "test-net", str(right)]) == 0
    assert (cache / "test_net.pt").read_bytes() == PAYLOAD
    assert "imported" in capsys.readouterr().out
    assert _row("test-net").status == "cached"

    assert main(["models", "import", "test-net", str(tmp_path / "absent.pt")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["models", "import", "test-net"]) == 2
    assert "needs the local file" in capsys.readouterr().err


def test_import_without_published_hash_must_load_as_a_checkpoint(cache, tmp_path, monkeypatch, capsys):
    _register_test_tracker(monkeypatch, _weights(None, sha256=None))
    assert _row("test-net").status == "missing (import)"
    assert main(["models", "download", "test-net"]) == 2
    assert "no download address" in capsys.readouterr().err

    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    assert main(["models", "import", "test-net", str(junk)]) == 2
    assert "not a readable PyTorch checkpoint" in capsys.readouterr().err

    good = tmp_path / "good.pt"
    torch.save({"net": {"w": torch.zeros(3)}}, good)
    assert main(["models", "import", "test-net", str(good)]) == 0
    assert (cache / "test_net.pt").read_bytes() == good.read_bytes()


def test_names_resolve_and_bad_names_are_one_line_errors(cache, capsys):
    key, weights = next(iter(OFFICIAL_WEIGHTS.items()))
    assert models_cli.find_weights(key) is weights
    assert models_cli.find_weights(weights.filename) is weights
    for row in models_cli.weights_table():
        if row.weights is not None:
            assert models_cli.find_weights(row.tracker) is row.weights

    builtin = next(row.tracker for row in models_cli.weights_table() if row.weights is None)
    assert main(["models", "download", builtin]) == 2
    assert "built in" in capsys.readouterr().err
    assert main(["models", "download", "no-such-tracker"]) == 2
    err = capsys.readouterr().err
    assert "no-such-tracker" in err and len(err.strip().splitlines()) == 1
    assert main(["models", "download"]) == 2
    assert main(["models", "list", "extra"]) == 2
    assert main(["models", "remove", "test_net.pt", "extra"]) == 2


def test_options_lists_each_option_with_its_default_as_set_takes_it(tmp_path, capsys):
    assert main(["models", "options", "lk"]) == 0
    lines = capsys.readouterr().out.split()
    assert lines == ["lk.return_attention=false", "lk.window=21", "lk.levels=3", "lk.fb_threshold=1.5"]
    # a line, edited, is what `track --set` takes
    from synthetic import moving_square_clip, write_frames

    from trackstudio.app.model import AnnotationStore, FrameState
    from trackstudio.app.model.formats import save_json
    from trackstudio.app.video import VideoInfo

    frames, boxes = moving_square_clip(num_frames=4)
    folder = write_frames(frames, tmp_path / "frames")
    store = AnnotationStore()
    store.set_state(store.add_object("point").obj_id, 0, FrameState(point=boxes[0][:2] + 6, keyframe=True))
    save_json(store, VideoInfo(str(folder), 4, 160, 120, 30.0), tmp_path / "p.json")
    assert main(["track", str(folder), "--prompts", str(tmp_path / "p.json"), "--out", str(tmp_path / "r.json"),
                 "--quiet", "--point-tracker", "lk", "--set", lines[1].replace("21", "15")]) == 0
    for bad in (["models", "options", "no-such-tracker"], ["models", "options"]):
        assert main(bad) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "lk" in err  # the trackers there are


def test_format_size():
    assert models_cli.format_size(None) == "?"
    assert models_cli.format_size(512) == "512 B"
    assert models_cli.format_size(156_008_466) == "156.0 MB"
    assert models_cli.format_size(2_500_000_000) == "2.5 GB"


def test_shipped_weights_are_listed_as_built_in(cache, tmp_path, monkeypatch, capsys):
    from trackstudio import resources

    monkeypatch.setattr(resources, "ROOT", tmp_path / "resources")
    monkeypatch.setitem(models_cli.SHIPPED_BY_TRACKER, "csrt", ("csrt_test.pt",))
    assert _row("csrt").status == "not installed" and "missing from this install" in _row("csrt").source
    weights = tmp_path / "resources" / "weights"
    weights.mkdir(parents=True)
    (weights / "csrt_test.pt").write_bytes(b"w" * 2000)
    (weights / "extra.pt").write_bytes(b"w" * 10)
    row = _row("csrt")
    assert row.status == "built-in" and row.weights_name == "csrt_test.pt" and row.size_bytes == 2000
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "csrt_test.pt" in out and "2.0 KB" in out and "also shipped: extra.pt (10 B)" in out
