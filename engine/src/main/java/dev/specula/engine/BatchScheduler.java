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

import dev.specula.kv.KvBudget;
import dev.specula.kv.KvStore;
import dev.specula.kv.PrefixCache;
import dev.specula.policy.SpeculationPolicy;
import dev.specula.proposer.ProposerKind;

/**
 * Continuous batching: one thread steps every active request together, so each draft step
 * and each verification of all of them is ONE ONNX Runtime call over the model's
 * {@link KvStore} (packed when the graph takes an attention bias, padded when it takes a
 * mask). Requests join and leave between steps; each accepts its own number of tokens and
 * keeps its own policy.
 *
 * <pre>
 * loop:
 *     admit queued requests (FIFO) up to the batch size, each once its worst-case KV is reserved
 *     (KvAdmission; the first in line waits, up to specula.kv.max-wait, for running ones to free it);
 *     with nothing running, wait up to max-wait for more to arrive, so they start together
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

    /**
     * The request first in line: its policy, and its place in the KV budget's line for
     * its worst case.
     */
    private record Waiting(Pending pending, SpeculationPolicy policy, Speculation speculation, KvBudget.Ticket ticket,
            long sinceNanos) {
    }

    /** A request whose KV is reserved, about to start. */
    private record Admitted(Pending pending, SpeculationPolicy policy, Speculation speculation,
            KvBudget.Reservation reservation) {
    }

    /** An admitted request. */
    private static final class Active {

        final Pending pending;

        final Sequence sequence;

        final String policyName;

        final KvBudget.Reservation reservation;

        final long admittedNanos;

        Active(Pending pending, Sequence sequence, String policyName, KvBudget.Reservation reservation) {
            this.pending = pending;
            this.sequence = sequence;
            this.policyName = policyName;
            this.reservation = reservation;
            this.admittedNanos = System.nanoTime();
        }

    }

    private final SpeculativeDecoder decoder;

    private final Settings settings;

    private final KvStore targetPool;

    private final @Nullable KvStore draftPool;

    /** The feature head's pool; null without a head. */
    private final @Nullable KvStore headPool;

    private final BlockingQueue<Pending> queue;

    private final OrtSession.RunOptions runOptions;

    private final StepWatchdog watchdog;

    private final boolean ownsWatchdog;

    private final ExecutorService output;

    private final Thread thread;

    private final List<Active> active = new ArrayList<>();

    private final KvAdmission admission;

    /**
     * The request first in line, waiting for its KV; null when none. Volatile for
     * {@link #load()}; only the batch thread writes it.
     */
    private volatile @Nullable Waiting head;

    /**
     * Sequences of the latest step, 0 once none runs; written by the batch thread only,
     * read by {@link #load()}.
     */
    private volatile int stepping;

    /** Batched steps taken; written by the batch thread only. */
    private volatile long steps;

    /** Sequences over all steps (each adds its batch size); batch thread only. */
    private volatile long steppedSequences;

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
        this(new SpeculativeDecoder(models, prefixCache), settings, null,
                new KvAdmission(models, new KvBudget(Long.MAX_VALUE), Duration.ZERO));
    }

    /**
     * A scheduler on {@code watchdog} (shared with the engine's direct calls; null: one
     * of its own) that reserves each request's KV through {@code admission} (shared with
     * them too).
     */
    BatchScheduler(SpeculativeDecoder decoder, Settings settings, @Nullable StepWatchdog watchdog,
            KvAdmission admission) {
        this.decoder = decoder;
        this.admission = admission;
        this.settings = settings;
        this.ownsWatchdog = watchdog == null;
        this.watchdog = watchdog != null ? watchdog : new StepWatchdog(settings.draftTimeLimit());
        this.targetPool = decoder.models().targetSteps().newStore();
        this.draftPool = decoder.models().draft().map((draft) -> draft.newStore()).orElse(null);
        this.headPool = decoder.models().head().map((head) -> head.newStore()).orElse(null);
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
     * @throws KvCapacityExceededException before queueing, when even the target's KV of
     * prompt + max new tokens exceeds the KV cap
     * @throws GenerationException when the batch thread died
     * @throws IllegalStateException when the scheduler is closed
     */
    CompletableFuture<GenerationResult> submit(GenerationRequest request) {
        // a caller's mistake in the proposer is refused here, before queueing
        ProposerKind proposer = Speculation.proposerOf(request, decoder.models());
        decoder.checkContext(request, proposer);
        // the policy is not known yet: the target's share alone must fit (the draft's is
        // checked in line)
        admission.require(request, Speculation.PLAIN);
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
     * Requests waiting (queued, or first in line for KV), sequences of the latest step,
     * and the step counters; safe from any thread.
     */
    EngineLoad load() {
        return new EngineLoad(queue.size() + (head != null ? 1 : 0), stepping, steps, steppedSequences);
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
                // 0 when the last step finished every sequence (or they failed), before
                // admit waits for more
                stepping = active.size();
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
                    stepping = batch.size();
                    steps++;
                    steppedSequences += batch.size();
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
            Admitted first = next(TimeUnit.MILLISECONDS.toNanos(200));
            if (first == null) {
                return;
            }
            start(first);
            long deadline = System.nanoTime() + settings.maxWait().toNanos();
            while (active.size() < settings.maxBatchSize()) {
                Admitted next = next(deadline - System.nanoTime());
                if (next == null) {
                    break;
                }
                start(next);
            }
            return;
        }
        while (active.size() < settings.maxBatchSize()) {
            Admitted next = next(0);
            if (next == null) {
                return;
            }
            start(next);
        }
    }

    /**
     * The next request in FIFO order whose worst-case KV is now reserved, waiting up to
     * {@code waitNanos} for one; null when none. The first in line keeps its place while
     * its KV does not fit (those behind it wait too: order is kept), up to the KV wait
     * limit, then fails as busy.
     */
    private @Nullable Admitted next(long waitNanos) throws InterruptedException {
        long deadline = System.nanoTime() + waitNanos;
        while (true) {
            if (head == null) {
                long left = deadline - System.nanoTime();
                Pending pending = left > 0 ? queue.poll(left, TimeUnit.NANOSECONDS) : queue.poll();
                if (pending == null) {
                    return null;
                }
                head = line(pending);
                continue;
            }
            Waiting waiting = head;
            if (KvAdmission.isCancelled(waiting.pending().request().cancellation())) {
                head = null;
                waiting.ticket().cancel();
                waiting.pending().output().fail(new CancellationException("Cancelled while queued"));
                continue;
            }
            KvBudget.Reservation reservation = waiting.ticket().tryClaim();
            if (reservation != null) {
                head = null;
                return new Admitted(waiting.pending(), waiting.policy(), waiting.speculation(), reservation);
            }
            if (System.nanoTime() - waiting.sinceNanos() > admission.maxWait().toNanos()) {
                head = null;
                waiting.ticket().cancel();
                waiting.pending()
                    .output()
                    .fail(new KvWaitTimeoutException(waiting.ticket().bytes(), admission.budget().maxBytes(),
                            admission.maxWait()));
                continue;
            }
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                return null;
            }
            admission.budget().awaitRelease(Math.min(left, TimeUnit.MILLISECONDS.toNanos(50)));
        }
    }

    /**
     * Puts a queued request first in line for its worst-case KV; null when it failed
     * (cancelled, its policy threw, or its KV could never fit).
     */
    private @Nullable Waiting line(Pending pending) {
        GenerationRequest request = pending.request();
        if (KvAdmission.isCancelled(request.cancellation())) {
            pending.output().fail(new CancellationException("Cancelled while queued"));
            return null;
        }
        try {
            SpeculationPolicy policy = request.policy().get();
            Speculation speculation = Speculation.of(request, policy, decoder.models());
            long bytes = admission.require(request, speculation);
            return new Waiting(pending, policy, speculation, admission.budget().enqueue(bytes), System.nanoTime());
        }
        catch (RuntimeException ex) {
            pending.output().fail(ex);
            return null;
        }
    }

    private void start(Admitted admitted) {
        Pending pending = admitted.pending();
        GenerationRequest request = pending.request();
        try {
            // the sequence streams into its output queue, never into the caller's
            // listener
            Speculation speculation = admitted.speculation();
            int maxTokens = request.maxTokens();
            Sequence sequence = decoder.open(request, admitted.policy(), speculation, pending.output(),
                    targetPool.join(maxTokens), speculation.usesHead() ? headPool.join(maxTokens)
                            : speculation.usesDraftModel() ? draftPool.join(maxTokens) : null,
                    runOptions);
            active
                .add(new Active(pending, sequence, speculation.policyName(admitted.policy()), admitted.reservation()));
        }
        catch (OrtException | RuntimeException ex) {
            admitted.reservation().close();
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
        Throwable failure = sequence.failure;
        GenerationResult result = null;
        try {
            if (failure == null) {
                sequence.stats.recordWall(System.nanoTime() - request.admittedNanos, sequence.output.count());
                result = sequence.result(request.policyName);
                if (sequence.output.finishReason() != FinishReason.CANCELLED) {
                    decoder.storePrefix(sequence);
                }
            }
        }
        catch (RuntimeException ex) {
            failure = ex;
        }
        finally {
            close(sequence);
            request.reservation.close();
        }
        // the caller hears of the end only once the request's KV is released: a caller
        // that reads the KV memory right after finds it free
        if (failure != null) {
            output.fail(failure);
        }
        else {
            output.complete(result);
        }
    }

    private void failActive(Throwable cause) {
        for (Active request : active) {
            close(request.sequence);
            request.reservation.close();
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
        if (head != null) {
            head.ticket().cancel();
            head.pending().output().fail(cause);
            head = null;
        }
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
        if (headPool != null) {
            headPool.close();
        }
        runOptions.close();
    }

}
