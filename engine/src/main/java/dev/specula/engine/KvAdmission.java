package dev.specula.engine;

import java.time.Duration;
import java.util.concurrent.CancellationException;

import org.jspecify.annotations.Nullable;

import dev.specula.kv.KvBudget;
import dev.specula.kv.KvStore;
import dev.specula.model.Decoder;

/**
 * Sizes a request's KV and reserves it in the engine's {@link KvBudget} before its first
 * model call. The reservation is the worst case, all at once:
 *
 * <pre>
 * bytes = (prompt + max new tokens) × (target bytes per token + draft bytes per token, when it speculates)
 * bytes per token = layers × 2 × kvHeads × headDim × element bytes          (long arithmetic)
 * </pre>
 *
 * A round never drafts past the token budget (γ ≤ remaining − 1), so the lookahead of the
 * drafts lies inside it. A cache written in place makes room for no more than these
 * tokens ({@code Decoder.newCache(int)}, {@code KvStore.join(int)}). Rolled-back slots
 * awaiting compaction and the padding of a padded batch are not counted.
 */
final class KvAdmission {

    private final KvBudget budget;

    private final long targetBytesPerToken;

    /** 0 without a draft. */
    private final long draftBytesPerToken;

    /** 0 without a feature head. */
    private final long headBytesPerToken;

    private final Duration maxWait;

    KvAdmission(ModelPair models, KvBudget budget, Duration maxWait) {
        this.budget = budget;
        this.targetBytesPerToken = bytesPerToken(models.targetSteps());
        this.draftBytesPerToken = models.draft().map(KvAdmission::bytesPerToken).orElse(0L);
        this.headBytesPerToken = models.head().map(KvAdmission::bytesPerToken).orElse(0L);
        this.maxWait = maxWait;
    }

    private static long bytesPerToken(Decoder model) {
        // an empty store: its shape, no native memory
        try (KvStore store = model.newStore()) {
            return store.kvLayout().bytesPerToken();
        }
    }

    KvBudget budget() {
        return budget;
    }

    Duration maxWait() {
        return maxWait;
    }

    /**
     * The worst-case KV bytes of {@code request}.
     * @throws KvCapacityExceededException when they exceed the cap: the request could
     * never run
     */
    long require(GenerationRequest request, Speculation speculation) {
        long perToken = targetBytesPerToken + (speculation.usesDraftModel() ? draftBytesPerToken : 0)
                + (speculation.usesHead() ? headBytesPerToken : 0);
        int prompt = request.promptIds().length;
        long needed = Math.multiplyExact((long) prompt + request.maxNewTokens(), perToken);
        if (needed > budget.maxBytes()) {
            throw new KvCapacityExceededException(prompt, request.maxNewTokens(), perToken, needed, budget.maxBytes());
        }
        return needed;
    }

    /**
     * Waits in line (up to the maximum wait) for the worst-case KV of a request on the
     * caller's thread.
     * @throws KvCapacityExceededException when it could never fit
     * @throws KvWaitTimeoutException when the memory did not free in time
     * @throws CancellationException when the request was cancelled (or the thread
     * interrupted) while waiting
     */
    KvBudget.Reservation reserve(GenerationRequest request, Speculation speculation) {
        long bytes = require(request, speculation);
        CancellationToken cancellation = request.cancellation();
        KvBudget.Reservation reservation;
        try {
            reservation = budget.reserve(bytes, maxWait, () -> isCancelled(cancellation));
        }
        catch (InterruptedException ex) {
            Thread.currentThread().interrupt();
            throw new CancellationException("Interrupted while waiting for KV memory");
        }
        if (reservation != null) {
            return reservation;
        }
        if (isCancelled(cancellation)) {
            throw new CancellationException("Cancelled while waiting for KV memory");
        }
        throw new KvWaitTimeoutException(bytes, budget.maxBytes(), maxWait);
    }

    static boolean isCancelled(@Nullable CancellationToken cancellation) {
        return cancellation != null && cancellation.isCancelled();
    }

}
