#!/usr/bin/env python3
"""The two sides of the load balancer tests, each run in its own namespace.

backend NAME      serve on every address: HTTP on 80 (answers NAME), a line
                  echo on TCP 7 (answers "NAME LINE"), UDP on 9 (answers NAME).
http VIP N        N HTTP requests, each on a new connection; prints the
                  backend count per name as JSON.
udp VIP N [ROUNDS] N UDP flows (distinct source ports), ROUNDS rounds each;
                  prints, per flow, the backends it saw, as JSON.
stream VIP SECS   one TCP connection to VIP:7, a line every 2 ms for SECS;
                  prints sent, answered, backends, the longest gap between
                  answers and whether the connection broke.
junk IFACE DSTMAC SRCMAC SRC VIP N
                  N each of malformed frames to the VIP over AF_PACKET:
                  IPv4 fragments, truncated IPv4, and an unknown protocol.
"""
import json
import socket
import socketserver
import struct
import sys
import threading
import time
import http.server

NAME = "?"


class Http(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = NAME.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Echo(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile:
            self.wfile.write(NAME.encode() + b" " + line)


class Threaded(socketserver.ThreadingMixIn, socketserver.TCPServer):
    allow_reuse_address = True
    daemon_threads = True


class ThreadedHttp(socketserver.ThreadingMixIn, http.server.HTTPServer):
    allow_reuse_address = True
    daemon_threads = True


def backend(name):
    global NAME
    NAME = name
    servers = [ThreadedHttp(("0.0.0.0", 80), Http), Threaded(("0.0.0.0", 7), Echo)]
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("0.0.0.0", 9))
    print("ready", flush=True)
    while True:
        _, peer = udp.recvfrom(2048)
        udp.sendto(name.encode(), peer)


def http_requests(vip, n):
    counts = {}
    failures = 0
    for _ in range(n):
        try:
            with socket.create_connection((vip, 80), timeout=2) as s:
                s.sendall(b"GET / HTTP/1.0\r\nHost: vip\r\n\r\n")
                data = b""
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            name = data.split(b"\r\n\r\n", 1)[1].decode()
            counts[name] = counts.get(name, 0) + 1
        except OSError:
            failures += 1
    print(json.dumps({"counts": counts, "failures": failures}))


def udp_flows(vip, n, rounds):
    socks = []
    for i in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("0.0.0.0", 20000 + i))
        s.settimeout(1)
        socks.append(s)
    seen = [[] for _ in range(n)]
    for _ in range(rounds):
        for i, s in enumerate(socks):
            for attempt in range(3):
                try:
                    s.sendto(b"x", (vip, 9))
                    seen[i].append(s.recvfrom(2048)[0].decode())
                    break
                except socket.timeout:
                    continue
    print(json.dumps({"flows": seen}))


def stream(vip, seconds):
    s = socket.create_connection((vip, 7), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.settimeout(0.001)
    start = time.monotonic()
    last_answer = start
    longest = 0.0
    sent = answered = 0
    backends = set()
    broke = None
    buf = b""
    next_send = start
    while time.monotonic() - start < seconds:
        now = time.monotonic()
        if now >= next_send:
            try:
                s.sendall(b"ping %d\n" % sent)
                sent += 1
            except OSError as e:
                broke = str(e)
                break
            next_send += 0.002
        try:
            chunk = s.recv(65536)
            if not chunk:
                broke = "closed by the peer"
                break
            buf += chunk
        except socket.timeout:
            continue
        except OSError as e:
            broke = str(e)
            break
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            backends.add(line.split(b" ", 1)[0].decode())
            answered += 1
            t = time.monotonic()
            longest = max(longest, t - last_answer)
            last_answer = t
    print(json.dumps({"sent": sent, "answered": answered, "backends": sorted(backends),
                      "longest_gap_ms": longest * 1e3, "broke": broke}))


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xffff) + (total >> 16)
    return ~total & 0xffff


def ipv4(src, dst, proto, payload, flags_fragment=0, total=None):
    total = total if total is not None else 20 + len(payload)
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 1, flags_fragment, 64, proto, 0,
                         socket.inet_aton(src), socket.inet_aton(dst))
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return header + payload


def junk(iface, dst_mac, src_mac, src, vip, n):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    eth = bytes.fromhex(dst_mac.replace(":", "")) + bytes.fromhex(src_mac.replace(":", "")) + b"\x08\x00"
    udp = struct.pack("!HHHH", 40000, 9, 16, 0) + b"fragment"
    frames = [
        eth + ipv4(src, vip, 17, udp, flags_fragment=0x2000),            # first fragment, more to come
        eth + ipv4(src, vip, 17, b"tail of it", flags_fragment=0x0003),   # a later fragment
        eth + ipv4(src, vip, 17, udp, total=400),                         # claims more than it carries
        eth + ipv4(src, vip, 47, b"\0\0\x08\x00" + b"gre"),               # GRE: not TCP or UDP
    ]
    for _ in range(n):
        for f in frames:
            s.send(f.ljust(60, b"\0"))
    print(json.dumps({"sent": n * len(frames)}))


def main():
    cmd = sys.argv[1]
    if cmd == "backend":
        backend(sys.argv[2])
    elif cmd == "http":
        http_requests(sys.argv[2], int(sys.argv[3]))
    elif cmd == "udp":
        udp_flows(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else 1)
    elif cmd == "stream":
        stream(sys.argv[2], float(sys.argv[3]))
    elif cmd == "junk":
        junk(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6], int(sys.argv[7]))


if __name__ == "__main__":
    main()
