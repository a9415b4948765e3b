package dev.specula.engine;

import java.time.Duration;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import org.jspecify.annotations.Nullable;

/**
 * The time limit of a round's draft phase, for the batch thread and for every direct
 * (batch of one) caller alike. One daemon thread checks the watched threads; when a draft
 * phase has run longer than the limit, it aborts the run in flight
 * ({@code RunOptions.setTerminate}) and interrupts the thread, for a draft hung in Java
 * code. The step then switches drafting off for its sequences
 * ({@link FallbackReason#DRAFT_TIMEOUT}) and verifies plainly. Verification is never
 * limited: a slow target is not a draft failure.
 */
final class StepWatchdog implements AutoCloseable {

    /**
     * One thread that steps sequences, watched while it drafts. Reused for every round:
     * no allocation per round.
     */
    final class Watch implements AutoCloseable {

        private final Thread thread;

        private final OrtSession.RunOptions runOptions;

        private long draftStartNanos;

        private boolean drafting;

        private boolean fired;

        private Watch(Thread thread, OrtSession.RunOptions runOptions) {
            this.thread = thread;
            this.runOptions = runOptions;
        }

        synchronized void beginDraft() {
            draftStartNanos = System.nanoTime();
            drafting = true;
            fired = false;
        }

        /**
         * Ends the draft phase; when the limit fired, clears the abort and the interrupt
         * it caused, so the verification that follows runs.
         * @return whether the limit stopped the draft phase
         */
        synchronized boolean endDraft() {
            drafting = false;
            if (!fired) {
                return false;
            }
            Thread.interrupted();
            try {
                runOptions.setTerminate(false);
            }
            catch (OrtException ex) {
                throw new GenerationException("Cannot reset ONNX Runtime run options: " + ex.getMessage(), ex);
            }
            return true;
        }

        private synchronized void check(long now) {
            if (drafting && !fired && now - draftStartNanos > limitNanos) {
                fired = true;
                terminate(runOptions);
                thread.interrupt();
            }
        }

        /** Aborts whatever runs now (engine shutdown). */
        void terminateRun() {
            terminate(runOptions);
        }

        @Override
        public void close() {
            watches.remove(this);
        }

    }

    private final long limitNanos;

    private final Set<Watch> watches = ConcurrentHashMap.newKeySet();

    private final @Nullable ScheduledExecutorService checker;

    /**
     * A watchdog of draft phases.
     * @param limit longest a round's draft phase may run; null: no limit (and no thread)
     */
    StepWatchdog(@Nullable Duration limit) {
        this.limitNanos = limit == null ? Long.MAX_VALUE : limit.toNanos();
        if (limit == null) {
            this.checker = null;
            return;
        }
        this.checker = Executors.newSingleThreadScheduledExecutor((runnable) -> {
            Thread thread = new Thread(runnable, "specula-step-watchdog");
            thread.setDaemon(true);
            return thread;
        });
        long periodMillis = Math.max(5, limit.toMillis() / 8);
        checker.scheduleAtFixedRate(this::checkAll, periodMillis, periodMillis, TimeUnit.MILLISECONDS);
    }

    /**
     * Watches the current thread, which steps with {@code runOptions}; close the watch
     * when it stops stepping.
     */
    Watch watch(OrtSession.RunOptions runOptions) {
        Watch watch = new Watch(Thread.currentThread(), runOptions);
        watches.add(watch);
        return watch;
    }

    /** Aborts every watched run (the engine is closing). */
    void terminateAll() {
        for (Watch watch : watches) {
            watch.terminateRun();
        }
    }

    private void checkAll() {
        long now = System.nanoTime();
        for (Watch watch : watches) {
            watch.check(now);
        }
    }

    static void terminate(OrtSession.RunOptions runOptions) {
        try {
            runOptions.setTerminate(true);
        }
        catch (OrtException | IllegalStateException ignored) {
            // the run options are closed: nothing runs with them
        }
    }

    @Override
    public void close() {
        if (checker != null) {
            checker.shutdownNow();
        }
    }

}
