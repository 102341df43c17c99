// Kill -9 test: a child process writes batches to a store and is killed with SIGKILL at
// random moments. After every kill the store must open, pass the consistency check and hold
// a prefix of whole batches: never part of one.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <random>

#include "store/store.h"
#include "tests/test_util.h"

namespace mosaic::store {
namespace {

constexpr int kItemsPerBatch = 6;

std::string ItemKey(int batch, int j) { return "b" + std::to_string(batch) + "-" + std::to_string(j); }

// Writes one batch: items with a shared entity, KG edges both ways, and a user's plays.
Status WriteBatchNumber(Store* store, int batch) {
  std::unique_ptr<Batch> b;
  MOSAIC_RETURN_IF_ERROR(store->BeginBatch(&b));
  NodeId user, entity;
  RelationId rel;
  MOSAIC_RETURN_IF_ERROR(b->UpsertNode(NodeKind::kUser, "u" + std::to_string(batch % 7), "", &user));
  MOSAIC_RETURN_IF_ERROR(b->UpsertNode(NodeKind::kEntity, "e" + std::to_string(batch), "entity", &entity));
  MOSAIC_RETURN_IF_ERROR(b->UpsertRelation("rel" + std::to_string(batch % 3), &rel));
  for (int j = 0; j < kItemsPerBatch; ++j) {
    NodeId item;
    MOSAIC_RETURN_IF_ERROR(b->UpsertNode(NodeKind::kItem, ItemKey(batch, j), "item", &item));
    MOSAIC_RETURN_IF_ERROR(b->AddEdge(item, rel, entity));
    Interaction x;
    x.user = user;
    x.item = item;
    x.weight = batch + j;
    MOSAIC_RETURN_IF_ERROR(b->PutInteraction(x));
  }
  return b->Commit();
}

// Counts whole batches and fails the test on a partial one.
int CountWholeBatches(const ReadView& view) {
  int batches = 0;
  NodeId id;
  while (view.FindNode(NodeKind::kItem, ItemKey(batches, 0), &id).ok()) ++batches;
  // The batch after the last whole one must be wholly absent.
  for (int j = 0; j < kItemsPerBatch; ++j) {
    EXPECT_TRUE(view.FindNode(NodeKind::kItem, ItemKey(batches, j), &id).IsNotFound()) << "partial batch " << batches;
  }
  EXPECT_TRUE(view.FindNode(NodeKind::kEntity, "e" + std::to_string(batches), &id).IsNotFound());
  for (int b = 0; b < batches; ++b) {
    for (int j = 0; j < kItemsPerBatch; ++j) {
      EXPECT_TRUE(view.FindNode(NodeKind::kItem, ItemKey(b, j), &id).ok()) << "batch " << b << " lacks item " << j;
    }
  }
  Counters c;
  EXPECT_TRUE(view.GetCounters(&c).ok());
  EXPECT_EQ(c.nodes[NodeKind::kItem], uint64_t(batches) * kItemsPerBatch);
  EXPECT_EQ(c.interactions, uint64_t(batches) * kItemsPerBatch);
  return batches;
}

// Writes batches until killed; after its first batch, one byte on `committed` says it is writing.
[[noreturn]] void ChildWriter(const std::string& dir, int first_batch, int committed) {
  std::unique_ptr<Store> store;
  OpenOptions o;
  o.create_if_missing = true;
  if (!Store::Open(dir, o, &store).ok()) _exit(3);
  for (int batch = first_batch;; ++batch) {
    if (!WriteBatchNumber(store.get(), batch).ok()) _exit(4);
    if (batch == first_batch && write(committed, "1", 1) != 1) _exit(5);
  }
}

TEST(StoreCrashTest, SigkillDuringBatchesLeavesOnlyWholeBatches) {
  mosaic::testing::TempDir tmp;
  const std::string dir = tmp / "store";
  std::mt19937 rng(20261122);
  std::uniform_int_distribution<int> delay_ms(20, 250);
  int batches = 0, grew = 0;
  const int kRuns = 24;
  for (int run = 0; run < kRuns; ++run) {
    int committed[2];
    ASSERT_EQ(pipe(committed), 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(committed[0]);
      ChildWriter(dir, batches, committed[1]);
    }
    close(committed[1]);
    // The kill lands a random time after the writer's first commit, not after a fixed time from its
    // start, so that a loaded machine (a slow start) does not make every kill land before any write.
    char byte = 0;
    ASSERT_EQ(read(committed[0], &byte, 1), 1) << "the writer stopped before its first batch";
    close(committed[0]);
    usleep(useconds_t(delay_ms(rng)) * 1000);
    ASSERT_EQ(kill(pid, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status)) << "writer exited on its own with " << WEXITSTATUS(status);

    std::unique_ptr<Store> store;
    ASSERT_OK(Store::Open(dir, OpenOptions(), &store));
    auto view = store->NewReadView();
    ASSERT_OK(view->CheckConsistency());
    const int now = CountWholeBatches(*view);
    ASSERT_GE(now, batches) << "committed batches were lost";
    if (now > batches) ++grew;
    batches = now;
  }
  // Every kill landed while writing, after at least one more whole batch.
  EXPECT_EQ(grew, kRuns);
  std::printf("%d runs, %d batches committed in all\n", kRuns, batches);
}

}  // namespace
}  // namespace mosaic::store
