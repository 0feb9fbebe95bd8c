"""The platform's AWS: moto in server mode plus the ECS/ALB simulator, in one process.

``python -m tests.platform.motoserver --host 127.0.0.1 --port 25000``

One process because the simulator (simulator.py) edits moto's in-memory backends to do
what AWS does on its own (tasks start, deployments complete, targets register); the
operator under test only talks HTTP to this server, the same code path as against AWS.

Besides moto's API the server answers ``GET /wpenv/health`` with a small JSON document, so
``aws.up`` can tell this server (moto *and* a live simulator) from anything else on the port,
and keeps a journal of every AWS request it receives (``GET``/``DELETE /wpenv/journal``,
see journal.py), so tests and benchmarks can count and time the operator's calls, and
answers the fault endpoints under ``/wpenv/faults`` (faults.py), with which a test damages
what S3 stores, and throttles and fails AWS calls as AWS does (chaos.py: WPENV_AWS_FAULT_*
and WPENV_AWS_RATE_LIMITS, or ``/wpenv/faults/aws``); chaos sits inside the journal, so the
journal records the status of the answers it injects; and keeps every secret value that
crosses it (``GET /wpenv/witness/secrets``, witness.py), so a leak test knows the secrets
of environments long deleted; and serves every ALB on loopback (loadbalancer.py,
``GET /wpenv/load-balancers``), routing by the listener rules to the data plane's tasks.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from types import FrameType
from typing import Any
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from moto.core.config import default_user_config
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

from tests.platform import moto_speed
from tests.platform.chaos import Chaos
from tests.platform.faults import Faults
from tests.platform.fidelity import elb_quotas, faithful, rotation
from tests.platform.journal import Journal, journaled
from tests.platform.loadbalancer import NETWORK_ENV, LoadBalancers, network_for
from tests.platform.simulator import (
    DEFAULT_PERIOD_SECONDS,
    PERIOD_ENV,
    Simulator,
    delay_from_env,
    seconds_from_env,
)
from tests.platform.witness import Witness, witnessed
from tests.platform.wordpress import DataPlane

HEALTH_PATH = "/wpenv/health"
log = logging.getLogger("wpenv.motoserver")


def health(simulator: Simulator, thread: threading.Thread, period: float) -> dict[str, object]:
    """The health document: ok only while the simulator thread is alive and passing."""
    last = simulator.last_pass
    fresh = last is not None and simulator.clock() - last < max(10 * period, 5.0)
    ok = thread.is_alive() and fresh
    return {
        "moto": "ok",
        "simulator": "ok" if ok else "stalled",
        "delay_seconds": simulator.delay,
        "services": len(simulator.tracked),
        "pid": os.getpid(),
    }


def with_health(app: WSGIApplication, status: Callable[[], dict[str, object]]) -> WSGIApplication:
    """Answer HEALTH_PATH ourselves and hand every other request to moto."""

    def wsgi(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == HEALTH_PATH:
            body = json.dumps(status()).encode()
            start_response(
                "200 OK",
                [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
            )
            return [body]
        return app(environ, start_response)

    return wsgi


def serialized(app: WSGIApplication, lock: AbstractContextManager[Any]) -> WSGIApplication:
    """One request at a time inside moto, and none during a simulator pass.

    moto's backends are plain dicts that its requests walk while serializing an answer:
    with 400 tenants provisioning, a listing of IAM roles met a role being created (and a
    simulator pass a secret being made), and moto answered "500 Internal Server Error"
    (RuntimeError: dictionary changed size during iteration), which AWS never does. The
    body is read before the lock is taken (an upload the layers above left unread, e.g.
    an archive's part, arrives at its sender's pace), the answer is built under it and
    sent after it is let go; moto's own work holds the GIL anyway.
    """

    def wsgi(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        stream = environ.get("wsgi.input")
        if stream is not None and not isinstance(stream, io.BytesIO):
            length = environ.get("CONTENT_LENGTH")
            if length:
                environ["wsgi.input"] = io.BytesIO(stream.read(int(length)))
            elif environ.get("wsgi.input_terminated"):  # chunked: read to its end
                environ["wsgi.input"] = io.BytesIO(stream.read())
        with lock:
            return [b"".join(app(environ, start_response))]

    return wsgi


def serve(host: str, port: int, delay: float, period: float) -> None:
    """Run moto and the simulator until SIGTERM or SIGINT, then shut both down."""
    os.environ["MOTO_PORT"] = str(port)  # moto builds some URLs (presigned, queues) from it
    # Lambda functions run without Docker: the only one invoked is the stub rotation
    # function, whose testSecret step the fidelity layer runs itself (fidelity/rotation.py).
    default_user_config["lambda"] = {"use_docker": False}
    moto_speed.install()  # two per-request costs of moto's, gone (moto_speed.py)
    chaos = Chaos()  # from the environment: a bad setting stops the server here
    data_plane = DataPlane.from_env()  # real WordPress tasks (wordpress.py), when on
    # Every ALB on its own loopback address (loadbalancer.py), forwarding to those tasks.
    balancers = LoadBalancers(os.environ.get(NETWORK_ENV) or network_for(port),
                              data_plane.state, data_plane.healthy)
    simulator = Simulator(delay=delay, data_plane=data_plane)
    simulator.install_hooks()
    faults = Faults([chaos, elb_quotas.CONTROL, rotation.CONTROL])
    faults.install_hooks()
    stop = threading.Event()
    sim_thread = threading.Thread(
        target=simulator.run, args=(stop, period), name="simulator", daemon=True
    )
    moto = serialized(faithful(DomainDispatcherApplication(create_backend_app)),
                      simulator.lock)
    data_thread = threading.Thread(target=data_plane.run, args=(stop,), name="data-plane",
                                   daemon=True)
    lb_thread = threading.Thread(target=balancers.run, args=(stop,), name="load-balancers",
                                 daemon=True)
    aws_api = faults.wsgi(witnessed(journaled(chaos.wsgi(moto), Journal()), Witness()))
    app = with_health(
        balancers.wsgi(data_plane.wsgi(aws_api)),
        lambda: health(simulator, sim_thread, period),
    )
    # Bound here, in the main thread, so a taken port fails the process at once (moto's
    # ThreadedMotoServer would hang waiting for a server thread that died).
    server = make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler)
    server_thread = threading.Thread(target=server.serve_forever, name="moto", daemon=True)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    sim_thread.start()
    data_thread.start()
    lb_thread.start()
    server_thread.start()
    log.info("moto server on http://%s:%d, simulator delay %.1fs", host, port, delay)
    while not stop.wait(1.0):
        if not server_thread.is_alive():
            log.error("moto server thread died")
            break
    started = time.monotonic()
    server.shutdown()
    server.server_close()
    stop.set()
    sim_thread.join(timeout=5.0)
    data_thread.join(timeout=30.0)  # it stops every task's PHP on its way out
    lb_thread.join(timeout=5.0)
    simulator.uninstall_hooks()
    faults.uninstall_hooks()
    log.info("stopped in %.1fs", time.monotonic() - started)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and serve."""
    parser = argparse.ArgumentParser(prog="python -m tests.platform.motoserver")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=25000)
    parser.add_argument(
        "--delay",
        type=float,
        default=None,
        help="seconds from a service change to its tasks running (default: "
        "WPENV_SIM_DELAY_SECONDS or 2)",
    )
    parser.add_argument("--period", type=float, default=None,
                        help="seconds between simulator steps (default: "
                             "WPENV_SIM_PERIOD_SECONDS or 0.5)")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    delay = args.delay if args.delay is not None else delay_from_env()
    period = args.period if args.period is not None else seconds_from_env(
        PERIOD_ENV, DEFAULT_PERIOD_SECONDS)
    serve(args.host, args.port, delay, period)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
