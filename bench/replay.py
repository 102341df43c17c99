#!/usr/bin/python3
"""Replays MovieLens's latest ratings, in time order, through running `mosaic serve` processes.

  replay.py split RATINGS TAGS OUT_DIR [--train-fraction 0.8]
      writes OUT_DIR/train.csv (the first 80% of ratings by time, ratings.csv's format),
      OUT_DIR/tags.csv (the tags given before the cut: later ones would leak the future) and
      OUT_DIR/replay.csv (the rest, in time order).
  replay.py replay OUT_DIR --on PORT --off PORT [--half-life-days 30]
      before each replayed rating, asks both servers for the user's top 20 (exclude_seen) and ranks the
      recency-weighted popularity peer's top 20 the same way; records whether the rated movie is in each
      list; then posts the rating to both. Prints hit-rate@20 overall and for users first seen in the
      replay window, per policy, as a Markdown table, and a JSON line.

Policies: "updates on" is `mosaic serve` as shipped (users folded in from their plays as they come);
"updates off" is `mosaic serve --frozen-users` (the version's users only, their vectors as trained: a
user who arrived since gets 404, a miss); the peer scores each movie by its ratings so far, each
weighted exp(-age * ln 2 / half-life), and leaves out what the user rated.

Standard library and numpy only (python3-numpy, installed by scripts/setup).
"""
import argparse
import csv
import json
import math
import os
import sys
import time

import numpy as np

from server_client import Client


def split(args):
    with open(args.ratings, newline="") as f:
        rows = list(csv.reader(f))
    header, rows = rows[0], rows[1:]
    # Stable by time: ties keep the file's order, so the split is reproducible.
    rows.sort(key=lambda r: int(r[3]))
    cut = int(len(rows) * args.train_fraction)
    cut_time = int(rows[cut - 1][3])
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "train.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows[:cut])
    with open(os.path.join(args.out, "replay.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows[cut:])
    kept = 0
    with open(args.tags, newline="") as f, open(os.path.join(args.out, "tags.csv"), "w", newline="") as out:
        r = csv.reader(f)
        w = csv.writer(out, lineterminator="\n")
        w.writerow(next(r))
        for row in r:
            if int(row[3]) <= cut_time:
                w.writerow(row)
                kept += 1
    print(json.dumps({"train": cut, "replay": len(rows) - cut, "cut_time": cut_time, "tags_kept": kept}))


class Server(Client):
    """The queries and posts of the replay, on one keep-alive connection."""

    def top(self, user, k):
        status, body = self.request("GET", "/recommend?user=%s&k=%d&exclude_seen=1" % (user, k))
        if status == 404:
            return [], None
        if status != 200:
            raise RuntimeError("GET /recommend?user=%s: %d %s" % (user, status, body[:200]))
        j = json.loads(body)
        return [r["key"] for r in j["results"]], j

    def post(self, user, item, weight, timestamp):
        body = json.dumps({"user": user, "item": item, "weight": weight, "timestamp": timestamp})
        status, text = self.request("POST", "/interactions", body)
        if status != 200:
            raise RuntimeError("POST /interactions %s: %d %s" % (body, status, text[:200]))


def replay(args):
    def read(name):
        with open(os.path.join(args.dir, name), newline="") as f:
            r = csv.reader(f)
            next(r)
            return [(row[0], row[1], float(row[2]), int(row[3])) for row in r]

    train, events = read("train.csv"), read("replay.csv")
    if args.limit:
        events = events[: args.limit]
    items = sorted({m for _, m, _, _ in train} | {m for _, m, _, _ in events})
    index = {m: i for i, m in enumerate(items)}
    seen = {}
    known_users = set()
    for u, m, _, _ in train:
        seen.setdefault(u, set()).add(m)
        known_users.add(u)
    # Recency-weighted popularity: mass[i] as of time `last`, decayed lazily.
    rate = math.log(2) / (args.half_life_days * 86400.0)
    mass = np.zeros(len(items))
    last = train[-1][3] if train else events[0][3]
    for _, m, _, t in train:
        mass[index[m]] += math.exp(-rate * (last - t))

    on, off = Server(args.on), Server(args.off)
    policies = ["updates on", "updates off", "recency popularity"]
    hits = {p: [0, 0] for p in policies}       # [overall, new users]
    counted = [0, 0]                           # events: overall, by users first seen in the window
    on_seconds = []
    start = time.time()
    for n, (u, m, w, t) in enumerate(events):
        new_user = u not in known_users
        counted[0] += 1
        counted[1] += new_user
        t0 = time.perf_counter()
        on_top, _ = on.top(u, 20)
        on_seconds.append(time.perf_counter() - t0)
        off_top, _ = off.top(u, 20)
        mass *= math.exp(-rate * max(0, t - last))
        last = max(last, t)
        mine = seen.get(u, set())
        order = np.argsort(-mass, kind="stable")
        pop_top = []
        for i in order:
            if items[i] not in mine:
                pop_top.append(items[i])
                if len(pop_top) == 20:
                    break
        for p, top in zip(policies, (on_top, off_top, pop_top)):
            if m in top:
                hits[p][0] += 1
                hits[p][1] += new_user
        on.post(u, m, w, t)
        off.post(u, m, w, t)
        seen.setdefault(u, set()).add(m)
        mass[index[m]] += 1.0
        if sys.stderr.isatty() and (n + 1) % 200 == 0:
            done = (n + 1) / len(events)
            spent = time.time() - start
            sys.stderr.write("\rreplay %d/%d, ETA %.0f s " % (n + 1, len(events), spent / done - spent))
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    known_events = counted[0] - counted[1]
    rate_of = {p: (hits[p][0] / max(1, counted[0]), hits[p][1] / max(1, counted[1]),
                   (hits[p][0] - hits[p][1]) / max(1, known_events)) for p in policies}
    print("| policy | hit-rate@20, all %d plays | %d plays by users first seen in the window | %d plays by users "
          "the model was trained with |" % (counted[0], counted[1], known_events))
    print("|---|---:|---:|---:|")
    for p in policies:
        print("| %s | %.4f | %.4f | %.4f |" % (p, rate_of[p][0], rate_of[p][1], rate_of[p][2]))
    base = rate_of["updates off"][0]
    on_ratio = rate_of["updates on"][0] / base if base > 0 else float("inf")
    lat = np.array(on_seconds) * 1000
    print("\nupdates on / updates off, overall: %.2fx (target at least 1.3x); new users, updates on / popularity: %.2fx"
          % (on_ratio, rate_of["updates on"][1] / max(1e-12, rate_of["recency popularity"][1])))
    print("GET /recommend with updates on, ms: p50 %.2f, p99 %.2f (%d queries)"
          % (np.percentile(lat, 50), np.percentile(lat, 99), len(lat)))
    print(json.dumps({"events": counted[0], "new_user_events": counted[1],
                      "hit_rate": {p: {"all": rate_of[p][0], "new_users": rate_of[p][1], "trained_users": rate_of[p][2]}
                                   for p in policies},
                      "on_over_off": on_ratio}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    s = sub.add_parser("split")
    s.add_argument("ratings")
    s.add_argument("tags")
    s.add_argument("out")
    s.add_argument("--train-fraction", type=float, default=0.8)
    r = sub.add_parser("replay")
    r.add_argument("dir")
    r.add_argument("--on", type=int, required=True)
    r.add_argument("--off", type=int, required=True)
    r.add_argument("--half-life-days", type=float, default=30.0)
    r.add_argument("--limit", type=int, default=0, help="replay only the first N ratings (0: all)")
    args = ap.parse_args()
    split(args) if args.command == "split" else replay(args)


if __name__ == "__main__":
    main()
