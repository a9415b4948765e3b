package dev.specula.engine;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import dev.specula.kv.KvStore;
import dev.specula.kv.PrefixCache;
import dev.specula.policy.PlainPolicy;
import dev.specula.policy.SpeculationPolicy;

/**
 * Continuous batching: one thread steps every active request together, so each draft step
 * and each verification of all of them is ONE ONNX Runtime call over the model's
 * {@link KvStore} (packed when the graph takes an attention bias, padded when it takes a
 * mask). Requests join and leave between steps; each accepts its own number of tokens and
 * keeps its own policy.
 *
 * <pre>
 * loop:
 *     admit queued requests (FIFO) up to the batch size; with nothing running, wait up to max-wait
 *     for more to arrive, so they start together
 *     drop cancelled requests (between steps: a batched run is never aborted for one request)
 *     step(all active)                       draft lockstep → one verification call → accept, per sequence
 *     finish requests whose output ended, or that failed alone
 * </pre>
 *
 * Every active request advances every step, and the queue is FIFO: none starves. A draft
 * that fails or runs past the time limit switches speculation off for the requests in
 * that step, which go on plainly: their output does not change. Text leaves through each
 * request's {@link OutputQueue}: this thread never runs client code. An {@link Error}
 * that escapes a step ends the thread: every request, active or queued, fails at once,
 * {@link #isAlive()} turns false and later submits fail.
 */
final class BatchScheduler implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(BatchScheduler.class);

    private static final AtomicInteger OUTPUT_THREADS = new AtomicInteger();

    /**
     * How the scheduler batches.
     *
     * @param maxBatchSize requests stepped together
     * @param queueCapacity requests waiting for a place; beyond it {@link #submit}
     * refuses
     * @param maxWait how long a first request waits for others to start with it
     * @param draftTimeLimit longest a round's draft phase may run before it is aborted
     */
    record Settings(int maxBatchSize, int queueCapacity, Duration maxWait, @Nullable Duration draftTimeLimit) {

        Settings {
            if (maxBatchSize < 1) {
                throw new IllegalArgumentException("maxBatchSize must be >= 1 but was " + maxBatchSize);
            }
            if (queueCapacity < 1) {
                throw new IllegalArgumentException("queueCapacity must be >= 1 but was " + queueCapacity);
            }
        }
    }

    /** A request waiting for, or holding, a place in the batch. */
    private record Pending(GenerationRequest request, OutputQueue output) {
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

    private final KvStore targetPool;

    private final @Nullable KvStore draftPool;

    private final BlockingQueue<Pending> queue;

    private final OrtSession.RunOptions runOptions;

    private final StepWatchdog watchdog;

    private final boolean ownsWatchdog;

    private final ExecutorService output;

    private final Thread thread;

    private final List<Active> active = new ArrayList<>();

    /**
     * Guards {@link #accepting}: a request is queued only while the thread will still
     * take it.
     */
    private final Object submitLock = new Object();

    private boolean accepting = true;

    private volatile boolean running = true;

    /** What killed the thread; null while it lives. */
    private volatile @Nullable Throwable death;

    BatchScheduler(ModelPair models, Settings settings) {
        this(models, settings, null);
    }

    /**
     * A scheduler that seeds requests from, and stores their prompts into,
     * {@code prefixCache} (null: none).
     */
    BatchScheduler(ModelPair models, Settings settings, @Nullable PrefixCache prefixCache) {
        this(new SpeculativeDecoder(models, prefixCache), settings, null);
    }

    /**
     * A scheduler on {@code watchdog} (shared with the engine's direct calls; null: one
     * of its own).
     */
    BatchScheduler(SpeculativeDecoder decoder, Settings settings, @Nullable StepWatchdog watchdog) {
        this.decoder = decoder;
        this.settings = settings;
        this.ownsWatchdog = watchdog == null;
        this.watchdog = watchdog != null ? watchdog : new StepWatchdog(settings.draftTimeLimit());
        this.targetPool = decoder.models().targetSteps().newStore();
        this.draftPool = decoder.models().draft().map((draft) -> draft.newStore()).orElse(null);
        this.queue = new ArrayBlockingQueue<>(settings.queueCapacity());
        try {
            this.runOptions = new OrtSession.RunOptions();
        }
        catch (OrtException ex) {
            throw new GenerationException("Cannot create ONNX Runtime run options: " + ex.getMessage(), ex);
        }
        this.output = Executors.newCachedThreadPool((runnable) -> {
            Thread deliverer = new Thread(runnable, "specula-output-" + OUTPUT_THREADS.incrementAndGet());
            deliverer.setDaemon(true);
            return deliverer;
        });
        this.thread = new Thread(this::run, "specula-batch");
        this.thread.setDaemon(true);
        this.thread.start();
    }

    /** The batch path the target's graph allows: packed (unpadded) or padded. */
    KvStore.Layout layout() {
        return targetPool.layout();
    }

    /**
     * Queues a request; the future completes when its output ends and its text was
     * delivered (or fails with the cause).
     * @throws BatchQueueFullException when {@code queueCapacity} requests are already
     * waiting
     * @throws ContextLengthExceededException before queueing, when prompt + max new
     * tokens do not fit
     * @throws GenerationException when the batch thread died
     * @throws IllegalStateException when the scheduler is closed
     */
    CompletableFuture<GenerationResult> submit(GenerationRequest request) {
        decoder.checkContext(request, decoder.models().draft().isPresent());
        CompletableFuture<GenerationResult> result = new CompletableFuture<>();
        Pending pending = new Pending(request, new OutputQueue(request.listener(), result, output));
        synchronized (submitLock) {
            if (!accepting) {
                throw refusal();
            }
            if (!queue.offer(pending)) {
                throw new BatchQueueFullException(settings.queueCapacity());
            }
        }
        return result;
    }

    /**
     * Whether the batch thread is running: false after {@link #close()}, or when an
     * {@link Error} killed it.
     */
    boolean isAlive() {
        return death == null && thread.isAlive();
    }

    /** What killed the batch thread, if something did. */
    @Nullable Throwable death() {
        return death;
    }

    private RuntimeException refusal() {
        Throwable cause = death;
        return cause != null ? new GenerationException("The engine thread died: " + cause, cause)
                : new IllegalStateException("The batch scheduler is closed");
    }

    private void run() {
        Throwable end = null;
        try (StepWatchdog.Watch watch = watchdog.watch(runOptions)) {
            loop(watch);
        }
        catch (Throwable fatal) {
            LOG.error("The Specula batch thread died; every request fails until the engine is restarted", fatal);
            death = fatal;
            end = fatal;
        }
        synchronized (submitLock) {
            accepting = false;
        }
        failEverything(end != null ? new GenerationException("The engine thread died: " + end, end)
                : new GenerationException("The batch scheduler was closed", null));
    }

    private void loop(StepWatchdog.Watch watch) {
        while (running) {
            try {
                admit();
                if (active.isEmpty()) {
                    continue;
                }
                dropCancelled();
                if (!active.isEmpty()) {
                    List<Sequence> batch = new ArrayList<>(active.size());
                    for (Active request : active) {
                        batch.add(request.sequence);
                    }
                    decoder.step(batch, watch);
                    finishEnded();
                }
            }
            catch (InterruptedException ex) {
                if (!running) {
                    return;
                }
            }
            catch (RuntimeException ex) {
                // not one sequence's fault (those fail alone inside the step): a fault of
                // the scheduler itself
                failActive(ex);
            }
        }
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
        GenerationRequest request = pending.request();
        if (request.cancellation() != null && request.cancellation().isCancelled()) {
            pending.output().fail(new CancellationException("Cancelled while queued"));
            return;
        }
        try {
            SpeculationPolicy policy = request.policy().get();
            boolean speculative = draftPool != null && !(policy instanceof PlainPolicy);
            // the sequence streams into its output queue, never into the caller's
            // listener
            Sequence sequence = decoder.open(request, policy, pending.output(), targetPool.join(),
                    speculative ? draftPool.join() : null, runOptions);
            active.add(new Active(pending, sequence, speculative ? policy.name() : PlainPolicy.NAME));
        }
        catch (OrtException | RuntimeException ex) {
            pending.output().fail(ex);
        }
    }

    private void dropCancelled() {
        for (Iterator<Active> it = active.iterator(); it.hasNext();) {
            Active request = it.next();
            if (request.sequence.isCancelled() || request.pending.output().listenerFailed()) {
                request.sequence.output.finish(FinishReason.CANCELLED);
                complete(request);
                it.remove();
            }
        }
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
        OutputQueue output = request.pending.output();
        try {
            if (sequence.failure != null) {
                output.fail(sequence.failure);
                return;
            }
            sequence.stats.recordWall(System.nanoTime() - request.admittedNanos, sequence.output.count());
            GenerationResult result = sequence.result(request.policyName);
            if (sequence.output.finishReason() != FinishReason.CANCELLED) {
                decoder.storePrefix(sequence);
            }
            output.complete(result);
        }
        catch (RuntimeException ex) {
            output.fail(ex);
        }
        finally {
            close(sequence);
        }
    }

    private void failActive(Throwable cause) {
        for (Active request : active) {
            close(request.sequence);
            request.pending.output().fail(cause);
        }
        active.clear();
    }

    /**
     * Fails the active and the queued requests; called once nothing can be queued any
     * more.
     */
    private void failEverything(Throwable cause) {
        failActive(cause);
        Pending pending;
        while ((pending = queue.poll()) != null) {
            pending.output().fail(cause);
        }
    }

    private static void close(Sequence sequence) {
        try {
            sequence.close();
        }
        catch (RuntimeException ex) {
            LOG.debug("Closing a sequence failed", ex);
        }
    }

    /**
     * Stops the thread: refuses new requests, aborts the run in flight, waits for the
     * thread to end (every pending request then fails), and only then frees the KV pools
     * the thread used.
     */
    @Override
    public void close() {
        synchronized (submitLock) {
            accepting = false;
        }
        running = false;
        StepWatchdog.terminate(runOptions);
        thread.interrupt();
        try {
            thread.join(30_000);
        }
        catch (InterruptedException ex) {
            Thread.currentThread().interrupt();
        }
        if (ownsWatchdog) {
            watchdog.close();
        }
        output.shutdown();
        if (thread.isAlive()) {
            LOG.warn("The Specula batch thread did not stop within 30 s; its KV pools are left allocated");
            return;
        }
        targetPool.close();
        if (draftPool != null) {
            draftPool.close();
        }
        runOptions.close();
    }

}
