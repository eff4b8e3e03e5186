#!/usr/bin/env python3
"""Userspace netem for the Sealroom fault lab (scripts/netns): used when the kernel has no sch_netem.

Runs inside the core (router) namespace, attached to a persistent TUN device that policy routing
sends every forwarded packet through. Each packet crosses two links, its source host's and its
destination host's; each link has loss (probability), delay and jitter (ms, uniform +-jitter, so
packets reorder as with netem) and down (silent partition). Faults are read from a JSON control file
({"rooma": {"loss": 0.05, "delayMs": 0, "jitterMs": 200, "down": false}, ...}) polled every 50 ms;
hosts are named by the third octet of their address (--hosts name=octet,...). Counters go to
<control>.stats (JSON) once a second. Stops on SIGTERM/SIGINT.
"""
import argparse, fcntl, heapq, json, os, random, select, signal, struct, time

TUNSETIFF = 0x400454CA
IFF_TUN, IFF_NO_PI = 0x0001, 0x1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument('--tun', required=True)
    ap.add_argument('--control', required=True)
    ap.add_argument('--hosts', required=True, help='name=octet,... (third octet of the host subnet)')
    ap.add_argument('--seed', type=int, default=None)
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    by_octet = {}
    for item in a.hosts.split(','):
        name, octet = item.split('=')
        by_octet[int(octet)] = name
    fd = os.open('/dev/net/tun', os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack('16sH', a.tun.encode(), IFF_TUN | IFF_NO_PI))
    os.set_blocking(fd, False)
    faults: dict = {}
    mtime = 0.0
    last_poll = 0.0
    last_stats = 0.0
    queue: list = []  # (due, seq, packet)
    seq = 0
    stats = {'in': 0, 'out': 0, 'lost': 0, 'partitioned': 0, 'delayed': 0, 'links': {}}
    running = True

    def stop(*_):
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def link(octet: int) -> dict:
        return faults.get(by_octet.get(octet, ''), {})

    while running:
        now = time.monotonic()
        if now - last_poll > 0.05:
            last_poll = now
            try:
                m = os.stat(a.control).st_mtime
                if m != mtime:
                    with open(a.control) as f:
                        faults = json.load(f)
                    mtime = m
            except (FileNotFoundError, json.JSONDecodeError):
                pass
        if now - last_stats > 1.0:
            last_stats = now
            tmp = a.control + '.stats.tmp'
            with open(tmp, 'w') as f:
                json.dump({**stats, 'queued': len(queue), 'faults': faults}, f)
            os.replace(tmp, a.control + '.stats')
        timeout = 0.05
        if queue:
            timeout = max(0.0, min(timeout, queue[0][0] - now))
        r, _, _ = select.select([fd], [], [], timeout)
        if r:
            for _ in range(256):
                try:
                    pkt = os.read(fd, 65535)
                except BlockingIOError:
                    break
                stats['in'] += 1
                if len(pkt) < 20 or pkt[0] >> 4 != 4:
                    os.write(fd, pkt)  # not IPv4: pass untouched
                    stats['out'] += 1
                    continue
                src, dst = pkt[14], pkt[18]  # third octet of source and destination address
                delay = 0.0
                dropped = None
                for octet in (src, dst):
                    f = link(octet)
                    name = by_octet.get(octet, '?')
                    ls = stats['links'].setdefault(name, {'lost': 0, 'partitioned': 0})
                    if f.get('down'):
                        dropped = 'partitioned'
                        ls['partitioned'] += 1
                        break
                    if f.get('loss', 0) > 0 and rnd.random() < f['loss']:
                        dropped = 'lost'
                        ls['lost'] += 1
                        break
                    d = f.get('delayMs', 0) + (rnd.uniform(-1, 1) * f.get('jitterMs', 0) if f.get('jitterMs') else 0)
                    delay += max(0.0, d) / 1000.0
                if dropped:
                    stats[dropped] += 1
                    continue
                if delay <= 0:
                    os.write(fd, pkt)
                    stats['out'] += 1
                else:
                    stats['delayed'] += 1
                    seq += 1
                    heapq.heappush(queue, (now + delay, seq, pkt))
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            _, _, pkt = heapq.heappop(queue)
            try:
                os.write(fd, pkt)
                stats['out'] += 1
            except OSError:
                pass


if __name__ == '__main__':
    main()
