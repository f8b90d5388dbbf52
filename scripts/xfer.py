#!/usr/bin/env python3
"""Bulk TCP transfers with sha256 on both ends (lab tests and demo).

  xfer.py sink PORT                 accept one connection, read to EOF, print "BYTES SHA256"
  xfer.py send HOST PORT BYTES      connect, send BYTES deterministic bytes, print "BYTES SHA256"
  xfer.py serve PORT BYTES          accept one connection, send BYTES, close, print "BYTES SHA256"
  xfer.py recv HOST PORT            connect, read to EOF, print "BYTES SHA256"
  xfer.py echo-client HOST PORT BYTES  send BYTES while reading the echo; print "BYTES SHA256" if equal, exit 1 if not
  xfer.py echo-server PORT          accept one connection, echo to EOF, close
Add --mptcp to use IPPROTO_MPTCP (262).
"""
import hashlib, socket, sys

CHUNK = 1 << 16

def pattern():
    # deterministic, non-repeating at chunk granularity
    h = hashlib.sha256(b"hagw").digest()
    block = bytearray()
    while len(block) < CHUNK:
        h = hashlib.sha256(h).digest()
        block += h
    return bytes(block[:CHUNK])

def sock(mptcp):
    proto = 262 if mptcp else 0
    return socket.socket(socket.AF_INET, socket.SOCK_STREAM, proto)

def send_all(s, n):
    h = hashlib.sha256()
    blk = pattern()
    left = n
    i = 0
    while left:
        b = blk[: min(left, CHUNK)]
        # vary each chunk so that misordered chunks change the digest
        b = bytes([i & 0xff]) + b[1:] if b else b
        s.sendall(b)
        h.update(b)
        left -= len(b)
        i += 1
    return h.hexdigest()

def recv_all(s):
    h = hashlib.sha256()
    n = 0
    while True:
        b = s.recv(1 << 20)
        if not b:
            break
        h.update(b)
        n += len(b)
    return n, h.hexdigest()

def listen(port, mptcp):
    l = sock(mptcp)
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind(("0.0.0.0", port))
    l.listen(8)
    print("listening", flush=True, file=sys.stderr)
    c, _ = l.accept()
    return c

def main():
    args = [a for a in sys.argv[1:] if a != "--mptcp"]
    mptcp = "--mptcp" in sys.argv
    cmd = args[0]
    if cmd == "sink":
        c = listen(int(args[1]), mptcp)
        n, d = recv_all(c)
        print(n, d)
    elif cmd == "serve":
        c = listen(int(args[1]), mptcp)
        n = int(args[2])
        d = send_all(c, n)
        c.shutdown(socket.SHUT_WR)
        c.recv(1)
        print(n, d)
    elif cmd == "send":
        s = sock(mptcp)
        s.settimeout(60)
        s.connect((args[1], int(args[2])))
        n = int(args[3])
        d = send_all(s, n)
        s.shutdown(socket.SHUT_WR)
        s.recv(1)
        print(n, d)
    elif cmd == "recv":
        s = sock(mptcp)
        s.settimeout(60)
        s.connect((args[1], int(args[2])))
        n, d = recv_all(s)
        print(n, d)
    elif cmd == "echo-client":
        import threading
        s = sock(mptcp)
        s.settimeout(120)
        s.connect((args[1], int(args[2])))
        n = int(args[3])
        out = {}
        def sender():
            out["d"] = send_all(s, n)
            s.shutdown(socket.SHUT_WR)
        t = threading.Thread(target=sender)
        t.start()
        got, d = recv_all(s)
        t.join()
        if got != n or d != out.get("d"):
            print("MISMATCH sent", n, out.get("d"), "echoed", got, d)
            sys.exit(1)
        print(n, d)
    elif cmd == "echo-server":
        c = listen(int(args[1]), mptcp)
        while True:
            b = c.recv(1 << 20)
            if not b:
                break
            c.sendall(b)
        c.shutdown(socket.SHUT_WR)
        print("echoed", flush=True)
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)

if __name__ == "__main__":
    main()
