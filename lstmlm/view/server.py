"""The web app of ``lstmlm view``: the page and its JSON endpoints (docs/view.md).

Starlette on uvicorn: an ASGI app of seven routes needs no more (FastAPI adds request
models and generated docs on top of Starlette; these are documented by hand). Model calls
run in worker threads, one at a time (``Engine``): a CPU model serves one request fastest
alone. Requests beyond ``Limits.max_concurrent`` in flight get 429; each text is bounded by
``Limits`` (413); a bad request gets a one-line JSON error. Nothing is written anywhere:
the run is read once, at start.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import signal
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from lstmlm.api import Model
from lstmlm.errors import LstmlmError
from lstmlm.view import payloads
from lstmlm.view.payloads import Limits, TooLarge
from lstmlm.view.search import Pattern, search, split_ids

NDJSON = "application/x-ndjson"


class Busy(LstmlmError):
    """More requests in flight than ``Limits.max_concurrent``: 429."""


class Engine:
    """The model, used by one request at a time, and the count of requests in flight."""

    def __init__(self, model: Model, limits: Limits, info: dict[str, Any]) -> None:
        self.model, self.limits, self.info = model, limits, info
        self._model_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._in_flight = 0

    def enter(self) -> None:
        with self._count_lock:
            if self._in_flight >= self.limits.max_concurrent:
                raise Busy(f"busy: {self._in_flight} requests in flight; try again in a moment")
            self._in_flight += 1

    def leave(self) -> None:
        with self._count_lock:
            self._in_flight -= 1

    def call(self, work: Callable[[], Any]) -> Any:
        with self._model_lock:
            return work()

    def stream(self, items: Iterator[Any]) -> Iterator[bytes]:
        """``items`` as NDJSON lines, each produced under the model lock; leaves when done. A
        failure once streaming has begun (the status is sent) ends it with ``{"error": ...}``."""
        try:
            while True:
                try:
                    item = self.call(lambda: next(items, None))
                except Exception as error:  # reported to the client, in one line
                    message = str(error) if isinstance(error, LstmlmError) else internal(error)
                    yield (json.dumps({"error": message}) + "\n").encode()
                    return
                if item is None:
                    return
                yield (json.dumps(item, ensure_ascii=False) + "\n").encode()
        finally:
            self.leave()


def internal(error: Exception) -> str:
    return f"internal error: {type(error).__name__}: {error}".splitlines()[0]


def error_response(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def status_of(error: LstmlmError) -> int:
    return 413 if isinstance(error, TooLarge) else 429 if isinstance(error, Busy) else 400


async def read_body(request: Request, limits: Limits) -> dict[str, Any]:
    """The request's JSON object; a body larger than any allowed text is refused unread."""
    most = limits.max_chars * 8 + 4096  # two texts of max_chars, each up to 4 UTF-8 bytes
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > most:
        raise TooLarge(f"request body of {int(length):,} bytes; the limit is {most:,}")
    raw = await request.body()
    if len(raw) > most:
        raise TooLarge(f"request body of {len(raw):,} bytes; the limit is {most:,}")
    try:
        body = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError):
        raise LstmlmError("the request body is not JSON") from None
    if not isinstance(body, dict):
        raise LstmlmError("the request body must be a JSON object")
    return body


def field(body: dict[str, Any], name: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
    """``body[name]``, checked to be a ``kind`` (a bool is no number), or ``default`` when absent."""
    if name not in body:
        if default is ...:
            raise LstmlmError(f"missing field {name!r}")
        return default
    value = body[name]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
        wanted = " or ".join(k.__name__ for k in kinds)
        raise LstmlmError(f"field {name!r} must be {wanted} (got {json.dumps(value)[:40]})")
    return value


Handler = Callable[[Engine, dict[str, Any]], Any]


def endpoint(engine: Engine, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A POST route: body read, then the handler in a worker thread. It checks the request and
    takes the model lock for its model work (``Engine.call``); its dict is sent as JSON, its
    iterator as NDJSON, each item made under the lock (``Engine.stream``)."""

    async def route(request: Request) -> Response:
        try:
            body = await read_body(request, engine.limits)
            engine.enter()
        except LstmlmError as error:
            return error_response(status_of(error), str(error))
        streaming = False
        try:
            result = await run_in_threadpool(handler, engine, body)
            if isinstance(result, dict):
                return JSONResponse(result)
            streaming = True
            lines = engine.stream(result)
            # started here, so that its ``finally`` (leaving) runs however the stream ends, even
            # when the client is gone before the response's first byte (an unstarted generator
            # would be dropped without running it, and its place kept for ever)
            first = await run_in_threadpool(next, lines, b"")
            return StreamingResponse(
                iterate_in_threadpool(itertools.chain([first], lines)), media_type=NDJSON
            )
        except LstmlmError as error:
            return error_response(status_of(error), str(error))
        finally:
            if not streaming:
                engine.leave()

    return route


def _trace(engine: Engine, body: dict[str, Any]) -> dict[str, Any]:
    top = field(body, "top", int, engine.limits.top_k)
    text = field(body, "text", str)
    return engine.call(lambda: payloads.trace(engine.model, text, engine.limits, top))


def _score(engine: Engine, body: dict[str, Any]) -> dict[str, Any]:
    good, bad = field(body, "good", str), field(body, "bad", str)
    what = field(body, "what", str, "")
    return engine.call(lambda: payloads.score_pair(engine.model, good, bad, engine.limits, what))


def _next(engine: Engine, body: dict[str, Any]) -> dict[str, Any]:
    k = field(body, "k", int, engine.limits.top_k)
    text = field(body, "text", str, "")
    return engine.call(lambda: payloads.next_tokens(engine.model, text, k, engine.limits))


def _generate(engine: Engine, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    prompt = field(body, "prompt", str, "")
    if prompt.strip():
        payloads.text_ids(engine.model, prompt, engine.limits, "prompt")
    most = engine.limits.max_generate
    max_tokens = field(body, "max_tokens", int, 30)
    if not 1 <= max_tokens <= most:
        raise LstmlmError(f"max_tokens must be in 1..{most} (got {max_tokens})")
    pieces = engine.model.generate(
        prompt,
        max_tokens,
        temperature=field(body, "temperature", (int, float), 1.0),
        top_k=field(body, "top_k", int, 0),
        top_p=field(body, "top_p", (int, float), 1.0),
        seed=field(body, "seed", int, 0),
        stream=True,
    )
    return _generation(prompt, pieces)


def _generation(prompt: str, pieces: Iterator[str]) -> Iterator[dict[str, Any]]:
    text = prompt
    for piece in pieces:
        text += piece
        yield {"piece": piece}
    yield {"done": True, "text": text}


def _search(engine: Engine, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    pattern = _pattern(engine, body)
    split = field(body, "split", str, "valid")
    if split not in engine.info["splits"]:
        raise LstmlmError(f"split must be one of {', '.join(engine.info['splits'])} (got {split!r})")
    ids = split_ids(engine.model, split, pattern)  # before the stream: a missing corpus is a 400
    return search(engine.model, pattern, ids, engine.limits.search_seconds)


def _pattern(engine: Engine, body: dict[str, Any]) -> Pattern:
    layers = engine.info["layers"]
    layer = field(body, "layer", int)
    if not 0 <= layer < len(layers):
        raise LstmlmError(f"layer must be in 0..{len(layers) - 1} (got {layer})")
    widths = {q["name"]: q["width"] for q in layers[layer]["quantities"]}
    quantity = field(body, "quantity", str)
    if quantity not in widths:
        raise LstmlmError(f"quantity must be one of {', '.join(widths)} (got {quantity!r})")
    units = field(body, "units", list)
    if not units or any(isinstance(u, bool) or not isinstance(u, int) for u in units):
        raise LstmlmError("units must be a non-empty list of unit numbers")
    if not all(0 <= u < widths[quantity] for u in units):
        raise LstmlmError(f"units must be in 0..{widths[quantity] - 1} for {quantity}")
    min_length, limit = field(body, "min_length", int, 1), field(body, "limit", int, 20)
    if not 1 <= min_length <= engine.limits.max_tokens or not 1 <= limit <= 200:
        raise LstmlmError("min_length must be in 1..max_tokens and limit in 1..200")
    threshold = field(body, "threshold", (int, float))
    return Pattern(layer, quantity, tuple(units), float(threshold), min_length, limit)


ROUTES: dict[str, Handler] = {
    "/api/trace": _trace,
    "/api/score": _score,
    "/api/next": _next,
    "/api/generate": _generate,
    "/api/search": _search,
}


def create_app(model: Model, info: dict[str, Any], page: str, limits: Limits) -> Starlette:
    """The app: ``GET /`` the page, ``GET /api/info``, and the POST endpoints of ``ROUTES``."""
    engine = Engine(model, limits, info)

    async def index(request: Request) -> Response:
        return HTMLResponse(page)

    async def run_info(request: Request) -> Response:
        return JSONResponse(info)

    async def http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        return error_response(error.status_code, str(error.detail))

    async def internal_error(request: Request, error: Exception) -> Response:
        return error_response(500, internal(error))

    routes = [Route("/", index), Route("/api/info", run_info)]
    routes += [Route(path, endpoint(engine, handler), methods=["POST"]) for path, handler in ROUTES.items()]
    handlers = {HTTPException: http_error, Exception: internal_error}
    return Starlette(routes=routes, exception_handlers=handlers)


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound and listening on ``host:port`` (port 0: a free one), or one line why not."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(64)
    except OSError as error:
        raise LstmlmError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


@contextlib.contextmanager
def serving(app: Starlette, sock: socket.socket, *, timeout: float = 20.0) -> Iterator[str]:
    """``app`` served in a background thread (no signal handling there) while the block runs;
    yields its URL. For tests, benchmarks and notebooks; the command uses ``serve``."""
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise LstmlmError("the view's server did not start")
        time.sleep(0.02)
    try:
        yield url_of(sock)
    finally:
        server.should_exit = True
        thread.join(timeout)


def serve(app: Starlette, sock: socket.socket) -> None:
    """Serve until SIGINT or SIGTERM, then return (open streams get 2 s to finish)."""
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            """uvicorn's own handling, less its raising the signal again once stopped: the
            command then reports "stopped" and exits 0, as a server stopped on purpose."""
            stops = (signal.SIGINT, signal.SIGTERM)
            previous = {signum: signal.signal(signum, self.handle_exit) for signum in stops}
            try:
                yield
            finally:
                for signum, handler in previous.items():
                    signal.signal(signum, handler)

    config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=2)
    Server(config).run(sockets=[sock])
