package dev.specula.engine;

import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.specula.kv.KvPool;
import dev.specula.policy.PlainPolicy;
import dev.specula.policy.SpeculationPolicy;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * Continuous batching: one thread steps every active request together, so each draft step and each
 * verification of all of them is ONE ONNX Runtime call over the model's {@link KvPool} (packed when the
 * graph takes an attention bias, padded when it takes a mask). Requests join and leave between steps;
 * each accepts its own number of tokens and keeps its own policy.
 *
 * <pre>
 * loop:
 *     admit queued requests (FIFO) up to the batch size; with nothing running, wait up to max-wait
 *     for more to arrive, so they start together
 *     drop cancelled requests (between steps: a batched run is never aborted for one request)
 *     step(all active)                       draft lockstep → one verification call → accept, per sequence
 *     finish requests whose output ended
 * </pre>
 *
 * Every active request advances every step, and the queue is FIFO: none starves. A draft that fails or
 * runs past the round time limit (the run is aborted through {@code RunOptions.setTerminate}) switches
 * speculation off for the requests in that step, which go on plainly: their output does not change.
 */
public final class BatchScheduler implements AutoCloseable {

    /**
     * @param maxBatchSize requests stepped together
     * @param queueCapacity requests waiting for a place; beyond it {@link #submit} refuses
     * @param maxWait how long a first request waits for others to start with it
     * @param roundTimeout longest a step may run before its run is aborted
     */
    public record Settings(int maxBatchSize, int queueCapacity, Duration maxWait, Duration roundTimeout) {

        public Settings {
            if (maxBatchSize < 1) {
                throw new IllegalArgumentException("maxBatchSize must be >= 1 but was " + maxBatchSize);
            }
            if (queueCapacity < 1) {
                throw new IllegalArgumentException("queueCapacity must be >= 1 but was " + queueCapacity);
            }
        }
    }

    /** A request waiting for, or holding, a place in the batch. */
    private record Pending(GenerationRequest request, CompletableFuture<GenerationResult> result) {
    }

    /** An admitted request. */
    private static final class Active {
        final Pending pending;
        final Sequence sequence;
        final String policyName;
        final long admittedNanos;

        Active(Pending pending, Sequence sequence, String policyName) {
            this.pending = pending;
            this.sequence = sequence;
            this.policyName = policyName;
            this.admittedNanos = System.nanoTime();
        }
    }

    private final SpeculativeDecoder decoder;
    private final Settings settings;
    private final KvPool targetPool;
    private final KvPool draftPool;
    private final BlockingQueue<Pending> queue;
    private final OrtSession.RunOptions runOptions;
    private final Thread thread;
    private final ScheduledExecutorService watchdog;
    private final List<Active> active = new ArrayList<>();
    private volatile boolean running = true;
    private volatile long stepStartNanos;
    private volatile boolean stepping;
    private volatile boolean timedOut;

    public BatchScheduler(ModelPair models, Settings settings) {
        this(models, settings, null);
    }

    /** A scheduler that seeds requests from, and stores their prompts into, {@code prefixCache} (null: none). */
    public BatchScheduler(ModelPair models, Settings settings, dev.specula.kv.PrefixCache prefixCache) {
        this.decoder = new SpeculativeDecoder(models, prefixCache);
        this.settings = settings;
        this.targetPool = models.targetSteps().newPool();
        this.draftPool = models.draft().map(draft -> draft.newPool()).orElse(null);
        this.queue = new ArrayBlockingQueue<>(settings.queueCapacity());
        try {
            this.runOptions = new OrtSession.RunOptions();
        }
        catch (OrtException ex) {
            throw new GenerationException("Cannot create ONNX Runtime run options: " + ex.getMessage(), ex);
        }
        this.thread = new Thread(this::loop, "specula-batch");
        this.thread.setDaemon(true);
        this.watchdog = Executors.newSingleThreadScheduledExecutor(runnable -> {
            Thread watcher = new Thread(runnable, "specula-batch-watchdog");
            watcher.setDaemon(true);
            return watcher;
        });
        long periodMillis = Math.max(5, settings.roundTimeout().toMillis() / 8);
        watchdog.scheduleAtFixedRate(this::checkStep, periodMillis, periodMillis, TimeUnit.MILLISECONDS);
        this.thread.start();
    }

    /** The batch path the target's graph allows: packed (unpadded) or padded. */
    public KvPool.Layout layout() {
        return targetPool.layout();
    }

    /**
     * Queues a request; the future completes when its output ends (or fails with the cause).
     *
     * @throws BatchQueueFullException when {@code queueCapacity} requests are already waiting
     * @throws ContextLengthExceededException before queueing, when prompt + max new tokens do not fit
     */
    public CompletableFuture<GenerationResult> submit(GenerationRequest request) {
        if (!running) {
            throw new IllegalStateException("The batch scheduler is closed");
        }
        decoder.checkContext(request, decoder.models().draft().isPresent());
        Pending pending = new Pending(request, new CompletableFuture<>());
        if (!queue.offer(pending)) {
            throw new BatchQueueFullException(settings.queueCapacity());
        }
        return pending.result();
    }

    /** Whether the batch thread is running. */
    public boolean isAlive() {
        return thread.isAlive();
    }

    /** Requests waiting for a place. */
    public int queued() {
        return queue.size();
    }

    private void loop() {
        while (running) {
            try {
                admit();
                if (active.isEmpty()) {
                    continue;
                }
                dropCancelled();
                if (!active.isEmpty()) {
                    step();
                    finishEnded();
                }
            }
            catch (InterruptedException ex) {
                if (!running) {
                    break;
                }
                Thread.interrupted();
            }
            catch (RuntimeException ex) {
                failAll(ex);
            }
        }
        failAll(new GenerationException("The batch scheduler was closed", null));
    }

    private void admit() throws InterruptedException {
        if (active.isEmpty()) {
            Pending first = queue.poll(200, TimeUnit.MILLISECONDS);
            if (first == null) {
                return;
            }
            start(first);
            long deadline = System.nanoTime() + settings.maxWait().toNanos();
            while (active.size() < settings.maxBatchSize()) {
                long left = deadline - System.nanoTime();
                Pending next = left > 0 ? queue.poll(left, TimeUnit.NANOSECONDS) : queue.poll();
                if (next == null) {
                    break;
                }
                start(next);
            }
            return;
        }
        while (active.size() < settings.maxBatchSize()) {
            Pending next = queue.poll();
            if (next == null) {
                return;
            }
            start(next);
        }
    }

    private void start(Pending pending) {
        if (pending.request().cancellation() != null && pending.request().cancellation().isCancelled()) {
            pending.result().completeExceptionally(new java.util.concurrent.CancellationException("Cancelled while queued"));
            return;
        }
        try {
            SpeculationPolicy policy = pending.request().policy().get();
            boolean speculative = draftPool != null && !(policy instanceof PlainPolicy);
            Sequence sequence = decoder.open(pending.request(), policy, targetPool.join(), speculative ? draftPool.join() : null,
                    runOptions);
            active.add(new Active(pending, sequence, speculative ? policy.name() : PlainPolicy.NAME));
        }
        catch (OrtException | RuntimeException ex) {
            pending.result().completeExceptionally(ex);
        }
    }

    private void dropCancelled() {
        for (Iterator<Active> it = active.iterator(); it.hasNext();) {
            Active request = it.next();
            if (request.sequence.isCancelled()) {
                request.sequence.output.finish(FinishReason.CANCELLED);
                complete(request);
                it.remove();
            }
        }
    }

    private void step() {
        List<Sequence> batch = new ArrayList<>(active.size());
        for (Active request : active) {
            batch.add(request.sequence);
        }
        stepStartNanos = System.nanoTime();
        stepping = true;
        try {
            decoder.step(batch, failure -> {
                if (!timedOut) {
                    return "draft-error";
                }
                // the watchdog aborted the drafts: let the verification that follows run
                stepStartNanos = System.nanoTime();
                clearTimeout();
                return "timeout";
            });
        }
        catch (OrtException ex) {
            throw new GenerationException("ONNX Runtime failed in a batched step: " + ex.getMessage(), ex);
        }
        finally {
            stepping = false;
            if (timedOut) {
                clearTimeout();
            }
        }
    }

    private void clearTimeout() {
        Thread.interrupted();
        try {
            runOptions.setTerminate(false);
        }
        catch (OrtException ignored) {
            // the next run reports it
        }
        timedOut = false;
    }

    private void finishEnded() {
        for (Iterator<Active> it = active.iterator(); it.hasNext();) {
            Active request = it.next();
            if (request.sequence.isFinished()) {
                complete(request);
                it.remove();
            }
        }
    }

    private void complete(Active request) {
        Sequence sequence = request.sequence;
        sequence.stats.recordWall(System.nanoTime() - request.admittedNanos, sequence.output.count());
        GenerationResult result = sequence.result(request.policyName);
        if (sequence.output.finishReason() != FinishReason.CANCELLED) {
            decoder.storePrefix(sequence);
        }
        sequence.close();
        request.pending.result().complete(result);
    }

    private void failAll(Throwable cause) {
        for (Active request : active) {
            try {
                request.sequence.close();
            }
            catch (RuntimeException ignored) {
                // closing after a failure; the cause is what matters
            }
            request.pending.result().completeExceptionally(cause);
        }
        active.clear();
        if (!running) {
            Pending pending;
            while ((pending = queue.poll()) != null) {
                pending.result().completeExceptionally(cause);
            }
        }
    }

    /** Watchdog: a step over the round time limit is aborted inside ONNX Runtime (and its thread interrupted). */
    private void checkStep() {
        if (stepping && !timedOut && System.nanoTime() - stepStartNanos > settings.roundTimeout().toNanos()) {
            timedOut = true;
            try {
                runOptions.setTerminate(true);
            }
            catch (OrtException ignored) {
                // the interrupt below still stops a draft hung in Java
            }
            thread.interrupt();
        }
    }

    @Override
    public void close() {
        running = false;
        watchdog.shutdownNow();
        thread.interrupt();
        try {
            thread.join(10_000);
        }
        catch (InterruptedException ex) {
            Thread.currentThread().interrupt();
        }
        targetPool.close();
        if (draftPool != null) {
            draftPool.close();
        }
        runOptions.close();
    }
}
