#!/usr/bin/env python3
"""Opens N keep-alive HTTP/1.1 connections to HOST:PORT, sends one request on each, reads the
response, then holds them idle until stdin closes or HOLD seconds pass.

usage: idle_conns.py HOST PORT N HOLD_SECONDS
Prints "ready <n>" once every connection got its response."""
import socket
import sys
import time

host, port, n, hold = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
socks = []
req = f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: keep-alive\r\n\r\n".encode()
for _ in range(n):
    s = socket.create_connection((host, port))
    s.sendall(req)
    socks.append(s)
ok = 0
for s in socks:
    s.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    if data.startswith(b"HTTP/1.1 200"):
        ok += 1
print(f"ready {ok}", flush=True)
time.sleep(hold)
