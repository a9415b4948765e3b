package dev.specula.serving;

import dev.specula.engine.CancellationToken;

import java.time.Duration;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * The time limit of speculative rounds. One daemon thread checks the running attempts; when a round (draft
 * steps + one verification) has run longer than the limit, it cancels the attempt's token — which aborts
 * the ONNX Runtime run in flight through {@code RunOptions.setTerminate} — and interrupts the thread, for a
 * draft hung in Java code. The attempt then ends on its own thread, which frees its KV caches, and the
 * request goes on plainly. Nothing is abandoned on a pool thread, which a future-based limit would do.
 */
final class RoundWatchdog implements AutoCloseable {

    /** One speculative attempt being watched. */
    final class Watch implements AutoCloseable {

        private final CancellationToken token;
        private final Thread thread;
        private boolean done;
        private boolean fired;

        private Watch(CancellationToken token, Thread thread) {
            this.token = token;
            this.thread = thread;
        }

        private synchronized void check() {
            if (!done && !fired && token.nanosSinceProgress() > limitNanos) {
                fired = true;
                token.cancel();
                thread.interrupt();
            }
        }

        /** Whether the limit stopped this attempt. */
        synchronized boolean fired() {
            return fired;
        }

        /** Stops watching; clears an interrupt the watchdog caused, so it does not leak into later work. */
        @Override
        public void close() {
            synchronized (this) {
                done = true;
                if (fired) {
                    Thread.interrupted();
                }
            }
            watches.remove(this);
        }
    }

    private final long limitNanos;
    private final Set<Watch> watches = ConcurrentHashMap.newKeySet();
    private final ScheduledExecutorService scheduler;

    RoundWatchdog(Duration limit) {
        this.limitNanos = limit.toNanos();
        this.scheduler = Executors.newSingleThreadScheduledExecutor(runnable -> {
            Thread thread = new Thread(runnable, "specula-round-watchdog");
            thread.setDaemon(true);
            return thread;
        });
        long periodMillis = Math.max(5, limit.toMillis() / 8);
        scheduler.scheduleAtFixedRate(this::checkAll, periodMillis, periodMillis, TimeUnit.MILLISECONDS);
    }

    /** Watches the attempt running on the current thread under {@code token}. */
    Watch watch(CancellationToken token) {
        Watch watch = new Watch(token, Thread.currentThread());
        watches.add(watch);
        return watch;
    }

    Duration limit() {
        return Duration.ofNanos(limitNanos);
    }

    private void checkAll() {
        for (Watch watch : watches) {
            watch.check();
        }
    }

    @Override
    public void close() {
        scheduler.shutdownNow();
    }
}
