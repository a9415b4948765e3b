package dev.specula.engine;

import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;

import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import dev.specula.kv.KvStore;
import dev.specula.kv.PrefixCache;

/**
 * The engine over one {@link ModelPair}: every request is a batch of sequences stepped by
 * {@link SpeculativeDecoder#step} — the same step, the same in-place fallback (drafting
 * switched off when the draft fails or overruns its time limit) and the same
 * {@link StepWatchdog}, whichever way it arrives.
 *
 * <pre>
 * generate(request)   a batch of one on the caller's thread (no thread hop; the listener runs on that thread)
 * submit(request)     continuous batching on the engine thread (started on first use); text and the result
 *                     reach the caller through an output queue, never from the engine thread
 * </pre>
 *
 * The engine does not own the models: whoever made the {@link ModelPair} closes it, after
 * the engine.
 */
public final class Engine implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(Engine.class);

    /**
     * How the engine batches and limits drafting.
     *
     * @param maxBatchSize requests stepped together by {@link #submit}
     * @param queueCapacity requests waiting for a place in the batch; beyond it
     * {@link #submit} refuses
     * @param maxBatchWait how long a first request waits for others to start with it
     * @param draftTimeLimit longest a round's draft phase may run; then drafting is
     * switched off (plain from there on); null: no limit
     */
    public record Settings(int maxBatchSize, int queueCapacity, Duration maxBatchWait,
            @Nullable Duration draftTimeLimit) {

        /**
         * The defaults of every layer above (the serving layer's settings and the
         * properties equal these).
         */
        public static final int DEFAULT_MAX_BATCH_SIZE = 8;

        public static final int DEFAULT_QUEUE_CAPACITY = 64;

        public static final Duration DEFAULT_MAX_BATCH_WAIT = Duration.ofMillis(2);

        public static final Duration DEFAULT_DRAFT_TIME_LIMIT = Duration.ofSeconds(10);

        public Settings {
            if (maxBatchSize < 1) {
                throw new IllegalArgumentException("maxBatchSize must be >= 1 but was " + maxBatchSize);
            }
            if (queueCapacity < 1) {
                throw new IllegalArgumentException("queueCapacity must be >= 1 but was " + queueCapacity);
            }
            if (maxBatchWait == null || maxBatchWait.isNegative()) {
                throw new IllegalArgumentException("maxBatchWait must be >= 0 but was " + maxBatchWait);
            }
            if (draftTimeLimit != null && (draftTimeLimit.isNegative() || draftTimeLimit.isZero())) {
                throw new IllegalArgumentException("draftTimeLimit must be > 0 but was " + draftTimeLimit);
            }
        }

        /**
         * 8 requests a batch, 64 waiting, 2 ms to gather a batch, 10 s for a round's
         * drafts.
         */
        public static Settings defaults() {
            return new Settings(DEFAULT_MAX_BATCH_SIZE, DEFAULT_QUEUE_CAPACITY, DEFAULT_MAX_BATCH_WAIT,
                    DEFAULT_DRAFT_TIME_LIMIT);
        }

        /** These settings with no time limit on drafting (benchmarks, the CLI). */
        public Settings withoutDraftTimeLimit() {
            return new Settings(maxBatchSize, queueCapacity, maxBatchWait, null);
        }
    }

    private final SpeculativeDecoder decoder;

    private final Settings settings;

    private final StepWatchdog watchdog;

    private @Nullable BatchScheduler scheduler;

    private boolean closed;

    public Engine(ModelPair models, Settings settings) {
        this(models, settings, null);
    }

    /**
     * An engine that seeds requests from, and stores their prompts into,
     * {@code prefixCache} (null: none).
     */
    public Engine(ModelPair models, Settings settings, @Nullable PrefixCache prefixCache) {
        if (models == null) {
            throw new IllegalArgumentException("models must not be null");
        }
        if (settings == null) {
            throw new IllegalArgumentException("settings must not be null");
        }
        this.decoder = new SpeculativeDecoder(models, prefixCache);
        this.settings = unbatchedUnlessHolesAreExact(models, settings);
        this.watchdog = new StepWatchdog(settings.draftTimeLimit());
    }

    /**
     * Generates on the caller's thread until end-of-sequence, a stop string, max new
     * tokens or cancellation.
     * @throws ContextLengthExceededException before any work, when prompt + max new
     * tokens do not fit
     * @throws GenerationException when ONNX Runtime fails
     */
    public GenerationResult generate(GenerationRequest request) {
        return decoder.generate(request, watchdog);
    }

    /**
     * Queues a request for the batch; the future completes after its last text reached
     * the listener.
     * @throws BatchQueueFullException when {@code queueCapacity} requests are already
     * waiting
     * @throws ContextLengthExceededException before queueing, when prompt + max new
     * tokens do not fit
     * @throws GenerationException when the engine thread died
     * @throws IllegalStateException when the engine is closed
     */
    public CompletableFuture<GenerationResult> submit(GenerationRequest request) {
        return scheduler().submit(request);
    }

    /**
     * Whether the engine can serve: false once closed, or when an {@link Error} killed
     * the engine thread.
     */
    public boolean isAlive() {
        synchronized (this) {
            return !closed && (scheduler == null || scheduler.isAlive());
        }
    }

    /** What killed the engine thread, if something did. */
    public Optional<Throwable> failure() {
        synchronized (this) {
            return scheduler == null ? Optional.empty() : Optional.ofNullable(scheduler.death());
        }
    }

    /**
     * The batch layout the target's graph allows; empty until the first {@link #submit}
     * starts batching.
     */
    public Optional<KvStore.Layout> layout() {
        synchronized (this) {
            return scheduler == null ? Optional.empty() : Optional.of(scheduler.layout());
        }
    }

    /**
     * Padded batches and rollbacks leave masked slots in the cache: a model that attends
     * them ({@link dev.specula.model.Decoder#holesAreExact()}) is stepped one sequence at
     * a time.
     */
    private static Settings unbatchedUnlessHolesAreExact(ModelPair models, Settings settings) {
        boolean exact = models.target().holesAreExact() && models.targetSteps().holesAreExact()
                && models.draft().map((draft) -> draft.holesAreExact()).orElse(true);
        if (exact || settings.maxBatchSize() == 1) {
            return settings;
        }
        LOG.info("Batching off (max batch size {} -> 1): a model of this pair attends masked cache slots",
                settings.maxBatchSize());
        return new Settings(1, settings.queueCapacity(), settings.maxBatchWait(), settings.draftTimeLimit());
    }

    public Settings settings() {
        return settings;
    }

    private synchronized BatchScheduler scheduler() {
        if (closed) {
            throw new IllegalStateException("The engine is closed");
        }
        if (scheduler == null) {
            scheduler = new BatchScheduler(decoder, new BatchScheduler.Settings(settings.maxBatchSize(),
                    settings.queueCapacity(), settings.maxBatchWait(), settings.draftTimeLimit()), watchdog);
        }
        return scheduler;
    }

    /**
     * Stops the engine thread (aborting its run in flight; pending requests fail) and
     * aborts direct runs.
     */
    @Override
    public void close() {
        BatchScheduler running;
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
            running = scheduler;
        }
        if (running != null) {
            running.close();
        }
        watchdog.terminateAll();
        watchdog.close();
    }

}
