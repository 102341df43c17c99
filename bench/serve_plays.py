#!/usr/bin/python3
"""A play, then the next list: the latency of real time, for bench/serve.sh.

  serve_plays.py PORT ITEMS --prefix P [--plays 1000]

Each of --plays times a new listener (P-lat-N) plays an item drawn from ITEMS (one key per line,
seeded): POST /interactions, then GET /recommend?user=...&k=20&exclude_seen=1 on the same keep-alive
connection. The pair's time is measured from sending the POST to reading the list; the list counts
when it reflects the play (200, plays_since_version 1, the item left out). Prints one JSON object:
plays, reflected, p50_ms, p99_ms, max_ms. Exits 1 when a list does not reflect its play.
"""
import argparse
import http.client
import json
import random
import sys
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("port", type=int)
    ap.add_argument("items")
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--plays", type=int, default=1000)
    args = ap.parse_args()
    with open(args.items) as f:
        items = [line.strip() for line in f if line.strip()]
    rng = random.Random(2026)
    conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=30)
    seconds, reflected, first_bad = [], 0, ""
    for n in range(args.plays):
        user, item = "%s-lat-%d" % (args.prefix, n), rng.choice(items)
        t0 = time.perf_counter()
        conn.request("POST", "/interactions", body=json.dumps({"user": user, "item": item}),
                     headers={"Content-Type": "application/json"})
        posted = conn.getresponse()
        posted_body = posted.read()
        conn.request("GET", "/recommend?user=%s&k=20&exclude_seen=1" % user)
        listed = conn.getresponse()
        body = listed.read()
        seconds.append(time.perf_counter() - t0)
        ok = posted.status == 200 and listed.status == 200
        if ok:
            j = json.loads(body)
            ok = j.get("plays_since_version") == 1 and item not in [r["key"] for r in j["results"]]
        reflected += ok
        if not ok and not first_bad:
            first_bad = "%s: POST %d %s; GET %d %s" % (user, posted.status, posted_body[:200], listed.status, body[:200])
    seconds.sort()
    pct = lambda q: 1000 * seconds[min(len(seconds) - 1, int(q * len(seconds)))]
    out = {"plays": args.plays, "reflected": reflected, "p50_ms": round(pct(0.5), 2), "p99_ms": round(pct(0.99), 2),
           "max_ms": round(1000 * seconds[-1], 2)}
    if first_bad:
        out["first_bad"] = first_bad
    print(json.dumps(out))
    sys.exit(0 if reflected == args.plays else 1)


if __name__ == "__main__":
    main()
