#!/usr/bin/env python3
"""Sends N HTTP/1.1 keep-alive GETs to HOST:PORT over C connections (one request in flight
per connection, like wrk), checking every status is 200. Deterministic request count, for
per-request counts (allocations, callgrind instructions) taken around it. With `close`, each
request gets a connection of its own (`Connection: close`, read to the end), C at a time.

usage: keepalive_client.py HOST PORT N C [close]"""
import socket
import sys

host, port, n, c = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
close = sys.argv[5:] == ["close"]
if close:
    req = f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode()
    sent = 0
    while sent < n:
        batch = [socket.create_connection((host, port)) for _ in range(min(c, n - sent))]
        for s in batch:
            s.sendall(req)
        for s in batch:
            data = b""
            while chunk := s.recv(65536):
                data += chunk
            if not data.startswith(b"HTTP/1.1 200"):
                sys.exit(f"unexpected answer: {data[:40]!r}")
            s.close()
        sent += len(batch)
    sys.exit(0)
req = f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
conns = [socket.create_connection((host, port)) for _ in range(c)]
bufs = [b""] * c


def read_response(i):
    s = conns[i]
    data = bufs[i]
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            sys.exit("connection closed")
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    if not head.startswith(b"HTTP/1.1 200"):
        sys.exit(f"unexpected answer: {head[:40]!r}")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    while len(rest) < length:
        rest += s.recv(65536)
    bufs[i] = rest[length:]


sent = 0
while sent < n:
    batch = min(c, n - sent)
    for i in range(batch):
        conns[i].sendall(req)
    for i in range(batch):
        read_response(i)
    sent += batch
