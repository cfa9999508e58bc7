#!/usr/bin/env python3
"""A hostile site for bench/hostile.sh: answers every request on 127.0.0.1 with a huge or
endless body, and prints its port. Modes: length (Content-Length 2 GiB, then the bytes),
close (2 GiB ending with the connection, no length), chunked (chunks until the client goes).
Never touches anything but loopback; ends when the parent closes its stdin."""
import os, socket, sys, threading

mode = sys.argv[1]
TOTAL = 2 * 1024**3
BLOCK = b"[" * (1 << 16)

def serve(conn):
    try:
        conn.settimeout(120)
        buf = b""
        while b"\r\n\r\n" not in buf:
            got = conn.recv(65536)
            if not got:
                return
            buf += got
        if mode == "length":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % TOTAL)
        elif mode == "close":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n")
        else:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        sent = 0
        # The endless one is bounded too (8 GiB): every load loop here is.
        limit = TOTAL if mode != "chunked" else 4 * TOTAL
        while sent < limit:
            if mode == "chunked":
                conn.sendall(b"%x\r\n" % len(BLOCK) + BLOCK + b"\r\n")
            else:
                conn.sendall(BLOCK)
            sent += len(BLOCK)
    except OSError:
        pass
    finally:
        conn.close()

s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(64)
print(s.getsockname()[1], flush=True)
# Ends (with its connections) when the parent closes our stdin.
threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
count = 0
while count < 1000:
    try:
        c, _ = s.accept()
    except OSError:
        break
    count += 1
    threading.Thread(target=serve, args=(c,), daemon=True).start()
