#!/usr/bin/env python3
"""Paced keep-alive HTTP/1.1 load for bench/deploy.sh, standard library only.

Keeps `--conns` keep-alive connections sending `GET /` at `--rate` requests
per second in all, plus `--slow` connections that always have one
`GET /slow?ms=N` in flight, so every cutover happens with long requests open.
It runs until SIGTERM or SIGINT (or `--duration` seconds), then stops sending,
lets the requests in flight finish and writes one JSON summary to `--out`:

  requests, ok (2xx), non_2xx, socket_errors, slow_ok, slow_failed,
  duration_s, rate, versions {body: count}, first_non_2xx_ms (unix ms),
  non_2xx_ms [unix ms of every non-2xx, capped], errors [first few, with times].

A socket error is anything that is not a complete response to a request that
was sent: a refused or reset connection, a connection closed before or in the
middle of a response, a malformed response, or no response within
`--timeout` seconds. A connection the server closes *between* requests (after
`Connection: close` or while idle) is reopened and is not an error.
"""

import argparse
import asyncio
import json
import signal
import sys
import time

MAX_TIMESTAMPS = 200_000
MAX_ERRORS = 20


def now_ms() -> int:
    """Wall-clock unix time in milliseconds, comparable with the server's event times."""
    return time.time_ns() // 1_000_000


class Stats:
    """Counters shared by every connection."""

    def __init__(self) -> None:
        self.requests = 0
        self.ok = 0
        self.non_2xx = 0
        self.socket_errors = 0
        self.slow_ok = 0
        self.slow_failed = 0
        self.versions: dict[str, int] = {}
        self.statuses: dict[str, int] = {}
        self.non_2xx_ms: list[int] = []
        self.errors: list[dict] = []

    def error(self, kind: str, detail: str, slow: bool) -> None:
        self.requests += 1
        self.socket_errors += 1
        if slow:
            self.slow_failed += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append({"at": now_ms(), "kind": kind, "detail": detail, "slow": slow})

    def response(self, status: int, body: bytes, slow: bool) -> None:
        self.requests += 1
        key = str(status)
        self.statuses[key] = self.statuses.get(key, 0) + 1
        if 200 <= status < 300:
            self.ok += 1
            if slow:
                self.slow_ok += 1
            else:
                version = body.decode("utf-8", "replace").strip()[:32]
                self.versions[version] = self.versions.get(version, 0) + 1
        else:
            self.non_2xx += 1
            if slow:
                self.slow_failed += 1
            if len(self.non_2xx_ms) < MAX_TIMESTAMPS:
                self.non_2xx_ms.append(now_ms())


class ProtocolError(Exception):
    """The peer sent something that is not an HTTP/1.1 response."""


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """Reads one response: (status, body, whether the server closes the connection)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise ProtocolError(f"bad status line {lines[0][:60]!r}")
    status = int(parts[1])
    length = None
    chunked = False
    close = parts[0] == b"HTTP/1.0"
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        value = value.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value:
            chunked = True
        elif name == b"connection":
            close = value == b"close"
    if chunked:
        body = bytearray()
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                # Trailers, if any, end with an empty line.
                while await reader.readuntil(b"\r\n") != b"\r\n":
                    pass
                break
            body += await reader.readexactly(size)
            await reader.readexactly(2)
        return status, bytes(body), close
    if length is None:
        if status in (204, 304) or 100 <= status < 200:
            return status, b"", close
        # No framing: the body runs to the end of the connection.
        return status, await reader.read(), True
    return status, await reader.readexactly(length), close


class Connection:
    """One keep-alive client connection, reopened whenever the server closes it."""

    def __init__(self, host: str, port: int, timeout: float, stats: Stats) -> None:
        self.host, self.port, self.timeout, self.stats = host, port, timeout, stats
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    def drop(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(self, path: str, slow: bool) -> bool:
        """Sends one GET and records its outcome; whether a response came back."""
        if self.writer is None:
            try:
                self.reader, self.writer = await asyncio.wait_for(
                    asyncio.open_connection(self.host, self.port), self.timeout
                )
            except (OSError, asyncio.TimeoutError) as e:
                self.stats.error("connect", repr(e), slow)
                self.drop()
                return False
        assert self.reader is not None and self.writer is not None
        request = f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n\r\n".encode()
        try:
            self.writer.write(request)
            status, body, close = await asyncio.wait_for(
                read_response(self.reader), self.timeout
            )
        except asyncio.IncompleteReadError as e:
            kind = "closed before the response" if not e.partial else "closed mid-response"
            self.stats.error(kind, f"{len(e.partial)} bytes read", slow)
            self.drop()
            return False
        except asyncio.TimeoutError:
            self.stats.error("timeout", f"no response within {self.timeout} s", slow)
            self.drop()
            return False
        except (OSError, ProtocolError, ValueError, asyncio.LimitOverrunError) as e:
            self.stats.error("io", repr(e), slow)
            self.drop()
            return False
        self.stats.response(status, body, slow)
        if close:
            self.drop()
        return True


async def paced(conn: Connection, interval: float, offset: float, stop: asyncio.Event) -> None:
    """Sends `GET /` every `interval` seconds until `stop`; catches up after a slow response."""
    loop = asyncio.get_running_loop()
    next_at = loop.time() + offset
    while not stop.is_set():
        delay = next_at - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
            if stop.is_set():
                break
        await conn.request("/", slow=False)
        next_at += interval
        # After a long stall, resume the pace instead of sending a burst.
        next_at = max(next_at, loop.time() - 1.0)
    conn.drop()


async def slow_loop(conn: Connection, path: str, stop: asyncio.Event) -> None:
    """Keeps one slow request in flight until `stop`."""
    while not stop.is_set():
        if not await conn.request(path, slow=True):
            # Do not spin on a refused connection.
            await asyncio.sleep(0.05)
    conn.drop()


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", required=True, help="host:port of the listener")
    parser.add_argument("--rate", type=float, default=2500, help="GET / per second in all")
    parser.add_argument("--conns", type=int, default=32, help="keep-alive connections for GET /")
    parser.add_argument("--slow", type=int, default=8, help="connections with a slow request in flight")
    parser.add_argument("--slow-ms", type=int, default=2000, help="duration of each slow request")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds before a request counts as failed")
    parser.add_argument("--duration", type=float, default=0, help="seconds to run (0: until SIGTERM)")
    parser.add_argument("--out", required=True, help="where to write the JSON summary")
    args = parser.parse_args()

    host, _, port = args.target.rpartition(":")
    stats = Stats()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if args.duration > 0:
        loop.call_later(args.duration, stop.set)

    interval = args.conns / args.rate
    started = time.monotonic()
    tasks = [
        asyncio.create_task(
            paced(Connection(host, int(port), args.timeout, stats), interval, interval * i / args.conns, stop)
        )
        for i in range(args.conns)
    ]
    slow_path = f"/slow?ms={args.slow_ms}"
    tasks += [
        asyncio.create_task(slow_loop(Connection(host, int(port), args.timeout, stats), slow_path, stop))
        for _ in range(args.slow)
    ]
    await stop.wait()
    stopped = time.monotonic()
    # Requests in flight (slow ones included) finish on their own.
    await asyncio.gather(*tasks)

    duration = stopped - started
    summary = {
        "requests": stats.requests,
        "ok": stats.ok,
        "non_2xx": stats.non_2xx,
        "socket_errors": stats.socket_errors,
        "slow_ok": stats.slow_ok,
        "slow_failed": stats.slow_failed,
        "duration_s": round(duration, 3),
        "rate": round(stats.requests / duration, 1) if duration > 0 else 0.0,
        "statuses": stats.statuses,
        "versions": stats.versions,
        "first_non_2xx_ms": stats.non_2xx_ms[0] if stats.non_2xx_ms else None,
        "non_2xx_ms": stats.non_2xx_ms,
        "errors": stats.errors,
    }
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(summary, f)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
