"""Serve the recognizer on a Triton Inference Server, for many cameras' apps (``--server grpc://HOST:PORT``).

    .venv-serve/bin/python -m serve --engine out/export [--port 8001] [--host 127.0.0.1]

Runs until Ctrl-C or SIGTERM. The venv: ``bash scripts/venv.sh serve`` (nvidia-pytriton needs numpy < 2).
Health: ``http://HOST:HTTP_PORT/v2/health/ready``; Prometheus metrics: ``http://HOST:METRICS_PORT/metrics``.
Exit status: 0 stopped, 2 bad input (no export, a port in use, no pytriton).
"""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path

from realtime.core.errors import run_cli
from serve.triton import ServeConfig, make_triton


def parser() -> argparse.ArgumentParser:
    d = ServeConfig(Path("."))
    ap = argparse.ArgumentParser(prog="python -m serve", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--engine", type=Path, required=True, help="an ONNX export (python -m export onnx --out DIR)")
    ap.add_argument("--host", default=d.host, help="address to listen on (default: %(default)s, this machine only)")
    ap.add_argument("--port", type=int, default=d.grpc_port, help="gRPC port (default: %(default)s)")
    ap.add_argument("--http-port", type=int, default=d.http_port, help="HTTP port, health (default: %(default)s)")
    ap.add_argument("--metrics-port", type=int, default=d.metrics_port, help="Prometheus port (default: %(default)s)")
    ap.add_argument("--max-batch", type=int, default=d.max_batch, help="largest batch (default: %(default)s)")
    ap.add_argument("--queue-delay-us", type=int, default=d.queue_delay_us,
                    help="longest wait to fill a batch, microseconds (default: %(default)s)")
    ap.add_argument("--instances", type=int, default=d.instances,
                    help="model instances, each a process with one engine (default: %(default)s)")
    return ap


def port_in_use(host: str, port: int) -> bool:
    """Whether ``port`` on ``host`` is taken by a listening socket (another server, say); connections
    of a server that just stopped, still closing, do not count (SO_REUSEADDR, as servers bind)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def main(argv: list[str] | None = None) -> int:
    a = parser().parse_args(argv)
    from realtime.engines.artifact import artifact_dir

    try:
        artifact_dir(a.engine)
        import pytriton  # noqa: F401  (said here, before anything starts)
    except FileNotFoundError as e:
        print(f"serve: {e}", file=sys.stderr)
        return 2
    except ImportError:
        print("serve: nvidia-pytriton is not installed here: make its venv with `bash scripts/venv.sh serve` "
              "and run .venv-serve/bin/python -m serve", file=sys.stderr)
        return 2
    taken = [p for p in (a.port, a.http_port, a.metrics_port) if port_in_use(a.host, p)]
    if taken:
        print(f"serve: port {', '.join(map(str, taken))} on {a.host} is in use (another server?): "
              "choose others with --port, --http-port, --metrics-port", file=sys.stderr)
        return 2
    config = ServeConfig(a.engine, a.host, a.port, a.http_port, a.metrics_port, a.max_batch,
                         ServeConfig.preferred_batches, a.queue_delay_us, a.instances)
    with make_triton(config) as triton:
        print(f"serve: {config.engine} on grpc://{a.host}:{a.port} (health http://{a.host}:{a.http_port}"
              f"/v2/health/ready, metrics http://{a.host}:{a.metrics_port}/metrics); Ctrl-C stops", flush=True)
        triton.serve()
    return 0


if __name__ == "__main__":
    run_cli(main)
