"""The recognizer on a real Triton Inference Server (``python -m serve`` in its own venv, nvidia-pytriton's
``tritonserver``) on loopback: two streams get the local engine's answers; a killed server leaves every
client answering locally until it is back; bad requests get an error and leave it up; the app with
``--server`` shows the labels it shows without."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from helpers.mainrun import MAIN, inference_events, read_events
from helpers.paths import ROOT
from helpers.wheel import run

from calibration.windows import read_windows
from realtime.core.backends import INPUTS, OUTPUTS, SERVED_MODEL
from realtime.engines import make_engine
from realtime.engines.remote_engine import RemoteEngine
from serve.process import ServerProcess, free_port

pytestmark = pytest.mark.slow

WINDOWS = 8


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    made = run(["bash", str(ROOT / "scripts" / "venv.sh"), "serve"], timeout=1800, cwd=ROOT)
    assert made.returncode == 0, made.stdout[-2000:] + made.stderr[-2000:]
    out = tmp_path_factory.mktemp("export") / "onnx"
    made = run([sys.executable, "-m", "export", "onnx", "--limit", "16", "--out", str(out)], cwd=ROOT)
    assert made.returncode == 0, made.stdout[-2000:] + made.stderr[-2000:]
    return out


@pytest.fixture(scope="module")
def server(export: Path, tmp_path_factory: pytest.TempPathFactory):
    process = ServerProcess(export, log=tmp_path_factory.mktemp("server") / "server.log").start()
    yield process
    process.kill()


@pytest.fixture(scope="module")
def local(export: Path):
    return make_engine("onnx", engine_file=export, threads=1)


@pytest.fixture(scope="module")
def windows(local) -> list[dict[str, np.ndarray]]:
    held = read_windows(None, local.spec, "heldout", WINDOWS)
    return [{k: v[i:i + 1] for k, v in held.arrays.items()} for i in range(min(WINDOWS, len(held)))]


def test_two_streams_get_the_local_engines_answers(server: ServerProcess, local, windows) -> None:
    results: dict[int, list] = {}

    def stream(k: int) -> None:
        client = RemoteEngine(server.url, local)
        results[k] = [(w, client.run(w)) for _ in range(3) for w in windows]
        results[k].append(("answered", dict(client.answered)))
        client.close()

    threads = [threading.Thread(target=stream, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for k in range(2):
        *answers, (_, answered) = results[k]
        assert answered == {"server": 3 * len(windows)}
        for w, got in answers:
            want = local.run(w)
            for name in OUTPUTS:
                assert got[name].shape == want[name].shape
                np.testing.assert_allclose(got[name], want[name], atol=1e-5, rtol=0)


def test_a_killed_server_leaves_clients_answering_locally_until_it_is_back(server: ServerProcess, local,
                                                                           windows) -> None:
    client = RemoteEngine(server.url, local)
    client.run(windows[0])
    assert client.problem is None and client.answered["server"] == 1
    server.kill()
    out = client.run(windows[1])  # answered, by the local engine
    np.testing.assert_allclose(out["probabilities"], local.run(windows[1])["probabilities"], atol=1e-6)
    assert client.problem is not None and "answering locally" in client.problem and client.answered["local"] == 1
    server.start()
    deadline = time.monotonic() + 30
    while client.problem is not None and time.monotonic() < deadline:  # retried after its back-off
        client.run(windows[2])
        time.sleep(0.2)
    assert client.problem is None and client.answered["server"] >= 2
    client.close()


def _request(server: ServerProcess, arrays: dict[str, np.ndarray]):
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(server.url.removeprefix("grpc://"))
    inputs = []
    for name, x in arrays.items():
        tensor = grpcclient.InferInput(name, list(x.shape), "BOOL" if x.dtype == np.bool_ else
                                       "FP32" if x.dtype == np.float32 else "FP64")
        tensor.set_data_from_numpy(x)
        inputs.append(tensor)
    return client.infer(SERVED_MODEL, inputs, client_timeout=10)


def test_bad_requests_get_an_error_and_leave_the_server_up(server: ServerProcess, windows) -> None:
    import tritonclient.grpc as grpcclient

    good = {n: np.ascontiguousarray(windows[0][n]) for n in INPUTS}
    nan = {**good, "audio": good["audio"].copy()}
    nan["audio"][0, 0, 0] = np.nan
    wrong_shape = {**good, "visual": good["visual"][:, :10]}
    wrong_dtype = {**good, "visual": good["visual"].astype(np.float64)}
    for bad, says in ((nan, "audio has NaN or infinity"), (wrong_shape, "visual"), (wrong_dtype, "visual")):
        with pytest.raises(grpcclient.InferenceServerException, match=says):
            _request(server, bad)
        assert server.ready()
    assert _request(server, good).as_numpy("probabilities").shape == (1, 7)


def test_the_demo_with_a_server_shows_the_labels_it_shows_without(server: ServerProcess, export: Path,
                                                                 tmp_path: Path) -> None:
    args = [*MAIN, "--demo", "--headless", "--as-fast-as-possible", "--no-asr", "--backend", "onnx",
            "--engine", str(export)]
    for name, extra in (("local", []), ("server", ["--server", server.url])):
        ran = run([*args, *extra, "--events", str(tmp_path / f"{name}.jsonl")], cwd=ROOT)
        assert ran.returncode == 0, ran.stderr[-2000:]
    local_events, served = (inference_events(read_events(tmp_path / f"{n}.jsonl")) for n in ("local", "server"))
    assert [e["label"] for e in served] == [e["label"] for e in local_events] and len(served) > 10
    statuses = [e for e in read_events(tmp_path / "server.jsonl") if e["type"] == "status"]
    assert not [e for e in statuses if e["modality"] == "server"], statuses  # the server answered every window


def test_the_demo_with_no_server_answers_locally_and_says_so(export: Path, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    ran = run([*MAIN, "--demo", "--headless", "--as-fast-as-possible", "--no-asr", "--backend", "onnx", "--engine",
               str(export), "--server", f"grpc://127.0.0.1:{free_port()}", "--events", str(events)], cwd=ROOT)
    assert ran.returncode == 0, ran.stderr[-2000:]
    log = read_events(events)
    assert len(inference_events(log)) > 10 and log[-1]["type"] == "end"
    server = [e for e in log if e["type"] == "status" and e["modality"] == "server"]
    assert len(server) == 1 and server[0]["state"] == "off" and "answering locally" in server[0]["why"], server


def test_serve_refuses_bad_input_in_one_line(server: ServerProcess, tmp_path: Path) -> None:
    python = str(server.python)
    missing = run([python, "-m", "serve", "--engine", str(tmp_path / "none")], cwd=tmp_path)
    taken = run([python, "-m", "serve", "--engine", str(server.engine), "--port", str(server.grpc_port)], cwd=tmp_path)
    for ran, says in ((missing, "no ONNX export"), (taken, "in use")):
        assert ran.returncode == 2 and says in ran.stderr and len(ran.stderr.strip().splitlines()) == 1, ran.stderr
    bad_url = run([*MAIN, "--demo", "--headless", "--server", "http://nowhere"], cwd=ROOT)
    assert bad_url.returncode == 2 and "grpc://HOST:PORT" in bad_url.stderr
    assert server.metrics()["nv_inference_request_success"] > 0  # the Prometheus counters are served
