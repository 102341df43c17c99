#!/usr/bin/python3
"""EASE^R's and RP3beta's warm Recall@20 and NDCG@20 recomputed with numpy from a split dumped by
`mosaic eval --dump-split DIR`, sharing no code with Mosaic, at the hyper-parameters the harness
chose on the validation split (read from its --json output). Prints both figures beside the
harness's and exits 1 when any differs by more than the tolerance.

  /usr/bin/python3 bench/peers_check.py DIR RUN.json [--tolerance 1e-4] [--ease-space items|users]

EASE is solved as in the paper, in the item space: P = (X^T X + lambda I)^-1 over the items with
training interactions (an item without any is a zero row and column of X^T X, so its block of P is
1/lambda and its B row and column are 0), B = -P / diag(P) with diag(B) = 0, scores X B. Above
10,000 such items (Last.FM: a float64 inverse of that size takes many minutes here) it uses the
user space instead: X P = (X X^T + lambda I)^-1 X and diag(P) = (1 - diag(X^T K X)) / lambda,
written here from the identity, not from the harness's code; bench/ease_solve compares the two
spaces of the harness on the same split. --ease-space items|users forces one.
RP3beta follows Dacrema et al.'s reference: row-normalised X and X^T raised to alpha, W = Piu Pui
with column j divided by pop(j)^beta, diagonal 0, each row's top k kept (ties to the lower index).
Ranking: every item not in the user's training set, by score descending, ties to the lower item
index (the order of items.tsv); users with test items count.
"""
import json
import sys
import time

import numpy as np


def read_pairs(path):
    with open(path) as f:
        next(f)
        return [tuple(line.rstrip("\n").split("\t")[:2]) for line in f if line.strip()]


def load(split_dir):
    with open(f"{split_dir}/items.tsv") as f:
        next(f)
        items = [line.rstrip("\n") for line in f]
    index = {key: i for i, key in enumerate(items)}
    train = read_pairs(f"{split_dir}/train.tsv")
    test = read_pairs(f"{split_dir}/test.tsv")
    users = sorted({u for u, _ in train} | {u for u, _ in test})
    uindex = {u: k for k, u in enumerate(users)}
    x = np.zeros((len(users), len(items)), dtype=np.float64)
    for u, i in train:
        x[uindex[u], index[i]] = 1.0
    relevant = [set() for _ in users]
    for u, i in test:
        relevant[uindex[u]].add(index[i])
    return x, relevant


def metrics(scores, x, relevant, k=20):
    recall = ndcg = 0.0
    counted = 0
    discounts = 1.0 / np.log2(np.arange(k) + 2.0)
    for u, rel in enumerate(relevant):
        if not rel:
            continue
        candidates = np.flatnonzero(x[u] == 0)            # ascending item index
        s = scores[u, candidates]
        top = candidates[np.argsort(-s, kind="stable")[:k]]  # stable: ties keep the lower index first
        hits = np.array([i in rel for i in top], dtype=bool)
        recall += hits.sum() / len(rel)
        ndcg += (discounts[: len(top)][hits]).sum() / discounts[: min(k, len(rel))].sum()
        counted += 1
    return recall / counted, ndcg / counted


def ease_scores(x, lam, space="auto"):
    active = np.flatnonzero(x.sum(axis=0) > 0)
    if space == "users" or (space == "auto" and len(active) > 10000):
        k = np.linalg.inv(x @ x.T + lam * np.eye(x.shape[0]))
        kx = k @ x
        diag_p = (1.0 - (x * kx).sum(axis=0)) / lam
        return x - kx / diag_p[None, :]
    xa = x[:, active]
    g = xa.T @ xa
    g[np.diag_indices_from(g)] += lam
    p = np.linalg.inv(g)
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    scores = np.zeros_like(x)
    scores[:, active] = xa @ b
    return scores


def rp3beta_scores(x, alpha, beta, k, block=512):
    n = x.shape[1]
    user_deg = x.sum(axis=1)
    item_pop = x.sum(axis=0)
    pui = np.divide(x, user_deg[:, None], out=np.zeros_like(x), where=user_deg[:, None] > 0) ** alpha
    piu = (np.divide(x, item_pop[None, :], out=np.zeros_like(x), where=item_pop[None, :] > 0) ** alpha).T
    degree = np.zeros(n)
    degree[item_pop > 0] = item_pop[item_pop > 0] ** -beta
    scores = np.zeros_like(x)
    for start in range(0, n, block):
        rows = piu[start:start + block] @ pui * degree[None, :]
        kept = np.zeros_like(rows)
        for r in range(rows.shape[0]):
            row = rows[r]
            row[start + r] = 0.0
            best = np.argsort(-row, kind="stable")[:k]
            best = best[row[best] > 0]
            kept[r, best] = row[best]
        scores += x[:, start:start + block] @ kept
    return scores


def setting(text):
    return {kv.split("=")[0]: float(kv.split("=")[1]) for kv in text.split()}


def main():
    args = sys.argv[1:]
    tolerance = 1e-4
    space = "auto"
    if "--ease-space" in args:
        at = args.index("--ease-space")
        space = args[at + 1]
        del args[at:at + 2]
    if "--tolerance" in args:
        at = args.index("--tolerance")
        tolerance = float(args[at + 1])
        del args[at:at + 2]
    split_dir, run_path = args
    with open(run_path) as f:
        rows = {r["model"]: r for r in json.load(f)["rows"]}
    x, relevant = load(split_dir)
    ok = True
    for name in ("EASE", "RP3beta"):
        row = rows[name]
        chosen = row["tuning"][0]["chosen"]
        p = setting(chosen)
        t0 = time.time()
        if name == "EASE":
            scores = ease_scores(x, p["lambda"], space)
        else:
            scores = rp3beta_scores(x, p["alpha"], p["beta"], int(p["k"]))
        recall, ndcg = metrics(scores, x, relevant)
        seconds = time.time() - t0
        hr, hn = row["metrics"]["Recall@20"], row["metrics"]["NDCG@20"]
        dr, dn = abs(hr - recall), abs(hn - ndcg)
        good = dr <= tolerance and dn <= tolerance
        ok = ok and good
        print(f"{name} ({chosen}), {x.shape[0]} users x {x.shape[1]} items: Recall@20 harness {hr:.6f} numpy {recall:.6f}"
              f" |diff| {dr:.1e}; NDCG@20 harness {hn:.6f} numpy {ndcg:.6f} |diff| {dn:.1e};"
              f" numpy {seconds:.1f} s: {'agree' if good else 'DISAGREE'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
