"""The download cache against a local HTTP server on 127.0.0.1 (never the internet).

The server serves bytes, errors, connections dropped or stalled midway, and counts every request, so the
tests can assert how many requests each situation costs (zero when offline or on a cache hit).
"""

import dataclasses
import fcntl
import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

import ghostnp
import ghostnp.weights.files
from ghostnp.errors import CheckpointError, DownloadError
from ghostnp.weights import pretrained
from ghostnp.weights.hub import cache_dir, cache_entries, clear_cache, download, fetch_pretrained, file_sha256
from ghostnp.weights.pretrained import WeightsSource, get_pretrained_config
from weights_converter import read_checkpoint

REPO_ROOT = Path(__file__).resolve().parents[1]
BODY = os.urandom(200_000)
SHA256 = hashlib.sha256(BODY).hexdigest()


# ------------------------------------------------------------------------------------------ local server


@dataclasses.dataclass
class Route:
    """What the server answers on one path.

    The first ``faulty_requests`` requests (all when None) get ``status`` or are cut after ``cut_at`` body
    bytes (the connection then closes, or with ``stall`` stays open sending nothing); later ones get
    200 and the whole body.
    """

    body: bytes = BODY
    status: int = 200
    cut_at: int | None = None
    stall: bool = False
    faulty_requests: int | None = None
    chunk_delay: float = 0.0


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        server = self.server
        with server.lock:
            server.hits[self.path] += 1
            server.range_headers.append(self.headers.get("Range"))
            count = server.hits[self.path]
        route = server.routes.get(self.path, Route(status=404))
        faulty = route.faulty_requests is None or count <= route.faulty_requests
        if faulty and route.status != 200:
            self.send_error(route.status)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(route.body)))
        self.end_headers()
        body = route.body[: route.cut_at] if faulty and route.cut_at is not None else route.body
        for start in range(0, len(body), 16_384):
            self.wfile.write(body[start : start + 16_384])
            self.wfile.flush()
            time.sleep(route.chunk_delay)
        if faulty and route.stall:
            server.release.wait(20)
        self.close_connection = True

    def log_message(self, *args):
        pass


class LocalServer:
    def __init__(self, httpd):
        self.httpd = httpd

    def serve(self, path, **route):
        """Answer ``path`` as ``Route(**route)`` says; return its URL."""
        self.httpd.routes[path] = Route(**route)
        return self.url(path)

    def url(self, path):
        host, port = self.httpd.server_address
        return f"http://{host}:{port}{path}"

    def hits(self, path=None):
        """Requests received for ``path``, or for all paths."""
        return self.httpd.hits[path] if path else sum(self.httpd.hits.values())


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.routes, httpd.hits, httpd.range_headers = {}, Counter(), []
    httpd.lock, httpd.release = threading.Lock(), threading.Event()
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield LocalServer(httpd)
    httpd.release.set()
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """A fresh cache folder; no offline flag or mirror from the developer's environment."""
    for name in ("GHOSTNP_OFFLINE", "GHOSTNP_WEIGHTS_URL", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GHOSTNP_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


def leftovers(folder):
    """Temporaries (``*.part``) anywhere under ``folder``."""
    return sorted(Path(folder).rglob("*.part*"))


def closed_port_url(path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


CHILD = """
import sys
from ghostnp.weights.hub import download
print("ready", flush=True)
download(sys.argv[1], sys.argv[2], progress=False)
"""


def start_child_download(url, dest):
    """``download(url, dest)`` in a separate Python process; its stdout says "ready" just before."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-c", CHILD, url, str(dest)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)


# ---------------------------------------------------------------------------------------- cache folder


def test_cache_dir_prefers_ghostnp_home_then_xdg_then_home(monkeypatch, tmp_path):
    monkeypatch.setenv("GHOSTNP_HOME", "~/weights")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == Path.home() / "weights"
    monkeypatch.delenv("GHOSTNP_HOME")
    assert cache_dir() == tmp_path / "xdg" / "ghostnp"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/xdg")  # invalid per the XDG specification: ignored
    assert cache_dir() == Path.home() / ".cache" / "ghostnp"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_dir() == Path.home() / ".cache" / "ghostnp"


# -------------------------------------------------------------------------------------------- download


def test_download_writes_the_file_and_records_its_hash(server, tmp_path, capsys):
    dest = tmp_path / "sub" / "weights.bin"
    assert download(server.serve("/weights.bin"), dest) == dest
    assert dest.read_bytes() == BODY
    assert Path(f"{dest}.sha256").read_text() == f"{SHA256}  weights.bin\n"  # sha256sum -c format
    assert SHA256 in capsys.readouterr().err  # printed, since none was published
    assert leftovers(tmp_path) == []


def test_download_with_the_published_hash_writes_no_record(server, tmp_path):
    dest = download(server.serve("/weights.bin"), tmp_path / "weights.bin", sha256=SHA256.upper())
    assert dest.read_bytes() == BODY
    assert not Path(f"{dest}.sha256").exists()


def test_wrong_bytes_raise_and_leave_no_file(server, tmp_path):
    dest = tmp_path / "weights.bin"
    with pytest.raises(DownloadError, match=f"sha256 is {SHA256}.*expected"):
        download(server.serve("/weights.bin"), dest, sha256=hashlib.sha256(b"other").hexdigest())
    assert sorted(tmp_path.iterdir()) == [tmp_path / "weights.bin.lock"]
    assert server.hits() == 1  # a hash mismatch is not retried


def test_not_found_is_not_retried(server, tmp_path):
    dest = tmp_path / "weights.bin"
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(server.url("/missing.bin"), dest, progress=False)
    assert server.hits() == 1
    assert not dest.exists() and leftovers(tmp_path) == []


def test_server_error_is_retried_once(server, tmp_path):
    url = server.serve("/weights.bin", status=503, faulty_requests=1)
    assert download(url, tmp_path / "weights.bin", progress=False).read_bytes() == BODY
    assert server.hits() == 2


def test_dropped_connection_twice_raises_and_leaves_no_file(server, tmp_path):
    dest = tmp_path / "weights.bin"
    with pytest.raises(DownloadError, match=f"closed after 50000 of {len(BODY)} bytes"):
        download(server.serve("/weights.bin", cut_at=50_000), dest, progress=False)
    assert server.hits() == 2
    assert not dest.exists() and leftovers(tmp_path) == []


def test_dropped_connection_is_restarted_from_zero(server, tmp_path):
    url = server.serve("/weights.bin", cut_at=50_000, faulty_requests=1)
    assert download(url, tmp_path / "weights.bin", progress=False).read_bytes() == BODY
    assert server.hits() == 2
    assert server.httpd.range_headers == [None, None]  # no resume: the retry asks for the whole file


def test_stalled_server_times_out(server, tmp_path):
    dest = tmp_path / "weights.bin"
    with pytest.raises(DownloadError, match="timed out"):
        download(server.serve("/weights.bin", cut_at=1_000, stall=True), dest, progress=False, timeout=0.2)
    assert server.hits() == 2
    assert not dest.exists() and leftovers(tmp_path) == []


def test_unreachable_server_raises_download_error(tmp_path):
    with pytest.raises(DownloadError, match="could not download .*2 attempt"):
        download(closed_port_url("/weights.bin"), tmp_path / "weights.bin", progress=False)


def test_killed_process_leaves_a_temporary_that_the_next_download_removes(server, tmp_path):
    dest = tmp_path / "weights.bin"
    child = start_child_download(server.serve("/stalled.bin", cut_at=20_000, stall=True), dest)
    deadline = time.monotonic() + 20
    while not any(path.stat().st_size for path in leftovers(tmp_path)):
        assert time.monotonic() < deadline and child.poll() is None, "the child never started writing"
        time.sleep(0.02)
    child.kill()
    child.wait()
    child.stdout.close()
    assert not dest.exists() and len(leftovers(tmp_path)) == 1  # the partial file never had the final name
    assert download(server.serve("/weights.bin"), dest, progress=False).read_bytes() == BODY
    assert leftovers(tmp_path) == []


def test_two_processes_share_one_download(server, tmp_path):
    dest = tmp_path / "weights.bin"
    url = server.serve("/weights.bin", chunk_delay=0.01)
    with open(f"{dest}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # hold both children at the lock, so they really race
        children = [start_child_download(url, dest) for _ in range(2)]
        assert [child.stdout.readline() for child in children] == ["ready\n", "ready\n"]
        time.sleep(0.3)
        assert server.hits() == 0
        fcntl.flock(lock, fcntl.LOCK_UN)
    for child in children:
        assert child.wait(timeout=30) == 0
        child.stdout.close()
    assert dest.read_bytes() == BODY
    assert server.hits() == 1  # the second process reused the first one's file
    assert Path(f"{dest}.sha256").read_text().split()[0] == SHA256
    assert leftovers(tmp_path) == []


def test_offline_mode_makes_no_request(server, tmp_path, monkeypatch):
    monkeypatch.setenv("GHOSTNP_OFFLINE", "1")
    dest = tmp_path / "weights.bin"
    with pytest.raises(DownloadError, match="GHOSTNP_OFFLINE"):
        download(server.serve("/weights.bin"), dest)
    assert server.hits() == 0 and not dest.exists()


def test_offline_mode_uses_a_cached_file(server, tmp_path, monkeypatch):
    url = server.serve("/weights.bin")
    dest = download(url, tmp_path / "weights.bin", progress=False)
    monkeypatch.setenv("GHOSTNP_OFFLINE", "true")
    assert download(url, dest, progress=False).read_bytes() == BODY
    assert server.hits() == 1


def test_cache_hit_is_verified_and_a_corrupted_file_fetched_again(server, tmp_path):
    url = server.serve("/weights.bin")
    dest = download(url, tmp_path / "weights.bin", progress=False)
    assert download(url, dest, progress=False) == dest and server.hits() == 1  # a verified hit: no request
    dest.write_bytes(BODY[:-1] + bytes([BODY[-1] ^ 1]))  # one flipped bit
    with pytest.warns(RuntimeWarning, match="corrupted or was changed"):
        assert download(url, dest, progress=False).read_bytes() == BODY
    assert server.hits() == 2


def test_corrupted_cached_file_is_not_used_offline(server, tmp_path, monkeypatch):
    url = server.serve("/weights.bin")
    dest = download(url, tmp_path / "weights.bin", progress=False)
    dest.write_bytes(b"garbage")
    monkeypatch.setenv("GHOSTNP_OFFLINE", "1")
    with pytest.warns(RuntimeWarning), pytest.raises(DownloadError, match="not in the cache"):
        download(url, dest, progress=False)
    assert not dest.exists()


def test_file_put_in_the_cache_by_hand_is_checked_against_the_published_hash(server, tmp_path):
    dest = tmp_path / "weights.bin"
    dest.write_bytes(b"a different file")
    with pytest.warns(RuntimeWarning, match=SHA256):
        download(server.serve("/weights.bin"), dest, sha256=SHA256, progress=False)
    assert dest.read_bytes() == BODY and server.hits() == 1


def test_file_put_in_the_cache_by_hand_without_published_hash_is_recorded(server, tmp_path, monkeypatch):
    monkeypatch.setenv("GHOSTNP_OFFLINE", "1")
    dest = tmp_path / "weights.bin"
    dest.write_bytes(BODY)
    assert download(server.url("/weights.bin"), dest, progress=False) == dest
    assert Path(f"{dest}.sha256").read_text().split()[0] == SHA256
    assert server.hits() == 0


def test_progress_is_a_bar_on_a_terminal_and_plain_lines_otherwise(server, tmp_path, monkeypatch, capsys):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    url = server.serve("/weights.bin")
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    download(url, tmp_path / "bar.bin")
    drawn = terminal.getvalue()
    assert "\rbar.bin: 100%" in drawn and f"{len(BODY) // 1024}k/{len(BODY) // 1024}k" in drawn and "B/s]" in drawn
    monkeypatch.undo()
    download(url, tmp_path / "lines.bin")
    download(url, tmp_path / "quiet.bin", progress=False)
    err = capsys.readouterr().err
    assert "\r" not in err and "lines.bin" in err and "quiet.bin" not in err


# ------------------------------------------------------------------------------------ fetch_pretrained

TAG = "ghostnetv2_100.in1k"
OFFICIAL_BYTES = b"official release " + BODY
COPY_BYTES = b"timm copy " + BODY


@pytest.fixture
def conversions(monkeypatch):
    """A stand-in converter recording its calls; it stores the source bytes in the .npz."""
    calls = []

    def convert(src, out=None, arch=None):
        calls.append((Path(src), arch))
        np.savez(out, source=np.frombuffer(Path(src).read_bytes(), dtype=np.uint8))
        return Path(out)

    monkeypatch.setattr(ghostnp.weights.files, "convert_weights", convert)
    return calls


@pytest.fixture
def local_sources(server, monkeypatch):
    """ghostnetv2_100.in1k with its two sources served by the local server."""
    official = server.serve("/release/ck_ghostnetv2_10.pth.tar", body=OFFICIAL_BYTES)
    copy = server.serve(f"/timm/{TAG}/model.safetensors", body=COPY_BYTES)
    sources = (WeightsSource(official), WeightsSource(copy))
    config = dataclasses.replace(get_pretrained_config(TAG), sources=sources)
    monkeypatch.setitem(pretrained._CONFIGS, TAG, config)
    return config


def npz_source_bytes(path):
    with np.load(path) as archive:
        return archive["source"].tobytes()


def test_fetch_pretrained_downloads_converts_once_and_reuses(server, cache, conversions, local_sources):
    path = fetch_pretrained("ghostnetv2_100", progress=False)
    assert path == cache / f"{TAG}.npz"
    assert npz_source_bytes(path) == OFFICIAL_BYTES
    assert conversions == [(cache / TAG / "ck_ghostnetv2_10.pth.tar", "ghostnetv2_100")]
    assert fetch_pretrained(TAG, progress=False) == path
    assert len(conversions) == 1 and server.hits() == 1
    assert Path(f"{path}.sha256").read_text().split()[0] == file_sha256(path)
    assert leftovers(cache) == []


def test_fetch_pretrained_falls_back_to_the_second_source(server, cache, conversions, local_sources):
    server.serve("/release/ck_ghostnetv2_10.pth.tar", status=404)
    assert npz_source_bytes(fetch_pretrained(TAG, progress=False)) == COPY_BYTES
    assert conversions == [(cache / TAG / "model.safetensors", "ghostnetv2_100")]


def test_fetch_pretrained_uses_a_cached_source_before_downloading(server, cache, conversions, local_sources):
    (cache / TAG).mkdir(parents=True)
    (cache / TAG / "model.safetensors").write_bytes(COPY_BYTES)
    assert npz_source_bytes(fetch_pretrained(TAG, progress=False)) == COPY_BYTES
    assert server.hits() == 0


def test_corrupted_npz_is_converted_again_from_the_cached_source(server, cache, conversions, local_sources):
    path = fetch_pretrained(TAG, progress=False)
    path.write_bytes(b"PK\x03\x04 truncated")
    with pytest.warns(RuntimeWarning, match=f"{TAG}.npz is corrupted"):
        assert npz_source_bytes(fetch_pretrained(TAG, progress=False)) == OFFICIAL_BYTES
    assert len(conversions) == 2 and server.hits() == 1


def test_conversion_left_unfinished_by_a_killed_process_is_ignored_then_removed(cache, conversions, local_sources):
    scratch = cache / f"{TAG}.npz.0123456789abcdef.part"
    scratch.mkdir(parents=True)
    (scratch / f"{TAG}.npz").write_bytes(b"PK\x03\x04 half written")
    assert cache_entries() == []
    assert npz_source_bytes(fetch_pretrained(TAG, progress=False)) == OFFICIAL_BYTES
    assert leftovers(cache) == []


def test_mirror_replaces_the_publishers_urls(server, cache, conversions, local_sources, monkeypatch):
    monkeypatch.setenv("GHOSTNP_WEIGHTS_URL", server.url("/mirror/"))
    server.serve(f"/mirror/{TAG}/ck_ghostnetv2_10.pth.tar", body=b"mirrored")
    assert npz_source_bytes(fetch_pretrained(TAG, progress=False)) == b"mirrored"
    assert server.hits() == server.hits(f"/mirror/{TAG}/ck_ghostnetv2_10.pth.tar") == 1


def test_a_copy_of_a_cache_folder_is_a_file_mirror(server, cache, conversions, local_sources, monkeypatch, tmp_path):
    fetch_pretrained(TAG, progress=False)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (cache / TAG).rename(mirror / TAG)
    clear_cache()
    monkeypatch.setenv("GHOSTNP_WEIGHTS_URL", mirror.as_uri())
    assert npz_source_bytes(fetch_pretrained(TAG, progress=False)) == OFFICIAL_BYTES
    assert server.hits() == 1  # only the first fetch went to the server


def test_download_that_is_no_checkpoint_is_not_kept(server, cache, local_sources, monkeypatch):
    def convert(src, out=None, arch=None):
        raise CheckpointError(f"{src} is an HTML page, not a checkpoint")

    monkeypatch.setattr(ghostnp.weights.files, "convert_weights", convert)
    with pytest.raises(CheckpointError, match="HTML page"):
        fetch_pretrained(TAG, progress=False)
    assert cache_entries() == [] and leftovers(cache) == []
    assert sorted(path.name for path in (cache / TAG).iterdir()) == ["ck_ghostnetv2_10.pth.tar.lock"]


def test_offline_error_says_what_to_download_and_where_to_put_it(
    server, cache, conversions, local_sources, monkeypatch
):
    monkeypatch.setenv("GHOSTNP_OFFLINE", "1")
    with pytest.raises(DownloadError) as raised:
        fetch_pretrained(TAG, progress=False)
    message = str(raised.value)
    assert "\n" not in message and "GHOSTNP_OFFLINE is set" in message
    for url in local_sources.urls:
        assert url in message
    assert str(cache / TAG / "ck_ghostnetv2_10.pth.tar") in message
    assert str(cache / TAG / "model.safetensors") in message
    assert "--weights PATH" in message and "ghostnp.create_model('ghostnetv2_100', weights=PATH)" in message
    assert server.hits() == 0 and conversions == []


def test_unreachable_sources_give_the_same_advice(cache, conversions, monkeypatch):
    config = get_pretrained_config("ghostnet_100")
    unreachable = dataclasses.replace(config.sources[0], url=closed_port_url("/model.safetensors"))
    monkeypatch.setitem(pretrained._CONFIGS, config.tag, dataclasses.replace(config, sources=(unreachable,)))
    with pytest.raises(DownloadError, match="could not download .*this file.*--weights PATH"):
        fetch_pretrained("ghostnet_100", progress=False)
    assert not (cache / "ghostnet_100.in1k.npz").exists() and leftovers(cache) == []


def safetensors_bytes(arrays):
    """A safetensors file (8-byte header length, JSON header, raw little-endian data) holding ``arrays``."""
    header, offset = {}, 0
    for name, array in arrays.items():
        dtype = {"float32": "F32", "int64": "I64"}[array.dtype.name]
        header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    data = b"".join(array.astype(array.dtype.newbyteorder("<")).tobytes() for array in arrays.values())
    return len(text).to_bytes(8, "little") + text + data


def test_fetch_pretrained_converts_a_timm_safetensors_copy(server, cache, local_sources):
    rng = np.random.default_rng(0)
    arrays = {
        key: np.abs(rng.standard_normal(shape, dtype=np.float32)) + 0.5
        if key.endswith("running_var")
        else rng.standard_normal(shape, dtype=np.float32)
        for key, shape in ghostnp.expected_shapes("ghostnetv2_100").items()
    }
    timm_file = {**arrays, "bn1.num_batches_tracked": np.array(7, dtype=np.int64)}
    server.serve("/release/ck_ghostnetv2_10.pth.tar", status=404)
    server.serve(f"/timm/{TAG}/model.safetensors", body=safetensors_bytes(timm_file))
    path = fetch_pretrained(TAG, progress=False)
    converted, _ = read_checkpoint(path)
    assert sorted(converted) == sorted(arrays)
    for key, array in arrays.items():
        np.testing.assert_array_equal(converted[key], array, err_msg=key)


# ---------------------------------------------------------------------------------- listing, clearing


def test_cache_entries_list_weights_files_only(cache, conversions, local_sources):
    path = fetch_pretrained(TAG, progress=False)
    (cache / "notes.txt").write_text("not ghostnp's")
    entries = cache_entries()
    assert [entry.name for entry in entries] == [f"{TAG}.npz", f"{TAG}/ck_ghostnetv2_10.pth.tar"]
    assert entries[0].size == path.stat().st_size and entries[0].sha256 == file_sha256(path)
    assert entries[1].size == len(OFFICIAL_BYTES)
    assert entries[1].sha256 == hashlib.sha256(OFFICIAL_BYTES).hexdigest()


def test_clear_cache_removes_only_ghostnp_files(cache, conversions, local_sources):
    fetch_pretrained(TAG, progress=False)
    (cache / "notes.txt").write_text("not ghostnp's")
    assert clear_cache("ghostnetv2_130") == []
    removed = clear_cache()
    assert cache / f"{TAG}.npz" in removed and cache / TAG in removed
    assert sorted(cache.iterdir()) == [cache / "notes.txt"]
    assert cache_entries() == []
