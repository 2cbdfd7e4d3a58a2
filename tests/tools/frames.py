#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Crafted Ethernet frames for the anti-spoofing and DHCP tests and the load benchmark.

  frames.py send IFACE MARKER KIND [key=value ...]   one frame out of IFACE (AF_PACKET), tagged with MARKER
  frames.py batch IFACE                             one frame per stdin line "MARKER KIND [key=value ...]"
  frames.py batch-tap TAP                           the same, written into the queue of tap TAP: what the
                                                    guest behind it sends
  frames.py burst IFACE COUNT KIND [key=value ...]  COUNT copies of one frame out of IFACE, at once
  frames.py flood-tap TAP COUNT_FILE KIND [k=v ...] one frame written into tap TAP's queue over and over until
                                                    SIGTERM; then the number written goes to COUNT_FILE
  frames.py listen IFACE SECONDS [MARKER...]        the MARKERs of the frames IFACE receives, one per line
                                                    (ICMPv6 ones by their flow label: name them)

KIND: udp4 | icmp4 | arp | udp6 | icmp6 | raw | dhcp4 (a DHCPDISCOVER from smac's client, 0.0.0.0:68 to
255.255.255.255:67, the marker in its sname field). Keys: dmac (default broadcast), smac, sip, dip, sport, dport,
type (ICMP type), op (ARP), sha, spa, tha, tpa, target (ND target), opt (ND option type), ll (its address),
opt2 / ll2 (a second ND option), etype (raw), vlan (802.1Q tag in front). The marker rides in the payload (ARP:
as a trailer after the packet; ICMPv6: as the flow label, a hash of it, which the listener maps back to the
MARKERs it is given), so a listener can tell which frame got through; checksums are only filled where a bridge
could look at them (the IPv4 header).
"""
import fcntl
import ipaddress
import os
import signal
import socket
import struct
import sys
import time
import zlib

MAGIC = b"KVSPOOF:"


def mac(s):
    return bytes.fromhex(s.replace(":", ""))


def ip4(s):
    return ipaddress.IPv4Address(s).packed


def ip6(s):
    return ipaddress.IPv6Address(s).packed


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4(o, proto, payload):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0, 64, proto, 0,
                    ip4(o.get("sip", "0.0.0.0")), ip4(o.get("dip", "255.255.255.255")))
    return h[:10] + struct.pack("!H", csum(h)) + h[12:] + payload


def flow_label(marker):
    return (zlib.crc32(marker.encode()) & 0xFFFFF) | 1  # never 0 (what hosts send)


def ipv6(o, nh, payload, flow=0):
    return struct.pack("!IHBB16s16s", 6 << 28 | flow, len(payload), nh, 255, ip6(o.get("sip", "::")),
                       ip6(o.get("dip", "ff02::1"))) + payload


def build(kind, o, marker):
    tag = MAGIC + marker.encode() + b";"
    if kind == "udp4":
        body = struct.pack("!HHHH", int(o.get("sport", 4000)), int(o.get("dport", 4001)), 8 + len(tag), 0) + tag
        etype, l3 = 0x0800, ipv4(o, 17, body)
    elif kind == "icmp4":
        body = struct.pack("!BBHI", int(o.get("type", 8)), 0, 0, 0) + tag
        etype, l3 = 0x0800, ipv4(o, 1, body)
    elif kind == "arp":
        etype = 0x0806
        l3 = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, int(o.get("op", 2)), mac(o.get("sha", o["smac"])),
                         ip4(o.get("spa", "0.0.0.0")), mac(o.get("tha", "00:00:00:00:00:00")),
                         ip4(o.get("tpa", "0.0.0.0"))) + tag
    elif kind == "udp6":
        body = struct.pack("!HHHH", int(o.get("sport", 4000)), int(o.get("dport", 4001)), 8 + len(tag), 0) + tag
        etype, l3 = 0x86DD, ipv6(o, 17, body)
    elif kind == "icmp6":
        t = int(o.get("type", 128))
        body = struct.pack("!BBHI", t, 0, 0, 0)
        if t in (135, 136, 137):
            body += ip6(o.get("target", "::"))
        if "opt" in o:
            body += struct.pack("!BB6s", int(o["opt"]), 1, mac(o.get("ll", o["smac"])))
        if "opt2" in o:
            body += struct.pack("!BB6s", int(o["opt2"]), 1, mac(o.get("ll2", o["smac"])))
        # ND messages must keep the length a host sends (the filter drops longer ones) and a bridge with
        # br_netfilter trims what follows the IPv6 packet: the marker goes into the flow label instead
        etype, l3 = 0x86DD, ipv6(o, 58, body, flow_label(marker))
    elif kind == "dhcp4":
        m = mac(o["smac"])
        sname = (tag + b"\0" * 64)[:64]
        bootp = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 0, 0x4B56, 0, 0x8000, b"\0" * 4, b"\0" * 4,
                            b"\0" * 4, b"\0" * 4, m + b"\0" * 10, sname, b"\0" * 128)
        bootp += bytes([99, 130, 83, 99, 53, 1, 1, 255])  # magic cookie, message type DISCOVER, end
        body = struct.pack("!HHHH", 68, 67, 8 + len(bootp), 0) + bootp
        etype, l3 = 0x0800, ipv4(o, 17, body)
    elif kind == "raw":
        etype, l3 = int(o.get("etype", "0x88b5"), 0), tag
    else:
        raise SystemExit("frames.py: unknown kind %r" % kind)
    hdr = mac(o.get("dmac", "ff:ff:ff:ff:ff:ff")) + mac(o["smac"])
    if "vlan" in o:
        hdr += struct.pack("!HH", 0x8100, int(o["vlan"]))
    frame = hdr + struct.pack("!H", etype) + l3
    return frame + b"\0" * max(0, 60 - len(frame))


def send(iface, marker, kind, args):
    o = dict(a.split("=", 1) for a in args)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    s.send(build(kind, o, marker))


def batch(iface):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    for line in sys.stdin:
        f = line.split()
        if len(f) >= 2:
            s.send(build(f[1], dict(a.split("=", 1) for a in f[2:]), f[0]))


def open_tap(tap):
    fd = os.open("/dev/net/tun", os.O_RDWR)
    # TUNSETIFF with IFF_TAP | IFF_NO_PI: attach to the existing tap as its guest side
    fcntl.ioctl(fd, 0x400454CA, struct.pack("16sH", tap.encode(), 0x0002 | 0x1000))
    return fd


def burst(iface, count, kind, args):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    frame = build(kind, dict(a.split("=", 1) for a in args), "burst")
    for _ in range(count):
        s.send(frame)


def flood_tap(tap, count_file, kind, args):
    fd = open_tap(tap)
    frame = build(kind, dict(a.split("=", 1) for a in args), "flood")
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    sent = 0
    while not stop:
        try:
            os.write(fd, frame)
            sent += 1
        except OSError:
            pass
    with open(count_file, "w") as f:
        f.write("%d\n" % sent)


def batch_tap(tap):
    fd = open_tap(tap)
    for line in sys.stdin:
        f = line.split()
        if len(f) >= 2:
            os.write(fd, build(f[1], dict(a.split("=", 1) for a in f[2:]), f[0]))
    os.close(fd)


def listen(iface, seconds, names=()):
    by_flow = {flow_label(n): n for n in names}
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    s.bind((iface, 0))
    s.settimeout(0.2)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    end = time.monotonic() + seconds
    seen = set()
    while time.monotonic() < end:
        try:
            data, addr = s.recvfrom(65535)
        except socket.timeout:
            continue
        if addr[2] == socket.PACKET_OUTGOING:
            continue
        i = data.find(MAGIC)
        m = None
        if i >= 0:
            j = data.find(b";", i)
            m = data[i + len(MAGIC):j].decode(errors="replace")
        elif len(data) >= 54 and data[12:14] == b"\x86\xdd":
            m = by_flow.get(struct.unpack("!I", data[14:18])[0] & 0xFFFFF)
        if m is not None:
            if m not in seen:
                seen.add(m)
                sys.stdout.write(m + "\n")
                sys.stdout.flush()


def main():
    if len(sys.argv) >= 5 and sys.argv[1] == "send":
        send(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:])
    elif len(sys.argv) == 3 and sys.argv[1] == "batch":
        batch(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "batch-tap":
        batch_tap(sys.argv[2])
    elif len(sys.argv) >= 5 and sys.argv[1] == "burst":
        burst(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5:])
    elif len(sys.argv) >= 5 and sys.argv[1] == "flood-tap":
        flood_tap(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:])
    elif len(sys.argv) >= 4 and sys.argv[1] == "listen":
        listen(sys.argv[2], float(sys.argv[3]), sys.argv[4:])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
