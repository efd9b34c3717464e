// The change feed: ordered numbering, the bounded ring, numbering across restarts, wake-ups.
#include "core/events/change_feed.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <thread>
#include <vector>

namespace sluice {
namespace {

using Clock = std::chrono::steady_clock;

TEST(ChangeFeedTest, NumbersEventsInOrderAndReadsThemBack) {
  ChangeFeed feed(8);
  EXPECT_EQ(feed.last(), 0u);
  EXPECT_EQ(feed.publish(EventKind::kConfig, "a", "{}"), 1u);
  const auto since = std::chrono::system_clock::time_point(std::chrono::milliseconds(1'000));
  EXPECT_EQ(
      feed.publishState("a", StateFields{State::kRunning, Desired::kRunning, since, ""}, true), 2u);
  auto r = feed.since(0, 100);
  ASSERT_FALSE(r.lost);
  ASSERT_EQ(r.events.size(), 2u);
  EXPECT_EQ(r.events[0]->seq, 1u);
  EXPECT_EQ(r.events[0]->kind, EventKind::kConfig);
  EXPECT_EQ(r.events[0]->json(), "{}");
  EXPECT_EQ(r.events[1]->kind, EventKind::kState);
  EXPECT_EQ(r.events[1]->json(), R"({"flow_id":"a","status":"running","desired":"running",)"
                                 R"("since":"1970-01-01T00:00:01.000Z","error":null})");
  EXPECT_EQ(feed.transitionsTo(State::kRunning), 1u);
  EXPECT_EQ(feed.transitionsTo(State::kFailed), 0u);
  EXPECT_TRUE(feed.since(2, 100).events.empty());
  EXPECT_EQ(feed.since(0, 1).events.size(), 1u) << "max bounds a read";
}

// A state event is held as fields and written when read; a new error in the same state is an
// event but not a transition.
TEST(ChangeFeedTest, WritesAStateEventWhenItIsRead) {
  ChangeFeed feed(8);
  const auto since = std::chrono::system_clock::time_point(std::chrono::milliseconds(2'500));
  feed.publishState("f\"1", StateFields{State::kFailed, Desired::kRunning, since, "boom \"x\""},
                    true);
  feed.publishState("f\"1", StateFields{State::kFailed, Desired::kRunning, since, "again"}, false);
  auto r = feed.since(0, 10);
  ASSERT_EQ(r.events.size(), 2u);
  EXPECT_EQ(r.events[0]->flow_id, "f\"1");
  EXPECT_EQ(r.events[0]->json(), R"({"flow_id":"f\"1","status":"failed","desired":"running",)"
                                 R"("since":"1970-01-01T00:00:02.500Z","error":"boom \"x\""})");
  EXPECT_EQ(r.events[1]->json(),
            stateEventJson("f\"1", "failed", Desired::kRunning, since, "again"));
  EXPECT_EQ(feed.transitionsTo(State::kFailed), 1u) << "the second is not a transition";
}

TEST(ChangeFeedTest, AReaderTooFarBehindIsToldItLostEvents) {
  ChangeFeed feed(4);
  for (int i = 0; i < 10; ++i) feed.publish(EventKind::kConfig, "f", "{}");
  EXPECT_TRUE(feed.since(5, 100).lost) << "6 fell out of a ring of 4 holding 7..10";
  auto r = feed.since(6, 100);
  ASSERT_FALSE(r.lost);
  ASSERT_EQ(r.events.size(), 4u);
  EXPECT_EQ(r.events.front()->seq, 7u);
  EXPECT_TRUE(feed.since(11, 100).lost) << "an id from the future";
}

TEST(ChangeFeedTest, NumbersKeepGrowingAcrossRestartsThroughTheReserver) {
  uint64_t durable = 1;  // what the store keeps: the next free number
  auto reserver = [&](uint64_t count) {
    const uint64_t first = durable;
    durable += count;
    return first;
  };
  uint64_t last_of_first_run;
  {
    ChangeFeed feed(16);
    feed.setReserver(reserver);
    EXPECT_EQ(feed.publish(EventKind::kConfig, "a", "{}"), 1u);
    last_of_first_run = feed.publish(EventKind::kConfig, "a", "{}");
  }
  ChangeFeed feed(16);  // the next run
  feed.setReserver(reserver);
  const uint64_t first = feed.publish(EventKind::kConfig, "b", "{}");
  EXPECT_GT(first, last_of_first_run);
  EXPECT_EQ(feed.publish(EventKind::kConfig, "b", "{}"), first + 1) << "contiguous in a run";
  EXPECT_TRUE(feed.since(last_of_first_run, 10).lost)
      << "an id of the previous run cannot be resumed: the client must re-read the state";
  EXPECT_EQ(feed.since(first - 1, 10).events.size(), 2u);
}

TEST(ChangeFeedTest, AFailedReservationStillNumbersEventsAndIsNotRetriedPerEvent) {
  ChangeFeed feed(16);
  int calls = 0;
  uint64_t answer = 0;  // the store fails first
  feed.setReserver([&](uint64_t) {
    ++calls;
    return answer;
  });
  EXPECT_EQ(feed.publish(EventKind::kConfig, "a", "{}"), 1u);
  EXPECT_EQ(feed.publish(EventKind::kConfig, "a", "{}"), 2u);
  EXPECT_EQ(calls, 1) << "one attempt per block, not per event";
  // A store that comes back behind what was handed out never makes numbers go backwards.
  answer = 1;
  for (uint64_t i = 3; i <= ChangeFeed::kReserveBlock + 1; ++i) {
    feed.publish(EventKind::kConfig, "a", "{}");
  }
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(feed.publish(EventKind::kConfig, "a", "{}"), ChangeFeed::kReserveBlock + 2);
}

TEST(ChangeFeedTest, ListenersAndWaitersWakeOnPublishAndClose) {
  ChangeFeed feed(16);
  std::atomic<int> woken{0};
  const uint64_t id = feed.addListener([&] { ++woken; });
  std::thread waiter(
      [&] { EXPECT_TRUE(feed.waitPast(0, Clock::now() + std::chrono::seconds(30))); });
  feed.publish(EventKind::kConfig, "a", "{}");
  waiter.join();
  EXPECT_EQ(woken.load(), 1);
  feed.removeListener(id);
  feed.publish(EventKind::kConfig, "a", "{}");
  EXPECT_EQ(woken.load(), 1) << "a removed listener is not called";
  EXPECT_FALSE(feed.waitPast(2, Clock::now() + std::chrono::milliseconds(1)));
  std::thread closed(
      [&] { EXPECT_FALSE(feed.waitPast(2, Clock::now() + std::chrono::seconds(30))); });
  feed.close();
  closed.join();
  EXPECT_TRUE(feed.closed());
}

TEST(ChangeFeedTest, ConcurrentPublishersKeepEachOnesOrder) {
  ChangeFeed feed(100'000);
  constexpr int kThreads = 4;
  constexpr int kEach = 5'000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        feed.publish(EventKind::kState, std::to_string(t), std::to_string(i));
      }
    });
  }
  for (auto& th : threads) th.join();
  auto r = feed.since(0, kThreads * kEach);
  ASSERT_EQ(r.events.size(), size_t{kThreads * kEach});
  std::map<std::string, int> next;
  uint64_t seq = 0;
  for (const auto& e : r.events) {
    EXPECT_EQ(e->seq, ++seq);
    EXPECT_EQ(e->data, std::to_string(next[e->flow_id]++));
  }
}

}  // namespace
}  // namespace sluice
