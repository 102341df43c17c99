#!/usr/bin/env python3
"""Hostile clients for bench/serve.sh: holds TRICKLE connections that send a request's headers one byte a
second (never finishing them) and IDLE keep-alive connections (one request answered, then silence) open to
127.0.0.1:PORT for SECONDS. A connection the server closes is counted and opened again at once, so that the
pressure stays the same for the whole run. Prints one JSON line with the counts.

    serve_hostile.py PORT [--trickle 1000] [--idle 1000] [--seconds 30]
"""
import argparse
import json
import resource
import selectors
import socket
import sys
import time

REQUEST = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
TRICKLE_HEAD = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--trickle", type=int, default=1000)
    parser.add_argument("--idle", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = args.trickle + args.idle + 64
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))

    sel = selectors.DefaultSelector()
    counts = {"trickle_opened": 0, "idle_opened": 0, "trickle_closed_by_server": 0, "idle_closed_by_server": 0,
              "refused_503": 0, "connect_errors": 0, "idle_unanswered": 0}

    def open_one(kind):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.connect(("127.0.0.1", args.port))
        except OSError:
            counts["connect_errors"] += 1
            s.close()
            return
        if kind == "idle":
            # A keep-alive connection: one request, its reply read, then nothing.
            s.settimeout(10)
            try:
                s.sendall(REQUEST)
                reply = s.recv(65536)
            except OSError:
                reply = b""
            if reply.startswith(b"HTTP/1.1 503"):
                counts["refused_503"] += 1
            elif not reply.startswith(b"HTTP/1.1 200"):
                counts["idle_unanswered"] += 1
        else:
            try:
                s.sendall(TRICKLE_HEAD)
            except OSError:
                pass
        s.setblocking(False)
        counts[kind + "_opened"] += 1
        sel.register(s, selectors.EVENT_READ, kind)

    for _ in range(args.trickle):
        open_one("trickle")
    for _ in range(args.idle):
        open_one("idle")
    print("opened", file=sys.stderr, flush=True)
    opened_at = time.monotonic()
    end = opened_at + args.seconds
    next_byte = time.monotonic()
    while True:
        now = time.monotonic()
        if now >= end:
            break
        if now >= next_byte:
            # One more header byte on every trickling connection.
            for key in list(sel.get_map().values()):
                if key.data == "trickle":
                    try:
                        key.fileobj.send(b"x")
                    except OSError:
                        pass
            next_byte += 1.0
        for key, _ in sel.select(timeout=max(0.0, min(next_byte, end) - time.monotonic())):
            s = key.fileobj
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            if data.startswith(b"HTTP/1.1 503"):
                counts["refused_503"] += 1
            if data:
                continue  # a reply the server sent before closing; the close comes next
            sel.unregister(s)
            s.close()
            counts[key.data + "_closed_by_server"] += 1
            open_one(key.data)
    held = len(sel.get_map())
    for key in list(sel.get_map().values()):
        key.fileobj.close()
    counts["open_at_end"] = held
    counts["seconds"] = round(time.monotonic() - opened_at, 1)
    print(json.dumps(counts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
