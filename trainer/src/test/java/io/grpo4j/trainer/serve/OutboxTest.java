package io.grpo4j.trainer.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpo4j.trainer.Fixtures;
import io.grpo4j.trainer.generation.Sampler;
import io.grpo4j.trainer.generation.SamplingParams;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/**
 * The engine's deliveries leave from the outbox's own thread, in order, whatever one of them throws; the thread
 * sleeps with nothing in flight and wakes for the next request; closing delivers what is queued.
 */
class OutboxTest {
  @Test
  void deliversInOrderPastAFailureAndAfterSleeping() throws Exception {
    AtomicLong inFlight = new AtomicLong(1);
    List<Integer> got = Collections.synchronizedList(new ArrayList<>());
    Set<String> threads = ConcurrentHashMap.newKeySet();
    Outbox out = new Outbox("test-outbox", inFlight::get);
    try {
      for (int i = 0; i < 100; i++) {
        int n = i;
        out.post(() -> {
          threads.add(Thread.currentThread().getName());
          if (n == 50) {
            throw new IllegalStateException("a client's stream broke");
          }
          got.add(n);
        });
      }
      CountDownLatch first = new CountDownLatch(1);
      out.post(() -> {
        inFlight.set(0); // nothing in flight: the thread sleeps until expect()
        first.countDown();
      });
      assertTrue(first.await(5, TimeUnit.SECONDS));
      Thread.sleep(50);
      CountDownLatch second = new CountDownLatch(1);
      inFlight.set(1);
      out.post(second::countDown);
      out.expect();
      assertTrue(second.await(5, TimeUnit.SECONDS), "woken by expect()");
      inFlight.set(0);
      CountDownLatch last = new CountDownLatch(1);
      out.post(last::countDown);
    } finally {
      out.close(); // delivers the last one even though nothing is in flight
    }
    List<Integer> want = new ArrayList<>();
    for (int i = 0; i < 100; i++) {
      if (i != 50) {
        want.add(i);
      }
    }
    assertEquals(want, got);
    assertEquals(Set.of("test-outbox"), threads);
  }

  @Test
  void theEngineThreadWakesNobody() throws Exception {
    try (InferenceEngine engine = new InferenceEngine(InferenceEngine.Settings.of(Fixtures.model("tiny-qwen2")))) {
      Set<String> threads = ConcurrentHashMap.newKeySet();
      InferenceEngine.Listener listener = new InferenceEngine.Listener() {
        @Override
        public void token(int choice, long token, float logprob, Map<Long, Float> top) {
          threads.add(Thread.currentThread().getName());
        }

        @Override
        public void done(int choice, String reason) {
          threads.add(Thread.currentThread().getName());
        }
      };
      Sampler.Request q = new Sampler.Request(new long[] {11, 12, 13}, 2, SamplingParams.sample(6, 1.0), 5, false);
      var job = new InferenceEngine.Job(List.of(q), List.of(), 0, -1, true, listener);
      assertEquals(2, engine.submit(job).get(30, TimeUnit.SECONDS).size());
      assertEquals(Set.of("grpo-serve-outbox"), threads); // every token and end, never the engine's own thread
    }
  }
}
