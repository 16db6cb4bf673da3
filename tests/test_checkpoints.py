"""Checkpoint manager against a local HTTP server (never the internet): download, resume, verify, load."""
from __future__ import annotations

import hashlib
import http.server
import socket
import threading

import pytest
import torch

from trackstudio.trackers import checkpoints as ckpt
from trackstudio.trackers.checkpoints import (OFFICIAL_WEIGHTS, UNWRAP_KEYS, CheckpointError, WeightsSpec, cache_dir,
                                  import_checkpoint, is_cached, load_state_dict_file, remove_checkpoint,
                                  resolve_checkpoint)

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB: 16 read chunks of the size set below


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    monkeypatch.setattr(ckpt, "_CHUNK", 64 << 10)


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves PAYLOAD; the server's `mode` makes it misbehave: 'drop' (close half way),
    'ignore_range' (always send the whole file with 200) or '404'."""

    def do_GET(self):  # noqa: N802 (http.server's naming)
        server = self.server
        server.requests.append(self.headers.get("Range"))
        if server.mode == "404":
            self.send_error(404, "Not Found")
            return
        start = 0
        range_header = self.headers.get("Range")
        if range_header and server.mode != "ignore_range":
            start = int(range_header.removeprefix("bytes=").rstrip("-"))
        body = server.payload[start:]
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(server.payload) - 1}/{len(server.payload)}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if server.mode == "drop":
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):  # keep test output quiet
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.payload, httpd.mode, httpd.requests = PAYLOAD, "ok", []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/weights.pth"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _spec(url: str | None, payload: bytes = PAYLOAD, sha256: str | None = "auto") -> WeightsSpec:
    digest = hashlib.sha256(payload).hexdigest() if sha256 == "auto" else sha256
    return WeightsSpec("weights.pth", url, digest, len(payload), "test", "test weights")


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/weights.pth"


def test_download_reports_progress_and_verifies(server, tmp_path):
    calls = []
    path = resolve_checkpoint(_spec(server.url), cache_dir=tmp_path, progress=lambda d, t: calls.append((d, t)))
    assert path == tmp_path / "weights.pth"
    assert path.read_bytes() == PAYLOAD
    assert calls[0] == (0, len(PAYLOAD)) and calls[-1] == (len(PAYLOAD), len(PAYLOAD))
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert not (tmp_path / "weights.pth.part").exists()
    assert (tmp_path / "weights.pth.verified").exists()
    assert is_cached(_spec(server.url), tmp_path)


def test_tqdm_bar_by_default(server, tmp_path, capsys):
    resolve_checkpoint(_spec(server.url), cache_dir=tmp_path)
    assert "weights.pth" in capsys.readouterr().err


def test_interrupted_download_resumes_with_range(server, tmp_path):
    spec = _spec(server.url)
    server.mode = "drop"
    with pytest.raises(CheckpointError, match="resumes on the next try"):
        resolve_checkpoint(spec, cache_dir=tmp_path, progress=False)
    part = tmp_path / "weights.pth.part"
    assert part.stat().st_size == len(PAYLOAD) // 2
    assert not (tmp_path / "weights.pth").exists()

    server.mode = "ok"
    calls = []
    path = resolve_checkpoint(spec, cache_dir=tmp_path, progress=lambda d, t: calls.append(d))
    assert server.requests[-1] == f"bytes={len(PAYLOAD) // 2}-"
    assert calls[0] == len(PAYLOAD) // 2  # progress starts where the part left off
    assert path.read_bytes() == PAYLOAD and not part.exists()


def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    (tmp_path / "weights.pth.part").write_bytes(b"\xff" * 1000)  # would corrupt the file if appended to
    server.mode = "ignore_range"
    path = resolve_checkpoint(_spec(server.url), cache_dir=tmp_path, progress=False)
    assert server.requests == ["bytes=1000-"]
    assert path.read_bytes() == PAYLOAD


def test_sha256_mismatch_leaves_nothing_behind(server, tmp_path):
    spec = _spec(server.url, sha256="0" * 64)
    with pytest.raises(CheckpointError, match="sha256") as err:
        resolve_checkpoint(spec, cache_dir=tmp_path, progress=False)
    assert "deleted" in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_offline_error_says_what_to_fetch_and_where(tmp_path):
    url = _closed_port_url()
    with pytest.raises(CheckpointError) as err:
        resolve_checkpoint(_spec(url), cache_dir=tmp_path, progress=False)
    message = str(err.value)
    assert f"could not download weights.pth from {url}" in message
    assert str(tmp_path / "weights.pth") in message
    assert "--checkpoint TRACKER=PATH" in message
    assert not (tmp_path / "weights.pth").exists()


def test_http_error_is_reported(server, tmp_path):
    server.mode = "404"
    with pytest.raises(CheckpointError, match="HTTP 404"):
        resolve_checkpoint(_spec(server.url), cache_dir=tmp_path, progress=False)


def test_cached_file_is_hashed_once(server, tmp_path, monkeypatch):
    spec = _spec(server.url)
    resolve_checkpoint(spec, cache_dir=tmp_path, progress=False)
    server.mode = "404"  # from now on only the cache can answer

    def no_hashing(path):
        raise AssertionError(f"{path} was hashed again")

    monkeypatch.setattr(ckpt, "_sha256", no_hashing)
    assert resolve_checkpoint(spec, cache_dir=tmp_path, download=False) == tmp_path / "weights.pth"


def test_damaged_cache_file_is_fetched_again(server, tmp_path):
    spec = _spec(server.url)
    path = resolve_checkpoint(spec, cache_dir=tmp_path, progress=False)
    path.write_bytes(b"\x00" * len(PAYLOAD))  # same size, new content and mtime
    assert resolve_checkpoint(spec, cache_dir=tmp_path, progress=False).read_bytes() == PAYLOAD
    assert len(server.requests) == 2


def test_local_paths_are_used_as_they_are(tmp_path):
    local = tmp_path / "mine.pth"
    local.write_bytes(b"x")
    assert resolve_checkpoint(local) == local
    assert resolve_checkpoint(str(local)) == local
    with pytest.raises(CheckpointError, match="not found"):
        resolve_checkpoint(tmp_path / "missing.pth")
    with pytest.raises(CheckpointError, match="directory"):
        resolve_checkpoint(tmp_path)


def test_user_supplied_weights_explain_where_to_put_them(tmp_path):
    spec = OFFICIAL_WEIGHTS["siamfc_alexnet_e50"]
    with pytest.raises(CheckpointError) as err:
        resolve_checkpoint(spec, cache_dir=tmp_path)
    assert str(tmp_path / "siamfc_alexnet_e50.pth") in str(err.value)
    assert "github.com/huanglianghua/siamfc-pytorch" in str(err.value)


def test_official_name_resolves_through_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACKSTUDIO_CACHE", str(tmp_path))
    assert cache_dir() == tmp_path
    with pytest.raises(CheckpointError) as err:
        resolve_checkpoint("sam2.1_hiera_tiny", download=False)
    assert OFFICIAL_WEIGHTS["sam2.1_hiera_tiny"].url in str(err.value)
    assert str(tmp_path / "sam2.1_hiera_tiny.pt") in str(err.value)


def test_import_checks_then_copies_into_the_cache(tmp_path):
    spec = _spec(_closed_port_url())
    good = tmp_path / "download" / "renamed.bin"
    good.parent.mkdir()
    good.write_bytes(PAYLOAD)
    cache = tmp_path / "cache"
    assert import_checkpoint(spec, good, cache_dir=cache) == cache / "weights.pth"
    assert resolve_checkpoint(spec, cache_dir=cache, progress=False).read_bytes() == PAYLOAD  # no network needed

    bad = tmp_path / "download" / "other.bin"
    bad.write_bytes(PAYLOAD[::-1])
    other_cache = tmp_path / "cache2"
    with pytest.raises(CheckpointError, match="sha256"):
        import_checkpoint(spec, bad, cache_dir=other_cache)
    assert not (other_cache / "weights.pth").exists()

    assert remove_checkpoint(spec, cache_dir=cache)
    assert not is_cached(spec, cache) and not remove_checkpoint(spec, cache_dir=cache)


def test_size_only_verification_without_published_hash(tmp_path):
    spec = _spec(None, sha256=None)
    short = tmp_path / "short.bin"
    short.write_bytes(PAYLOAD[:-1])
    with pytest.raises(CheckpointError, match="size"):
        import_checkpoint(spec, short, cache_dir=tmp_path / "cache")
    right = tmp_path / "right.bin"
    right.write_bytes(PAYLOAD[::-1])  # any content of the right size passes
    assert import_checkpoint(spec, right, cache_dir=tmp_path / "cache").exists()


def test_load_state_dict_file(tmp_path):
    weights = {"layer.weight": torch.arange(6.0).reshape(2, 3), "layer.bias": torch.zeros(2)}
    plain, wrapped = tmp_path / "plain.pth", tmp_path / "wrapped.pth"
    torch.save(weights, plain)
    torch.save({"net": weights, "epoch": 50}, wrapped)
    for state in (load_state_dict_file(plain), load_state_dict_file(wrapped, key=UNWRAP_KEYS),
                  load_state_dict_file(wrapped, key="net")):
        assert state.keys() == weights.keys()
        assert torch.equal(state["layer.weight"], weights["layer.weight"])
    with pytest.raises(CheckpointError, match="'model'.*epoch"):
        load_state_dict_file(wrapped, key="model")


def test_load_state_dict_file_rejects_bad_files(tmp_path):
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"PK\x03\x04 definitely not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt.pth is not a readable PyTorch checkpoint"):
        load_state_dict_file(corrupt)
    truncated = tmp_path / "truncated.pth"
    torch.save({"w": torch.zeros(1000)}, truncated)
    truncated.write_bytes(truncated.read_bytes()[:500])
    with pytest.raises(CheckpointError, match="truncated.pth"):
        load_state_dict_file(truncated)
    tensor_only = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), tensor_only)
    with pytest.raises(CheckpointError, match="not a dict"):
        load_state_dict_file(tensor_only)
    with pytest.raises(CheckpointError, match="not found"):
        load_state_dict_file(tmp_path / "missing.pth")


def test_official_specs_are_well_formed():
    for name, spec in OFFICIAL_WEIGHTS.items():
        assert spec.url is None or spec.url.startswith("https://"), name
        assert spec.sha256 is None or (len(spec.sha256) == 64 and int(spec.sha256, 16) >= 0), name
        assert spec.url is not None or spec.homepage is not None, name
    assert len({spec.filename for spec in OFFICIAL_WEIGHTS.values()}) == len(OFFICIAL_WEIGHTS)


def test_cancelling_from_the_progress_callback_keeps_the_part(server, tmp_path):
    class Cancelled(Exception):
        pass

    def cancel_after_first_chunk(done, total):
        if done > 0:
            raise Cancelled

    with pytest.raises(Cancelled):
        resolve_checkpoint(_spec(server.url), cache_dir=tmp_path, progress=cancel_after_first_chunk)
    assert (tmp_path / "weights.pth.part").stat().st_size == 64 << 10
    path = resolve_checkpoint(_spec(server.url), cache_dir=tmp_path, progress=False)
    assert path.read_bytes() == PAYLOAD and server.requests[-1] == f"bytes={64 << 10}-"


def test_a_benchmark_entry_names_the_weights_to_load(tmp_path):
    from trackstudio.trackers import registry

    entries = registry.build_entries(f"lk,point_transformer={tmp_path / 'other.pt'}", device="cpu")
    name, tracker = next(entries)
    assert name == "lk" and tracker.kind == "point"
    with pytest.raises(CheckpointError, match="other.pt"):
        next(entries)
