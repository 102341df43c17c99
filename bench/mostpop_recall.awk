#!/usr/bin/gawk -f
# Most-popular Recall@20 and NDCG@20 recomputed from a split dumped by `mosaic eval --dump-split`,
# independently of Mosaic's code: the item universe in items.tsv order (dense index), popularity =
# training interactions per item, ties broken by the lower index, each user's training items
# excluded from the ranking, averaged over users with test items.
#   gawk -f bench/mostpop_recall.awk DIR/items.tsv DIR/train.tsv DIR/test.tsv
FNR == 1 { file++; next }                       # headers
file == 1 { index_of[$1] = n_items; key[n_items++] = $1; next }
file == 2 { count[$2]++; seen[$1 SUBSEP $2] = 1; next }
file == 3 { tests[$1] = tests[$1] " " $2; n_test[$1]++; relevant[$1 SUBSEP $2] = 1; next }
END {
  # Global order: popularity descending, then index ascending.
  for (i = 0; i < n_items; i++) order[i] = sprintf("%012d %012d", 999999999999 - (count[key[i]] + 0), i)
  n = asort(order, sorted)
  users = 0; recall = 0; ndcg = 0
  for (u in tests) {
    hits = 0; dcg = 0; taken = 0
    for (r = 1; r <= n && taken < 20; r++) {
      split(sorted[r], parts, " "); it = key[parts[2] + 0]
      if ((u SUBSEP it) in seen) continue
      taken++
      if ((u SUBSEP it) in relevant) { hits++; dcg += 1 / (log(taken + 1) / log(2)) }
    }
    idcg = 0; m = n_test[u] < 20 ? n_test[u] : 20
    for (k = 1; k <= m; k++) idcg += 1 / (log(k + 1) / log(2))
    users++; recall += hits / n_test[u]; ndcg += dcg / idcg
  }
  printf "users %d recall20 %.10f ndcg20 %.10f\n", users, recall / users, ndcg / users
}
