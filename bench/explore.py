#!/usr/bin/python3
"""Exploration, simulated on MovieLens through a running `mosaic serve` (issue 17).

  explore.py split RATINGS MOVIES TAGS OUT_DIR [--train-fraction 0.8] [--session-gap-hours 1]
      Cuts the ratings by time. Writes OUT_DIR/train.csv (the first 80%), OUT_DIR/movies.csv (the
      movies first rated before the cut: the catalogue at the start), OUT_DIR/tags.csv (their tags
      given before the cut), OUT_DIR/new_items.json (every other rated movie, as a POST /items body,
      with the time of its first rating: it enters the catalogue then) and OUT_DIR/rounds.json (the
      replay window's ratings grouped into sessions: a user's ratings with no gap over an hour).
      It also fits EASE^R (Steck, WWW 2019; lambda --ease-lambda) on the whole rating matrix, future
      included, and writes its reconstruction OUT_DIR/ease.npy (users x movies) for --truth ease.
  explore.py simulate OUT_DIR --port PORT --policy greedy|thompson|epsilon|random --truth later|ease --result FILE
      Plays the rounds in time order against the server. Before a round, the movies whose first
      rating came before it are POSTed (/items). Each round one user arrives and gets k=20
      (exclude_seen): the server's list as it is (greedy), with explore=2 (thompson, seeded by the
      round), or with its last two positions given to entered movies at random (random), each with
      probability 0.1 (epsilon). The list's impressions are POSTed; the user then plays, by the ground
      truth (which the recommender never sees), and the plays are POSTed. Writes what happened to FILE.
      --truth later: every movie of the list that they rate in the rest of the replay window (their real
      later ratings). --truth ease: each movie of the list with probability EASE^R's reconstructed
      score for (user, movie), clipped to [0, 1], drawn with numbers common to every policy (one per
      round and movie).
  explore.py report RESULT... [--names NAME...]
      The table: cumulative plays, plays of new movies, the median days from a new movie's entry to
      its 5th play (over the new movies that have at least 5 later raters; "never" counts as longer
      than the window), the share of them reaching 5 plays, the share of new movies ever shown, and the
      catalogue's coverage; then the ratios of the issue's target (thompson against greedy). The median
      is given over two sets of new movies: those with at least 5 later raters, and those that reached 5
      plays under at least one policy of the run (a movie that never does under a policy counts as
      longer than the window).

Standard library and numpy only (python3-numpy, installed by scripts/setup).
"""
import argparse
import csv
import json
import os
import random
import sys
import time

import numpy as np

from server_client import Client

K = 20
SLOTS = 2
EPSILON = 0.1
REACHED = 5


def split(args):
    with open(args.ratings, newline="") as f:
        rows = list(csv.reader(f))
    header, rows = rows[0], rows[1:]
    rows.sort(key=lambda r: int(r[3]))  # stable: ties keep the file's order
    cut = int(len(rows) * args.train_fraction)
    cut_time = int(rows[cut - 1][3])
    train, window = rows[:cut], rows[cut:]
    old = {r[1] for r in train}
    first_rated = {}
    for u, m, _, t in window:
        if m not in old and m not in first_rated:
            first_rated[m] = int(t)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "train.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(train)
    new_items = []
    with open(args.movies, newline="") as f, open(os.path.join(args.out, "movies.csv"), "w", newline="") as out:
        r = csv.reader(f)
        w = csv.writer(out, lineterminator="\n")
        w.writerow(next(r))
        for movie_id, title, genres in r:
            if movie_id in old:
                w.writerow([movie_id, title, genres])
            elif movie_id in first_rated:
                body = {"id": movie_id, "title": title, "kind": "video"}
                if genres != "(no genres listed)":
                    body["genre"] = genres.split("|")
                new_items.append({"time": first_rated[movie_id], "body": body})
    new_items.sort(key=lambda x: x["time"])
    with open(os.path.join(args.out, "new_items.json"), "w") as f:
        json.dump(new_items, f)
    kept = 0
    with open(args.tags, newline="") as f, open(os.path.join(args.out, "tags.csv"), "w", newline="") as out:
        r = csv.reader(f)
        w = csv.writer(out, lineterminator="\n")
        w.writerow(next(r))
        for row in r:
            if int(row[3]) <= cut_time and row[1] in old:
                w.writerow(row)
                kept += 1
    # Sessions: a user's ratings in the window with no gap longer than the session gap.
    gap = args.session_gap_hours * 3600
    rounds, open_round = [], {}
    for u, m, _, t in window:
        t = int(t)
        current = open_round.get(u)
        if current is None or t - current["last"] > gap:
            current = {"user": u, "time": t, "last": t, "first": m}
            open_round[u] = current
            rounds.append(current)
        current["last"] = t
    rounds = [{"user": r["user"], "time": r["time"], "first": r["first"]} for r in rounds]
    # Ground truth: each user's ratings in the window, with their times.
    future = {}
    for u, m, _, t in window:
        future.setdefault(u, []).append([m, int(t)])
    with open(os.path.join(args.out, "rounds.json"), "w") as f:
        json.dump({"cut_time": cut_time, "rounds": rounds, "future": future}, f)
    # The EASE^R ground truth: B = I - P / diag(P), P = (X^T X + lambda I)^-1, on every rating.
    users = sorted({r[0] for r in rows})
    movies = sorted({r[1] for r in rows})
    uix, mix = {u: i for i, u in enumerate(users)}, {m: i for i, m in enumerate(movies)}
    X = np.zeros((len(users), len(movies)), dtype=np.float64)
    for u, m, _, _ in rows:
        X[uix[u], mix[m]] = 1.0
    G = X.T @ X
    G[np.diag_indices_from(G)] += args.ease_lambda
    P = np.linalg.inv(G)
    B = -P / np.diag(P)
    B[np.diag_indices_from(B)] = 0.0
    np.save(os.path.join(args.out, "ease.npy"), (X @ B).astype(np.float32))
    with open(os.path.join(args.out, "ease_index.json"), "w") as f:
        json.dump({"users": users, "movies": movies}, f)
    print(json.dumps({"train": len(train), "window": len(window), "cut_time": cut_time, "old_movies": len(old),
                      "new_movies": len(new_items), "rounds": len(rounds), "tags_kept": kept}))


def simulate(args):
    with open(os.path.join(args.dir, "new_items.json")) as f:
        new_items = json.load(f)
    with open(os.path.join(args.dir, "rounds.json")) as f:
        data = json.load(f)
    rounds, future = data["rounds"], data["future"]
    # Halves of the window (by rounds): each simulated from the starting store on its own.
    middle = len(rounds) // 2
    first_round = middle if args.half == "second" else 0
    rounds = rounds[:middle] if args.half == "first" else rounds[first_round:]
    if args.truth == "ease":
        scores = np.load(os.path.join(args.dir, "ease.npy"))
        with open(os.path.join(args.dir, "ease_index.json")) as f:
            index = json.load(f)
        uix = {u: i for i, u in enumerate(index["users"])}
        mix = {m: i for i, m in enumerate(index["movies"])}

    def plays_of_list(n, user, t, keys, mine):
        if args.truth == "later":
            later = {m for m, when in future.get(user, []) if when >= t}
            return [m for m in keys if m in later and m not in mine]
        out = []
        for m in keys:
            if m in mine or m not in mix:
                continue
            # Common random numbers: the same draw for this round and movie under every policy.
            draw = random.Random("%d/%s" % (first_round + n, m)).random()
            if draw < min(1.0, max(0.0, float(scores[uix[user], mix[m]]))):
                out.append(m)
        return out

    client = Client(args.port)
    rng = random.Random(2026)
    entered_at = {}          # new movie -> entry time
    entered_list = []        # in entry order, for random picks
    played = {}              # user -> movies played in the simulation
    plays_of = {}            # movie -> times of its plays
    shown = set()            # movies ever shown
    total_plays = new_plays = explored_results = signups = 0
    query_ms = []
    next_item = 0
    start = time.time()
    for n, rnd in enumerate(rounds):
        user, t = rnd["user"], rnd["time"]
        while next_item < len(new_items) and new_items[next_item]["time"] <= t:
            body = new_items[next_item]["body"]
            client.json("POST", "/items", body)
            entered_at[body["id"]] = new_items[next_item]["time"]
            entered_list.append(body["id"])
            next_item += 1
        mine = played.setdefault(user, set())
        explore = SLOTS if args.policy == "thompson" else 0
        t0 = time.perf_counter()
        path = "/recommend?user=%s&k=%d&exclude_seen=1&explore=%d&seed=%d" % (user, K, explore, first_round + n)
        try:
            reply = client.json("GET", path)
        except RuntimeError as e:
            if ": 404 " not in str(e):
                raise
            # A listener the catalogue has no record of: they sign up with the session's first real
            # rating (the same for every policy, not counted as a play the list earned), then get a list.
            first = rnd["first"]
            client.json("POST", "/interactions", {"user": user, "item": first, "weight": 1, "timestamp": t})
            mine.add(first)
            plays_of.setdefault(first, []).append(t)
            signups += 1
            reply = client.json("GET", path)
        query_ms.append((time.perf_counter() - t0) * 1000)
        keys = [r["key"] for r in reply["results"]]
        explored_results += sum(1 for r in reply["results"] if r.get("explored"))
        if args.policy in ("epsilon", "random") and entered_list:
            for slot in range(1, SLOTS + 1):
                if len(keys) < slot or (args.policy == "epsilon" and rng.random() >= EPSILON):
                    continue
                for _ in range(20):  # a random entered movie not in the list and not played
                    pick = entered_list[rng.randrange(len(entered_list))]
                    if pick not in keys and pick not in mine:
                        keys[-slot] = pick
                        break
        if not keys:
            continue
        client.json("POST", "/impressions", {"request": reply.get("request", "round-%d" % n), "user": user,
                                                "items": keys})
        shown.update(keys)
        plays = plays_of_list(n, user, t, keys, mine)
        if plays:
            client.json("POST", "/interactions",
                           [{"user": user, "item": m, "weight": 1, "timestamp": t} for m in plays])
        for m in plays:
            mine.add(m)
            plays_of.setdefault(m, []).append(t)
            total_plays += 1
            new_plays += m in entered_at
        if sys.stderr.isatty() and (n + 1) % 100 == 0:
            done = (n + 1) / len(rounds)
            spent = time.time() - start
            sys.stderr.write("\r%s: round %d/%d, ETA %.0f s " % (args.policy, n + 1, len(rounds), spent / done - spent))
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    # New movies that could reach 5 plays: at least 5 raters in the window after they entered.
    raters = {}
    for u, ratings in future.items():
        for m, when in ratings:
            if m in entered_at and when >= entered_at[m]:
                raters.setdefault(m, set()).add(u)
    eligible = [m for m, us in raters.items() if len(us) >= REACHED]
    days_to_reach = []
    for m in eligible:
        times = sorted(plays_of.get(m, []))
        days_to_reach.append((times[REACHED - 1] - entered_at[m]) / 86400.0 if len(times) >= REACHED else float("inf"))
    result = {"policy": args.label or args.policy, "truth": args.truth, "half": args.half, "rounds": len(rounds),
              "reach_days": {m: (sorted(plays_of.get(m, []))[REACHED - 1] - entered_at[m]) / 86400.0
                             for m in entered_at if len(plays_of.get(m, [])) >= REACHED},
              "total_plays": total_plays, "new_item_plays": new_plays,
              "new_items": len(entered_at), "new_items_eligible": len(eligible),
              "days_to_5_plays": days_to_reach,
              "new_items_shown": len([m for m in entered_at if m in shown]),
              "items_shown": len(shown), "explored_results": explored_results, "signups": signups,
              "query_ms_p50": float(np.percentile(query_ms, 50)) if query_ms else 0.0,
              "query_ms_p99": float(np.percentile(query_ms, 99)) if query_ms else 0.0}
    with open(args.result, "w") as f:
        json.dump(result, f)
    print("%s: %d plays (%d of new movies), %d explored results, %.0f s" % (result["policy"], total_plays, new_plays,
                                                                          explored_results, time.time() - start))


def report(args):
    results = []
    for path in args.results:
        with open(path) as f:
            results.append(json.load(f))
    catalogue = args.catalogue

    def median_days(r):
        d = np.median(np.array(r["days_to_5_plays"])) if r["days_to_5_plays"] else float("inf")
        return d

    print("| policy | cumulative plays | plays of new movies | median days to a new movie's 5th play | new movies "
          "reaching 5 plays | new movies ever shown | catalogue coverage | /recommend p50 / p99 ms |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        d = median_days(r)
        reached = sum(1 for x in r["days_to_5_plays"] if x != float("inf"))
        print("| %s | %d | %d | %s | %d of %d (%.1f%%) | %.1f%% | %.1f%% | %.2f / %.2f |" % (
            r["policy"], r["total_plays"], r["new_item_plays"], 
            "never (over half)" if d == float("inf") else "%.1f" % d,
            reached, r["new_items_eligible"], 100.0 * reached / max(1, r["new_items_eligible"]),
            100.0 * r["new_items_shown"] / max(1, r["new_items"]),
            100.0 * r["items_shown"] / max(1, catalogue + r["new_items"]), r["query_ms_p50"], r["query_ms_p99"]))
    # The new movies that reached 5 plays under some policy: each policy's median days over them.
    reachable = set()
    for r in results:
        reachable |= set(r.get("reach_days", {}))
    print("\nover the %d new movies that reached %d plays under at least one policy:" % (len(reachable), REACHED))
    union_median = {}
    for r in results:
        days = [r.get("reach_days", {}).get(m, float("inf")) for m in reachable]
        union_median[r["policy"]] = float(np.median(days)) if days else float("inf")
        reached = sum(1 for d in days if d != float("inf"))
        print("- %s: median %s days; %d of them reached 5 plays" % (
            r["policy"], "never" if union_median[r["policy"]] == float("inf") else "%.1f" % union_median[r["policy"]],
            reached))
    by = {r["policy"]: r for r in results}
    if args.choose:
        # The prior strength: the Thompson run with the most plays of new movies among those that lose at
        # most 3% of greedy's plays; when none does, the one that loses least.
        greedy = by["greedy"]["total_plays"]
        tried = [r for r in results if r["policy"] != "greedy"]
        within = [r for r in tried if r["total_plays"] >= 0.97 * greedy]
        best = max(within, key=lambda r: r["new_item_plays"]) if within else max(tried, key=lambda r: r["total_plays"])
        why = "loses at most 3%" if within else "none loses at most 3%: the one losing least"
        print("\nchosen: %s (%s)" % (best["policy"], why))
        with open(args.choose, "w") as f:
            f.write(best["policy"].split("=")[-1] + "\n")
        return
    if "greedy" in by and "thompson" in by:
        g, th = by["greedy"], by["thompson"]
        loss = 1 - th["total_plays"] / max(1, g["total_plays"])
        dg, dt = union_median["greedy"], union_median["thompson"]
        speed = dg / dt if dt > 0 and dt != float("inf") else 0.0
        print("\nthompson against greedy: new movies reach 5 plays %s faster (target at least 2x); cumulative plays "
              "%+.1f%% (target: at most 3%% fewer)" % ("inf x" if dg == float("inf") and dt != float("inf")
                                                        else "%.2fx" % speed, -100 * loss))
        print(json.dumps({"speedup": None if speed == 0.0 else (None if dg == float("inf") else speed),
                          "greedy_median_days": None if dg == float("inf") else dg,
                          "thompson_median_days": None if dt == float("inf") else dt,
                          "plays_lost": loss}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    s = sub.add_parser("split")
    s.add_argument("ratings")
    s.add_argument("movies")
    s.add_argument("tags")
    s.add_argument("out")
    s.add_argument("--train-fraction", type=float, default=0.8)
    s.add_argument("--session-gap-hours", type=float, default=1.0)
    s.add_argument("--ease-lambda", type=float, default=100.0)
    m = sub.add_parser("simulate")
    m.add_argument("dir")
    m.add_argument("--port", type=int, required=True)
    m.add_argument("--policy", choices=["greedy", "thompson", "epsilon", "random"], required=True)
    m.add_argument("--truth", choices=["later", "ease"], default="later")
    m.add_argument("--half", choices=["all", "first", "second"], default="all",
                   help="the window's first or second half of rounds only (validation / test)")
    m.add_argument("--label", default="", help="the policy's name in the results (default --policy)")
    m.add_argument("--result", required=True)
    r = sub.add_parser("report")
    r.add_argument("results", nargs="+")
    r.add_argument("--catalogue", type=int, required=True, help="movies in the catalogue at the start")
    r.add_argument("--choose", default="", help="write the chosen prior strength (the part after '=' of the best "
                   "Thompson run's name) to this file instead of comparing with greedy")
    args = ap.parse_args()
    {"split": split, "simulate": simulate, "report": report}[args.command](args)


if __name__ == "__main__":
    main()
