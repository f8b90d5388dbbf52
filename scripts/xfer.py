#!/usr/bin/env python3
"""Bulk TCP transfers with sha256 on both ends (lab tests and demo).

  xfer.py sink PORT                 accept one connection, read to EOF, print "BYTES SHA256"
  xfer.py send HOST PORT BYTES      connect, send BYTES deterministic bytes, print "BYTES SHA256"
  xfer.py serve PORT BYTES          accept one connection, send BYTES, close, print "BYTES SHA256"
  xfer.py recv HOST PORT            connect, read to EOF, print "BYTES SHA256"
                                    (--pause: wait 1.5 s before reading)
  xfer.py echo-client HOST PORT BYTES  send BYTES while reading the echo; print "BYTES SHA256" if equal, exit 1 if not
  xfer.py echo-server PORT          accept one connection, echo to EOF, close
  xfer.py many-server PORT          accept connections forever, echo each to EOF (a thread each)
  xfer.py many-client HOST PORT COUNT PARALLEL BYTES
                                    COUNT connections, PARALLEL at a time, each echoing BYTES;
                                    print "ok COUNT", exit 1 on any failure
  xfer.py refused HOST PORT         connect; expect a RST; print the milliseconds it took
  xfer.py unreachable HOST PORT     connect; expect it to fail on an ICMP error; print the error's
                                    name and the milliseconds it took ("EHOSTUNREACH 3")
  xfer.py abort-server PORT BYTES   accept one connection, send BYTES, then abort it (SO_LINGER 0:
                                    a RST; on an MPTCP socket an MP_FASTCLOSE); print "aborted"
  xfer.py abort-client HOST PORT BYTES
                                    connect, send BYTES, then abort as abort-server does
  xfer.py until-reset HOST PORT     connect, read until the connection ends; print "reset N"
                                    (N bytes read first), "eof N" or "timeout N" (10 s)
  xfer.py sink-until-reset PORT     accept one connection, read as until-reset does
  xfer.py synflood HOST PORT COUNT  COUNT MP_CAPABLE SYNs from spoofed sources (192.0.2.100-199,
                                    raw socket, root); print "sent COUNT"
  xfer.py joinflood HOST PORT COUNT as synflood, MP_JOIN SYNs with random tokens
  xfer.py ptb HOST PORT GW IFACE MTU [--v6]
                                    read to EOF like recv --mptcp while watching IFACE (AF_PACKET,
                                    root): the first TCP segment from GW longer than MTU is
                                    answered with an ICMPv6 Packet Too Big (GW an IPv6 address:
                                    --v6 lets that subflow join) or an ICMP fragmentation needed
                                    (GW IPv4) naming MTU; print "BYTES SHA256 ptb P over O", O:
                                    segments from GW over MTU that arrived (kernel timestamp) more
                                    than 0.5 s after it
  xfer.py udp-echo PORT             echo UDP datagrams until 3 s pass without one (after the
                                    first); print "echoed N ttl T..." (the TTLs they arrived with)
  xfer.py udp-client HOST PORT COUNT SIZE
                                    COUNT numbered datagrams of SIZE bytes, paced; print
                                    "sent COUNT echoed M ttl T..." (echoes with the payload sent)
  xfer.py udp-roundtrips HOST PORT COUNT SIZE
                                    COUNT numbered datagrams of SIZE bytes one at a time, each
                                    sent again (3 tries, 1 s apart) until its echo is back; print
                                    "sent COUNT echoed M tries T" (a lossy path costs tries only)
  xfer.py udp-refused HOST PORT     send a datagram to a closed port; expect the ICMP port
                                    unreachable (ECONNREFUSED); print the milliseconds it took
Add --mptcp to use IPPROTO_MPTCP (262); --v6 makes the client socket dual-stack
(AF_INET6, IPv4 as ::ffff:a.b.c.d) so the kernel may add IPv6 subflows;
--from ADDR binds the client's socket to source address ADDR.
Servers print "peer ADDRESS" on stderr for every connection they accept
(udp-echo: for every new source address).
"""
import hashlib, socket, struct, sys, time

CHUNK = 1 << 16

_PATTERN = []

def pattern():
    # deterministic, non-repeating at chunk granularity; built once
    if _PATTERN:
        return _PATTERN[0]
    h = hashlib.sha256(b"hagw").digest()
    block = bytearray()
    while len(block) < CHUNK:
        h = hashlib.sha256(h).digest()
        block += h
    _PATTERN.append(bytes(block[:CHUNK]))
    return _PATTERN[0]

V6 = "--v6" in sys.argv
# --from ADDR: the clients' source address
FROM = sys.argv[sys.argv.index("--from") + 1] if "--from" in sys.argv[:-1] else None

def bind_from(s):
    if FROM is not None:
        s.bind((FROM, 0))
    return s

def sock(mptcp):
    proto = 262 if mptcp else 0
    fam = socket.AF_INET6 if V6 else socket.AF_INET
    return socket.socket(fam, socket.SOCK_STREAM, proto)

def addr(host, port):
    if V6 and ":" not in host:
        host = "::ffff:" + host
    return (host, port)

def connect(host, port, mptcp, timeout=30):
    s = bind_from(sock(mptcp))
    s.settimeout(timeout)
    s.connect(addr(host, port))
    return s

def failed_connect(host, port, mptcp):
    """Connect, expecting a failure: its errno name and the milliseconds
    it took; exits 1 when it connects or times out."""
    import errno
    t = time.monotonic()
    try:
        connect(host, port, mptcp)
    except socket.timeout:
        print("timeout")
        sys.exit(1)
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno)), int((time.monotonic() - t) * 1000)
    print("connected")
    sys.exit(1)

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

# Listeners stay open until the process exits: an MPTCP client's MP_JOIN
# SYNs arrive at the listening socket (RFC 8684 §3.2), so closing it once
# accept() returned resets a join still in its handshake (the kernel drops
# the listener's pending requests and answers the third ACK with a RST).
LISTENERS = []

def listen(port, mptcp):
    l = sock(mptcp)
    LISTENERS.append(l)
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind(("0.0.0.0", port))
    l.listen(8)
    print("listening", flush=True, file=sys.stderr)
    c, peer = l.accept()
    print("peer", peer[0], flush=True, file=sys.stderr)
    return c

def many_server(port, mptcp):
    import threading
    l = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262 if mptcp else 0)
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind(("0.0.0.0", port))
    l.listen(1024)
    print("listening", flush=True, file=sys.stderr)
    def serve(c):
        try:
            while True:
                b = c.recv(1 << 16)
                if not b:
                    break
                c.sendall(b)
            c.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        finally:
            c.close()
    while True:
        c, peer = l.accept()
        print("peer", peer[0], flush=True, file=sys.stderr)
        threading.Thread(target=serve, args=(c,), daemon=True).start()

def many_client(host, port, count, parallel, nbytes, mptcp):
    import threading
    failures = []
    def one(i):
        try:
            s = connect(host, port, mptcp)
            data = bytes([(i + k) & 0xff for k in range(nbytes)])
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            got = bytearray()
            while True:
                b = s.recv(1 << 16)
                if not b:
                    break
                got += b
            s.close()
            if bytes(got) != data:
                failures.append((i, "echo differs (%d bytes)" % len(got)))
        except OSError as e:
            failures.append((i, str(e)))
    done = 0
    while done < count:
        batch = [threading.Thread(target=one, args=(done + k,)) for k in range(min(parallel, count - done))]
        for t in batch:
            t.start()
        for t in batch:
            t.join()
        done += len(batch)
    if failures:
        print("FAILED", len(failures), "of", count, failures[:5])
        sys.exit(1)
    print("ok", count)

def abort(s, n):
    send_all(s, n)
    # let the bytes reach the peer before the connection is torn down
    time.sleep(0.5)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    print("aborted", flush=True)

def read_until_end(s):
    s.settimeout(10)
    n = 0
    try:
        while True:
            b = s.recv(1 << 20)
            if not b:
                print("eof", n)
                return
            n += len(b)
    except ConnectionResetError:
        print("reset", n)
    except socket.timeout:
        print("timeout", n)

def ptb(host, port, gwa, iface, mtu):
    import threading
    v6 = ":" in gwa
    etype = 0x86DD if v6 else 0x0800
    sniff = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(etype))
    sniff.bind((iface, etype))
    sniff.settimeout(0.2)
    # arrival times from the kernel: this loop may lag behind the frames
    ts_opt = getattr(socket, "SO_TIMESTAMPNS", 35)
    sniff.setsockopt(socket.SOL_SOCKET, ts_opt, 1)
    gw = socket.inet_pton(socket.AF_INET6 if v6 else socket.AF_INET, gwa)
    s = connect(host, port, True, 60)
    out = {}
    def reader():
        out["r"] = recv_all(s)
    t = threading.Thread(target=reader)
    t.start()
    sent_at, over = None, 0
    while t.is_alive():
        try:
            f, anc, _, _ = sniff.recvmsg(65535, 64)
        except socket.timeout:
            continue
        at = time.time()
        for level, kind, val in anc:
            if level == socket.SOL_SOCKET and kind == ts_opt and len(val) >= 16:
                sec, nsec = struct.unpack("qq", val[:16])
                at = sec + nsec / 1e9
        ip = f[14:]
        if v6 and (len(ip) < 60 or ip[6] != 6 or ip[8:24] != gw):
            continue
        if not v6 and (len(ip) < 40 or ip[9] != 6 or ip[12:16] != gw):
            continue
        if len(ip) <= mtu:
            continue
        if sent_at is None:
            if v6:
                # RFC 4443 3.2: as much of the invoking packet as fits in
                # the minimum MTU; the kernel fills in the checksum
                raw = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
                msg = bytes([2, 0, 0, 0]) + struct.pack("!I", mtu) + ip[:1280 - 48]
            else:
                # RFC 1191 4: type 3 code 4, the next-hop MTU in the low
                # 16 bits of the second word; the IP header and 8 bytes
                raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
                body = struct.pack("!HH", 0, mtu) + ip[:(ip[0] & 0x0f) * 4 + 8]
                msg = bytes([3, 4]) + struct.pack("!H", csum16(bytes([3, 4, 0, 0]) + body)) + body
            raw.sendto(msg, (gwa, 0))
            sent_at = time.time()
        elif at - sent_at > 0.5:
            over += 1
    t.join()
    n, d = out["r"]
    print(n, d, "ptb", int(sent_at is not None), "over", over)

def csum16(b):
    if len(b) % 2:
        b += b"\0"
    t = sum(int.from_bytes(b[i:i + 2], "big") for i in range(0, len(b), 2))
    while t > 0xffff:
        t = (t & 0xffff) + (t >> 16)
    return (~t) & 0xffff

def synflood(host, port, count, join=False):
    """MP_CAPABLE v1 SYNs (RFC 8684 3.1) from spoofed sources, as a flood
    would send them: nobody answers their SYN/ACKs. With `join`, MP_JOIN
    SYNs (RFC 8684 3.2) naming random tokens instead."""
    import random
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    raw.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
    dst = socket.inet_aton(host)
    rnd = random.Random(7)
    for k in range(count):
        src = socket.inet_aton("192.0.2.%d" % (100 + k % 100))
        sport = 20000 + k
        # MSS 1460, SACK permitted, MP_CAPABLE v1 (flags: H), padding;
        # or MP_JOIN (address id 1, a random token and nonce), padding
        if join:
            opts = (bytes([2, 4, 0x05, 0xb4, 4, 2, 30, 12, 0x10, 1])
                    + rnd.getrandbits(64).to_bytes(8, "big") + bytes([1, 1]))
        else:
            opts = bytes([2, 4, 0x05, 0xb4, 4, 2, 30, 4, 0x01, 0x01, 1, 1])
        off = (20 + len(opts)) // 4
        tcp = struct.pack("!HHIIBBHHH", sport, port, rnd.getrandbits(32), 0,
                          off << 4, 0x02, 64240, 0, 0) + opts
        pseudo = src + dst + struct.pack("!BBH", 0, 6, len(tcp))
        tcp = tcp[:16] + struct.pack("!H", csum16(pseudo + tcp)) + tcp[18:]
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), k & 0xffff, 0,
                         64, 6, 0, src, dst)
        ip = ip[:10] + struct.pack("!H", csum16(ip)) + ip[12:]
        raw.sendto(ip + tcp, (host, 0))
    print("sent", count)

# Linux's values (Python's socket module lacks IP_RECVTTL)
IP_RECVTTL = getattr(socket, "IP_RECVTTL", 12)

def recv_ttl(s):
    """One datagram with the TTL it arrived with (IP_RECVTTL)."""
    data, anc, _, peer = s.recvmsg(65536, socket.CMSG_SPACE(4))
    ttl = None
    for level, kind, val in anc:
        if level == socket.IPPROTO_IP and kind == socket.IP_TTL:
            ttl = int.from_bytes(val[:4], sys.byteorder)
    return data, ttl, peer

def udp_payload(i, size):
    blk = pattern()
    return i.to_bytes(4, "big") + blk[i % 997 : i % 997 + size - 4]

def udp_echo(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
    s.bind(("0.0.0.0", port))
    n, ttls, peers = 0, set(), set()
    s.settimeout(30)
    while True:
        try:
            data, ttl, peer = recv_ttl(s)
        except socket.timeout:
            break
        s.settimeout(3)
        if peer[0] not in peers:
            peers.add(peer[0])
            print("peer", peer[0], file=sys.stderr, flush=True)
        n += 1
        ttls.add(ttl)
        s.sendto(data, peer)
    print("echoed", n, "ttl", *sorted(ttls, key=str))

def udp_refused(host, port):
    """A datagram to a closed port: the ICMP port unreachable that comes
    back makes the connected socket's next receive fail (ECONNREFUSED)."""
    s = bind_from(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    s.connect((host, port))
    s.settimeout(5)
    t = time.monotonic()
    s.send(b"anyone there?")
    try:
        s.recv(100)
        print("answered")
    except ConnectionRefusedError:
        print(int((time.monotonic() - t) * 1000))
        return
    except socket.timeout:
        print("timeout")
    sys.exit(1)

def udp_roundtrips(host, port, count, size):
    s = bind_from(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    s.connect((host, port))
    s.settimeout(1)
    got, tries = 0, 0
    for i in range(count):
        want = udp_payload(i, size)
        for _ in range(3):
            tries += 1
            s.send(want)
            try:
                while s.recv(65536) != want:
                    pass
                got += 1
                break
            except socket.timeout:
                continue
    print("sent", count, "echoed", got, "tries", tries)

def udp_client(host, port, count, size):
    s = bind_from(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    s.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
    s.connect((host, port))
    s.setblocking(False)
    got, ttls = set(), set()
    def drain():
        while True:
            try:
                data, ttl, _ = recv_ttl(s)
            except BlockingIOError:
                return
            i = int.from_bytes(data[:4], "big")
            if data == udp_payload(i, size):
                got.add(i)
                ttls.add(ttl)
    for i in range(count):
        s.send(udp_payload(i, size))
        if i % 50 == 49:
            time.sleep(0.005)
            drain()
    end = time.monotonic() + 3
    while time.monotonic() < end and len(got) < count:
        time.sleep(0.05)
        drain()
    print("sent", count, "echoed", len(got), "ttl", *sorted(ttls, key=str))

def main():
    args = [a for a in sys.argv[1:] if a not in ("--mptcp", "--v6", "--pause")]
    if "--from" in args[:-1]:
        i = args.index("--from")
        del args[i : i + 2]
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
        s = connect(args[1], int(args[2]), mptcp, 60)
        n = int(args[3])
        d = send_all(s, n)
        s.shutdown(socket.SHUT_WR)
        s.recv(1)
        print(n, d)
    elif cmd == "recv":
        s = connect(args[1], int(args[2]), mptcp, 60)
        if "--pause" in sys.argv:
            # a slow reader: the windows fill and the gateway's buffers with them
            time.sleep(1.5)
        n, d = recv_all(s)
        print(n, d)
    elif cmd == "synflood":
        synflood(args[1], int(args[2]), int(args[3]))
    elif cmd == "ptb":
        ptb(args[1], int(args[2]), args[3], args[4], int(args[5]))
    elif cmd == "joinflood":
        synflood(args[1], int(args[2]), int(args[3]), join=True)
    elif cmd == "echo-client":
        import threading
        s = connect(args[1], int(args[2]), mptcp, 120)
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
    elif cmd == "many-server":
        many_server(int(args[1]), mptcp)
    elif cmd == "many-client":
        many_client(args[1], int(args[2]), int(args[3]), int(args[4]), int(args[5]), mptcp)
    elif cmd == "udp-echo":
        udp_echo(int(args[1]))
    elif cmd == "udp-client":
        udp_client(args[1], int(args[2]), int(args[3]), int(args[4]))
    elif cmd == "udp-roundtrips":
        udp_roundtrips(args[1], int(args[2]), int(args[3]), int(args[4]))
    elif cmd == "udp-refused":
        udp_refused(args[1], int(args[2]))
    elif cmd == "abort-server":
        abort(listen(int(args[1]), mptcp), int(args[2]))
    elif cmd == "abort-client":
        abort(connect(args[1], int(args[2]), mptcp), int(args[3]))
    elif cmd == "until-reset":
        read_until_end(connect(args[1], int(args[2]), mptcp))
    elif cmd == "sink-until-reset":
        read_until_end(listen(int(args[1]), mptcp))
    elif cmd == "refused":
        err, ms = failed_connect(args[1], int(args[2]), mptcp)
        if err != "ECONNREFUSED":
            print(err, "not a RST")
            sys.exit(1)
        print(ms)
    elif cmd == "unreachable":
        print(*failed_connect(args[1], int(args[2]), mptcp))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)

if __name__ == "__main__":
    main()
