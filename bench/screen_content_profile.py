#!/usr/bin/env python3
"""Screens a content-profile term on a split dumped by `mosaic eval --dump-split DIR`, outside the product.

The term: a user's plays summed in a content space (the items' text embeddings, or their KG entities
weighted by inverse item frequency), each L2-normalised, dotted with every item's row: how close an
item's content is to what the user played. Each term is standardised over the items per user, as the
second version standardises its parts, and added with a weight to a base score.

  --protocol ctr   base: EASE^R at lambda plus a standardised log-popularity term. Every point of the
                   grid prints its validation AUC and Recall@20 (validation positives ranked among the
                   CTR items the user did not train on) and its test AUC and F1 (Platt on the training
                   examples, the protocol's, and on the validation examples). The point with the best
                   validation AUC is chosen, with the KG's weight free and with it held at 0.
  --protocol cold  base: a ridge regression from the text embeddings to the SVD factors of the plays (the
                   harness's content ridge, text only). Two pseudo-cold folds of the items with plays
                   (a fifth each, one seeded permutation) choose the KG profile's weight on Recall@20 of
                   all held-out items; test prints Recall@20 of all cold items and of the KG-linked ones
                   ranked among themselves (the harness's "Recall@20 linked").

Figures are not the harness's: the base models are re-implemented here (no shared code) at fixed points.
Standard library and numpy only (python3-numpy, installed by scripts/setup).

  bench/screen_content_profile.py --split DIR --protocol ctr|cold [--seed 2026]
"""
import argparse
import os
import sys

import numpy as np


def read_tsv(path):
    with open(path) as f:
        next(f)
        return [line.rstrip("\n").split("\t") for line in f if line.strip()]


class Split:
    def __init__(self, d):
        self.keys = [r[0] for r in read_tsv(os.path.join(d, "items.tsv"))]
        index = {k: i for i, k in enumerate(self.keys)}
        self.num_items = len(self.keys)
        parts = {n: read_tsv(os.path.join(d, n + ".tsv")) for n in ("train", "valid", "test")}
        users = sorted({r[0] for rows in parts.values() for r in rows})
        user_index = {u: i for i, u in enumerate(users)}
        self.num_users = len(users)
        # (user, item, third column): the label for CTR, the weight otherwise
        self.rows = {n: (np.array([user_index[r[0]] for r in rows], dtype=np.int64),
                         np.array([index[r[1]] for r in rows], dtype=np.int64),
                         np.array([float(r[2]) for r in rows])) for n, rows in parts.items()}
        kg = np.array([[int(x) for x in r] for r in read_tsv(os.path.join(d, "kg.tsv"))], dtype=np.int64)
        kg = kg[kg[:, 0] < self.num_items]  # item -> entity triples (tails >= num_items are entities)
        entities, tail_index = np.unique(kg[:, 2], return_inverse=True)
        self.entities = np.zeros((self.num_items, len(entities)), dtype=np.float32)
        self.entities[kg[:, 0], tail_index] = 1
        self.linked = self.entities.sum(1) > 0
        text = np.fromfile(os.path.join(d, "text.f32"), dtype=np.float32)
        self.text = text.reshape(self.num_items, -1)
        cold = os.path.join(d, "cold_items.tsv")
        self.cold = np.array([index[r[0]] for r in read_tsv(cold)], dtype=np.int64) \
            if os.path.exists(cold) else np.zeros(0, dtype=np.int64)

    def matrix(self, name, label=None):
        u, i, third = self.rows[name]
        keep = np.ones(len(u), bool) if label is None else third == label
        x = np.zeros((self.num_users, self.num_items), dtype=np.float32)
        x[u[keep], i[keep]] = 1
        return x


def normalise_rows(a):
    return a / (np.linalg.norm(a, axis=1, keepdims=True) + 1e-12)


def standardise(s):
    return (s - s.mean(1, keepdims=True)) / (s.std(1, keepdims=True) + 1e-12)


def kg_rows(entities, fitted_items):
    """Entity one-hots weighted by inverse item frequency over the fitted items, L2-normalised."""
    df = entities[fitted_items].sum(0)
    return normalise_rows(entities * np.log((len(fitted_items) + 1) / (1 + df)))


def profile_scores(x, rows):
    """x [users x items] binary, rows [items x dim] normalised: the user's summed rows dotted with each
    item's; an item's own row is taken off its score (it is in the user's sum only if they played it)."""
    s = (x @ rows) @ rows.T
    return s - x * np.sum(rows * rows, axis=1)[None, :]


def auc(scores, labels):
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    i = 0
    while i < len(sorted_scores):  # ties share their mean rank
        j = i
        while j + 1 < len(sorted_scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j + 2) / 2
        i = j + 1
    pos = labels == 1
    p, n = pos.sum(), len(labels) - pos.sum()
    return (ranks[pos].sum() - p * (p + 1) / 2) / (p * n)


def platt(scores, labels):
    """Platt (1999) with his smoothed targets, fitted by Newton's method; returns (a, b)."""
    p_count, n_count = labels.sum(), len(labels) - labels.sum()
    t = np.where(labels == 1, (p_count + 1) / (p_count + 2), 1 / (n_count + 2))
    a, b = 1.0, 0.0
    for _ in range(100):
        p = 1 / (1 + np.exp(-np.clip(a * scores + b, -50, 50)))
        w = p * (1 - p) + 1e-12
        g = np.array([np.sum((p - t) * scores), np.sum(p - t)])
        h = np.array([[np.sum(w * scores * scores), np.sum(w * scores)], [np.sum(w * scores), np.sum(w)]])
        da, db = np.linalg.solve(h + 1e-9 * np.eye(2), g)
        a, b = a - da, b - db
        if abs(da) + abs(db) < 1e-10:
            break
    return a, b


def f1(scores_fit, labels_fit, scores, labels):
    a, b = platt(scores_fit, labels_fit)
    predicted = 1 / (1 + np.exp(-np.clip(a * scores + b, -50, 50))) >= 0.5
    tp = np.sum(predicted & (labels == 1))
    return 2 * tp / (2 * tp + np.sum(predicted & (labels == 0)) + np.sum(~predicted & (labels == 1)))


def recall20(scores, relevant, candidates):
    """Recall@20 of `relevant` [users x items] with each user's items ranked among `candidates`."""
    s, r = scores[:, candidates], relevant[:, candidates]
    top = np.argpartition(-s, 20, axis=1)[:, :20]
    hits, n = np.take_along_axis(r, top, 1).sum(1), r.sum(1)
    m = n > 0
    return float(np.mean(hits[m] / np.minimum(n[m], 20)))


def ease(x, lam):
    g = x.T.astype(np.float64) @ x
    p = np.linalg.inv(g + lam * np.eye(g.shape[0]))
    b = -p / np.diag(p)
    np.fill_diagonal(b, 0)
    return (x @ b).astype(np.float32)


def screen_ctr(split):
    train = split.matrix("train", label=1)
    items = np.unique(np.concatenate([split.rows[n][1] for n in ("train", "valid", "test")]))
    x = train[:, items]  # the CTR items: every item of an example
    col = np.full(split.num_items, -1)
    col[items] = np.arange(len(items))
    pop = np.log1p(x.sum(0))
    pop_z = np.broadcast_to((pop - pop.mean()) / pop.std(), x.shape)
    text = standardise(profile_scores(x, normalise_rows(split.text[items])))
    kg = standardise(profile_scores(x, kg_rows(split.entities[items], np.where(x.sum(0) > 0)[0])))
    valid_pos = np.zeros_like(x)
    vu, vi, vl = split.rows["valid"]
    valid_pos[vu[vl == 1], col[vi[vl == 1]]] = 1
    unplayed = x == 0

    def at(s, name):
        u, i, l = split.rows[name]
        return s[u, col[i]], l.astype(int)

    points = []
    print("| lambda | pop | kg | text | valid AUC | valid Recall@20 | test AUC | F1 (Platt on train) | F1 (Platt on valid) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for lam in (100, 500):
        base = standardise(ease(x, lam))
        for a in (0, 0.25, 0.5, 1):
            for b in (0, 0.25, 0.5):
                for c in (0, 0.25, 0.5, 1):
                    s = base + a * pop_z + b * kg + c * text
                    (sv, lv), (st, lt), (se, le) = at(s, "valid"), at(s, "train"), at(s, "test")
                    ranked = np.where(unplayed, s, -np.inf)
                    point = dict(lam=lam, a=a, b=b, c=c, valid_auc=auc(sv, lv),
                                 valid_recall=recall20(ranked, valid_pos, np.arange(len(items))),
                                 test_auc=auc(se, le), f1_train=f1(st, lt, se, le), f1_valid=f1(sv, lv, se, le))
                    points.append(point)
                    print("| {lam} | {a} | {b} | {c} | {valid_auc:.4f} | {valid_recall:.4f} | {test_auc:.4f} | "
                          "{f1_train:.4f} | {f1_valid:.4f} |".format(**point), flush=True)
    chosen = {}
    for label, pool in (("chosen on valid AUC", points), ("chosen on valid AUC, KG weight 0", [p for p in points if p["b"] == 0]),
                        ("EASE^R alone (lambda 100)", [p for p in points if p["lam"] == 100 and p["a"] == p["b"] == p["c"] == 0])):
        p = chosen[label] = max(pool, key=lambda q: q["valid_auc"])
        print("{}: lambda {lam} pop {a} kg {b} text {c}: valid AUC {valid_auc:.4f}, test AUC {test_auc:.4f}, "
              "F1 {f1_train:.4f} / {f1_valid:.4f}, valid Recall@20 {valid_recall:.4f}".format(label, **p))
    best, base = chosen["chosen on valid AUC"], chosen["EASE^R alone (lambda 100)"]
    print(f"test AUC of the point chosen over EASE^R alone: {best['test_auc'] / base['test_auc']:.3f}x; over the "
          f"point chosen with the KG's weight at 0: {best['test_auc'] / chosen['chosen on valid AUC, KG weight 0']['test_auc']:.3f}x")


def ridge_scores(x, fitted, placed, features, rank=64, lam=10.0):
    """Scores of the `placed` items: SVD factors of x's fitted columns, a ridge from features to them."""
    _, s, vt = np.linalg.svd(x[:, fitted], full_matrices=False)
    q = vt[:rank].T * np.sqrt(s[:rank])
    f = features[fitted]
    w = np.linalg.solve(f.T @ f + lam * np.eye(f.shape[1]), f.T @ q)
    return (x[:, fitted] @ q) @ (features[placed] @ w).T


def screen_cold(split, seed):
    x = np.maximum(split.matrix("train"), split.matrix("valid"))
    test = split.matrix("test")
    text = normalise_rows(split.text)
    played = np.where(x.sum(0) > 0)[0]
    betas = (0, 0.05, 0.1, 0.25, 0.5)

    def scores(fit_x, fitted, placed):
        base = standardise(ridge_scores(fit_x, fitted, placed, text))
        rows = kg_rows(split.entities, fitted)
        kg = standardise((fit_x[:, fitted] @ rows[fitted]) @ rows[placed].T)
        return base, kg

    order = np.random.default_rng(seed).permutation(played)
    size = len(order) // 5
    valid = {b: [] for b in betas}
    for fold in range(2):
        held = np.sort(order[fold * size:(fold + 1) * size])
        fit_x = x.copy()
        fit_x[:, held] = 0
        base, kg = scores(fit_x, np.setdiff1d(played, held), held)
        relevant = x[:, held]
        linked = np.where(split.linked[held])[0]
        for b in betas:
            s = base + b * kg
            valid[b].append((recall20(s, relevant, np.arange(len(held))), recall20(s, relevant, linked)))
    base, kg = scores(x, played, split.cold)
    relevant = test[:, split.cold]
    linked = np.where(split.linked[split.cold])[0]
    print(f"{len(split.cold)} cold items, {len(linked)} linked")
    print("| KG profile weight | valid Recall@20 (2 folds) | valid linked | test Recall@20 | test linked |")
    print("|---:|---:|---:|---:|---:|")
    tested = {}
    for b in betas:
        s = base + b * kg
        v = np.mean(valid[b], axis=0)
        tested[b] = (recall20(s, relevant, np.arange(len(split.cold))), recall20(s, relevant, linked))
        print(f"| {b} | {v[0]:.4f} | {v[1]:.4f} | {tested[b][0]:.4f} | {tested[b][1]:.4f} |", flush=True)
    chosen = max(betas, key=lambda b: (np.mean([r[0] for r in valid[b]]), -b))
    print(f"chosen on validation Recall@20: {chosen}; over the base (weight 0): all cold items "
          f"{tested[chosen][0] / tested[0][0]:.3f}x, linked {tested[chosen][1] / tested[0][1]:.3f}x")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--split", required=True, help="a directory written by mosaic eval --dump-split")
    parser.add_argument("--protocol", required=True, choices=("ctr", "cold"))
    parser.add_argument("--seed", type=int, default=2026, help="the pseudo-cold folds' permutation (cold)")
    args = parser.parse_args()
    for name in ("items.tsv", "train.tsv", "valid.tsv", "test.tsv", "kg.tsv", "text.f32"):
        if not os.path.exists(os.path.join(args.split, name)):
            sys.exit(f"{args.split}: no {name}; write the split with mosaic eval --dump-split (a dataset with text)")
    split = Split(args.split)
    if args.protocol == "ctr":
        screen_ctr(split)
    else:
        if len(split.cold) == 0:
            sys.exit(f"{args.split}: no cold_items.tsv entries; dump a --protocol cold split")
        screen_cold(split, args.seed)


if __name__ == "__main__":
    main()
