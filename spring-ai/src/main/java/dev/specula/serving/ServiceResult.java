package dev.specula.serving;

import java.util.Optional;

import org.jspecify.annotations.Nullable;

import dev.specula.engine.FallbackReason;
import dev.specula.engine.GenerationResult;

/**
 * What a {@link GenerationService} answered, and what actually ran to answer it.
 *
 * @param generation the output, its tokens and statistics (of every attempt, when a
 * fallback took over; empty statistics for a cache hit, which decodes nothing)
 * @param requestedPolicy the name of the policy the request asked for (the service's
 * default when it named none), {@code plain} when it asked not to speculate
 * @param policy the policy that ran: a policy name, {@code plain}, or {@link #CACHE} when
 * the answer was replayed from the response cache
 * @param reason why {@code policy} is not the requested one (or why speculation stopped
 * part-way); empty when it ran as asked
 */
public record ServiceResult(GenerationResult generation, String requestedPolicy, String policy,
        Optional<Reason> reason) {

    /** The effective policy of an answer replayed from the response cache. */
    public static final String CACHE = "cache";

    /** Whether it was replayed from the response cache (nothing was decoded). */
    public boolean cached() {
        return reason.isPresent() && reason.get() == Reason.CACHE;
    }

    /**
     * Why plain decoding served (part of) a request that asked for speculation, when a
     * fallback did; empty otherwise (also for a probe, a cache hit or a pair without
     * draft).
     */
    public Optional<FallbackReason> fallback() {
        return reason.map(Reason::fallback);
    }

    public boolean fellBack() {
        return fallback().isPresent();
    }

    /**
     * Why the policy that ran differs from the one asked for; {@link #tag()} is the value
     * reported to clients (response metadata, the gateway's {@code reason}).
     */
    public enum Reason {

        /**
         * A goodput probe: served plainly on purpose, to measure plain decoding's speed.
         */
        PROBE("probe", null),

        /** Speculation decodes slower than plain decoding: the goodput switch is off. */
        GOODPUT(FallbackReason.GOODPUT.tag(), FallbackReason.GOODPUT),

        /** The circuit breaker around the draft is open after repeated draft failures. */
        BREAKER_OPEN(FallbackReason.BREAKER_OPEN.tag(), FallbackReason.BREAKER_OPEN),

        /** The draft failed during a round; the rest was decoded plainly. */
        DRAFT_ERROR(FallbackReason.DRAFT_ERROR.tag(), FallbackReason.DRAFT_ERROR),

        /** A round's drafts ran past the time limit; the rest was decoded plainly. */
        DRAFT_TIMEOUT(FallbackReason.DRAFT_TIMEOUT.tag(), FallbackReason.DRAFT_TIMEOUT),

        /** Replayed from the response cache: nothing ran. */
        CACHE(ServiceResult.CACHE, null);

        private final String tag;

        private final @Nullable FallbackReason fallback;

        Reason(String tag, @Nullable FallbackReason fallback) {
            this.tag = tag;
            this.fallback = fallback;
        }

        public String tag() {
            return tag;
        }

        /** The fallback this reason is, or null when it is none. */
        public @Nullable FallbackReason fallback() {
            return fallback;
        }

        /** The reason of a fallback. */
        public static Reason of(FallbackReason fallback) {
            return switch (fallback) {
                case GOODPUT -> GOODPUT;
                case BREAKER_OPEN -> BREAKER_OPEN;
                case DRAFT_ERROR -> DRAFT_ERROR;
                case DRAFT_TIMEOUT -> DRAFT_TIMEOUT;
            };
        }

    }

}
