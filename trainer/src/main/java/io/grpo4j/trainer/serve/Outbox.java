package io.grpo4j.trainer.serve;

import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.function.LongSupplier;

/**
 * Delivers what the engine produces (finished requests, streamed tokens, failures) to the threads waiting for it,
 * from a thread of its own, so that the engine thread never wakes another thread itself. The engine only appends to
 * a lock-free queue; this thread drains it, polling every 0.2 ms while requests are in flight and sleeping when none
 * are (a new request wakes it, from the HTTP thread that submits it).
 *
 * <p>Why: a thread that another wakes is usually placed on the waker's core. When the engine completed requests
 * itself, the HTTP threads it woke could run their responses on its core while it waited: under 16 concurrent
 * clients on 2 cores its thread was preempted 1,257 times in 5 s at about 430 requests/s (involuntary context
 * switches in /proc/PID/task/TID/status). Delivering from here raised {@code grpo bench serve}'s throughput at 16
 * and 64 clients by about a fifth (README). The engine is preempted more often now (3,585 times in 5 s), by what
 * can only be short turns (presumably this thread's polls). The cost: up to 0.2 ms more per delivery, and a few
 * thousand wake-ups a second while requests are in flight.
 */
final class Outbox implements AutoCloseable {
  private static final long POLL_NANOS = TimeUnit.MICROSECONDS.toNanos(200);

  private final ConcurrentLinkedQueue<Runnable> queue = new ConcurrentLinkedQueue<>();
  private final LongSupplier inFlight;
  private final Thread thread;
  private volatile boolean closed;

  /** @param inFlight requests that will still post here: while there are any, the thread polls */
  Outbox(String name, LongSupplier inFlight) {
    this.inFlight = inFlight;
    this.thread = new Thread(this::run, name);
    thread.setDaemon(true);
    thread.start();
  }

  /** Queues a delivery, in order with the others; never blocks and never wakes a thread (the engine calls it). */
  void post(Runnable delivery) {
    queue.add(delivery);
  }

  /** A request was submitted: wakes the thread if it sleeps (request threads call it, never the engine). */
  void expect() {
    LockSupport.unpark(thread);
  }

  private void run() {
    while (true) {
      boolean delivered = false;
      Runnable r;
      while ((r = queue.poll()) != null) {
        delivered = true;
        try {
          r.run();
        } catch (RuntimeException e) { // one client's stream must not stop the others' deliveries
          System.err.println("grpo serve: delivering a result failed: " + e);
        }
      }
      if (closed && queue.isEmpty()) {
        return;
      }
      if (!delivered) {
        if (inFlight.getAsLong() > 0 || closed) {
          LockSupport.parkNanos(this, POLL_NANOS);
        } else {
          LockSupport.park(this);
        }
      }
    }
  }

  /** Delivers what is queued, then stops the thread. */
  @Override
  public void close() {
    closed = true;
    LockSupport.unpark(thread);
    try {
      thread.join(10_000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
