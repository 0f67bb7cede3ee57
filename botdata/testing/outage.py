"""A loopback TCP proxy in front of Redis that the tests can cut: a real outage for one handle.

The plugin connects the PostgreSQL + Redis backend's handle to Redis through a
:class:`RedisProxy`. While :meth:`RedisProxy.cut` is in force, every connection through it is
closed and new ones are closed as soon as they are accepted: the handle's cache sees Redis
refuse it, exactly as when Redis goes away, while Redis itself (shared with other processes)
is untouched.

The proxy runs on an event loop in a thread of its own, so that a test's blocking Redis client
reaching Redis through it (the handle's ``REDIS_URL``) is answered while the test's own loop
waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

T = TypeVar("T")


class RedisProxy:
    """Forwards loopback connections to the Redis at ``target`` (a ``redis://`` URL)."""

    def __init__(self, target: str) -> None:
        self.target = target
        parts = urlsplit(target)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 6379
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._down = False

    @property
    def url(self) -> str:
        """The ``redis://`` URL to connect to instead of the target (same database, password).

        Raises RuntimeError before :meth:`start`."""
        if self._server is None:
            raise RuntimeError("the proxy is not started")
        port = self._server.sockets[0].getsockname()[1]
        parts = urlsplit(self.target)
        auth = parts.netloc.rpartition("@")[0]
        netloc = f"{auth}@127.0.0.1:{port}" if auth else f"127.0.0.1:{port}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))

    def start(self) -> None:
        """Listen on a free loopback port (in a new thread)."""
        loop = self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=loop.run_forever, name="botdata-redis-proxy", daemon=True
        )
        self._thread.start()
        self._server = self._run(asyncio.start_server(self._accept, "127.0.0.1", 0))

    def stop(self) -> None:
        """Stop listening, close every connection and end the thread."""
        if self._loop is None or self._thread is None:
            return
        self._run(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
        self._loop = self._thread = None

    def cut(self) -> None:
        """Start the outage: close every connection; refuse new ones until :meth:`restore`.
        Returns once the connections are closed."""
        self._run(self._set_down(True))

    def restore(self) -> None:
        """End the outage: forward new connections again."""
        self._run(self._set_down(False))

    def _run(self, work: Coroutine[Any, Any, T]) -> T:
        assert self._loop is not None, "the proxy is not started"
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(timeout=10)

    async def _set_down(self, down: bool) -> None:
        self._down = down
        if down:
            self._drop_connections()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
            self._drop_connections()
            await self._server.wait_closed()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _drop_connections(self) -> None:
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._down:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(self._host, self._port)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(source, sink))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        """Copy ``source`` to ``sink`` until either closes; then close ``sink``."""
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while chunk := await source.read(65536):
                sink.write(chunk)
                await sink.drain()
        sink.close()
        self._writers.discard(sink)
