package dev.specula.sample;

import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

import io.github.bucket4j.Bucket;
import io.github.bucket4j.ConsumptionProbe;
import jakarta.servlet.http.HttpServletResponse;
import org.springframework.stereotype.Component;

/**
 * {@code specula.gateway.rate-limit.*}: per caller (API key, or client address without
 * keys) a Bucket4j bucket of requests and one of tokens, each holding a minute's worth
 * and refilled smoothly (a caller idle for a minute may burst its whole minute).
 *
 * <p>
 * Tokens are reserved when a request is admitted, its {@code max_tokens} plus its prompt
 * estimated at one token per {@value #CHARACTERS_PER_TOKEN} characters, and reconciled
 * when it ends: the real usage (prompt + completion tokens) replaces the reservation,
 * unused tokens go back, extra ones are taken (the bucket may go below zero and the
 * caller then waits). A request refused before generating costs nothing; one whose usage
 * is unknown (a stream the client left) keeps its reservation. A request the overflow
 * remote answers (the local engine refused it, or it names the remote model) is reserved
 * the same way and settled with the remote's usage ({@link OverflowCharge}). Responses
 * carry OpenAI's {@code x-ratelimit-limit/remaining/reset-requests} and {@code -tokens}
 * headers.
 */
@Component
class RateLimits {

    /** Characters per token of the admission estimate of a prompt. */
    static final int CHARACTERS_PER_TOKEN = 4;

    /**
     * Callers remembered before idle ones (full buckets) are forgotten: addresses are
     * many.
     */
    static final int MAX_CALLERS = 10_000;

    private static final String PROPERTY = GatewayProperties.CONFIG_PREFIX + ".rate-limit.";

    /** Requests per minute; 0: no limit. */
    private final long requestsPerMinute;

    /** Tokens per minute; 0: no limit. */
    private final long tokensPerMinute;

    /** Caller id to its buckets. */
    private final Map<String, Buckets> callers = new ConcurrentHashMap<>();

    RateLimits(GatewayProperties properties) {
        this.requestsPerMinute = properties.getRateLimit().getRequestsPerMinute();
        this.tokensPerMinute = properties.getRateLimit().getTokensPerMinute();
    }

    boolean limitsRequests() {
        return requestsPerMinute > 0;
    }

    boolean limitsTokens() {
        return tokensPerMinute > 0;
    }

    /**
     * Counts one request of {@code caller} and writes the request headers.
     * @throws RateLimitExceededException when the caller's requests per minute are spent
     */
    void admitRequest(ApiKeys.Caller caller, HttpServletResponse response) {
        if (!limitsRequests()) {
            return;
        }
        Bucket bucket = buckets(caller).requests();
        ConsumptionProbe probe = bucket.tryConsumeAndReturnRemaining(1);
        Map<String, String> headers = headers("requests", requestsPerMinute, probe);
        if (!probe.isConsumed()) {
            long seconds = retryAfter(probe);
            throw new RateLimitExceededException("Rate limit reached on requests per minute (RPM): limit "
                    + requestsPerMinute + ". Please try again in " + seconds + "s (the server's " + PROPERTY
                    + "requests-per-minute).", seconds, headers);
        }
        headers.forEach(response::setHeader);
    }

    /** A prompt's tokens estimated from its characters, before it is tokenized. */
    static long estimateTokens(long characters) {
        return (characters + CHARACTERS_PER_TOKEN - 1) / CHARACTERS_PER_TOKEN;
    }

    /**
     * Reserves the tokens a request may use and writes the token headers; settle the
     * reservation when the request ends.
     * @param maxTokens the completion's most tokens
     * @param promptTokens the prompt's tokens, counted or estimated
     * ({@link #estimateTokens})
     * @throws RateLimitExceededException when the caller's tokens per minute cannot hold
     * the reservation now ({@code Retry-After}), or ever ({@code max_tokens} over the
     * limit, no {@code Retry-After})
     */
    Reservation reserveTokens(ApiKeys.Caller caller, int maxTokens, long promptTokens, HttpServletResponse response) {
        if (!limitsTokens()) {
            return Reservation.NONE;
        }
        Bucket bucket = buckets(caller).tokens();
        if (maxTokens > tokensPerMinute) {
            throw new RateLimitExceededException("Request too large on tokens per minute (TPM): limit "
                    + tokensPerMinute + ", requested max_tokens " + maxTokens + ". Set max_tokens to at most "
                    + tokensPerMinute + " (the server's " + PROPERTY + "tokens-per-minute).", 0, Map.of());
        }
        // an estimate never makes a request impossible: at most the whole minute
        long reserved = Math.min(tokensPerMinute, maxTokens + promptTokens);
        ConsumptionProbe probe = bucket.tryConsumeAndReturnRemaining(reserved);
        Map<String, String> headers = headers("tokens", tokensPerMinute, probe);
        if (!probe.isConsumed()) {
            long seconds = retryAfter(probe);
            throw new RateLimitExceededException(
                    "Rate limit reached on tokens per minute (TPM): limit " + tokensPerMinute + ", available "
                            + Math.max(0, probe.getRemainingTokens()) + ", requested " + reserved + " (max_tokens "
                            + maxTokens + " + the prompt). Please try again in " + seconds
                            + "s, or lower max_tokens (the server's " + PROPERTY + "tokens-per-minute).",
                    seconds, headers);
        }
        headers.forEach(response::setHeader);
        return new Reservation(bucket, reserved);
    }

    private Buckets buckets(ApiKeys.Caller caller) {
        Buckets buckets = callers.get(caller.id());
        if (buckets != null) {
            return buckets;
        }
        if (callers.size() >= MAX_CALLERS) {
            callers.values()
                .removeIf((idle) -> full(idle.requests(), requestsPerMinute) && full(idle.tokens(), tokensPerMinute));
        }
        return callers.computeIfAbsent(caller.id(),
                (id) -> new Buckets(bucket(requestsPerMinute), bucket(tokensPerMinute)));
    }

    private static boolean full(Bucket bucket, long capacity) {
        return bucket == null || bucket.getAvailableTokens() >= capacity;
    }

    private static Bucket bucket(long perMinute) {
        if (perMinute <= 0) {
            return null;
        }
        return Bucket.builder()
            .addLimit((limit) -> limit.capacity(perMinute).refillGreedy(perMinute, Duration.ofMinutes(1)))
            .build();
    }

    /** Whole seconds until the probe's request would pass, at least 1. */
    private static long retryAfter(ConsumptionProbe probe) {
        return Math.max(1, TimeUnit.NANOSECONDS.toSeconds(probe.getNanosToWaitForRefill() + 999_999_999L));
    }

    /** OpenAI's headers for one kind ("requests", "tokens"). */
    private static Map<String, String> headers(String kind, long limit, ConsumptionProbe probe) {
        Map<String, String> headers = new LinkedHashMap<>();
        headers.put("x-ratelimit-limit-" + kind, Long.toString(limit));
        headers.put("x-ratelimit-remaining-" + kind, Long.toString(Math.max(0, probe.getRemainingTokens())));
        headers.put("x-ratelimit-reset-" + kind, duration(probe.getNanosToWaitForReset()));
        return headers;
    }

    /** A duration as OpenAI writes them: {@code 250ms}, {@code 1.5s}, {@code 6m0s}. */
    static String duration(long nanos) {
        long millis = TimeUnit.NANOSECONDS.toMillis(nanos + 999_999);
        if (millis < 1000) {
            return millis + "ms";
        }
        long minutes = millis / 60_000;
        double seconds = (millis % 60_000) / 1000.0;
        String secondsText = seconds == Math.floor(seconds) ? Long.toString((long) seconds) + "s"
                : String.format(java.util.Locale.ROOT, "%.3fs", seconds).replaceAll("0+s$", "s");
        return minutes > 0 ? minutes + "m" + secondsText : secondsText;
    }

    /** One caller's buckets; null where that kind is not limited. */
    private record Buckets(Bucket requests, Bucket tokens) {
    }

    /**
     * Tokens reserved for one request, replaced by its real usage when it ends: the first
     * {@link #settle} counts, later ones are ignored.
     */
    static final class Reservation {

        /** A reservation of nothing: tokens are not limited. */
        static final Reservation NONE = new Reservation(null, 0);

        /** The caller's token bucket; null for {@link #NONE}. */
        private final Bucket bucket;

        /** Tokens taken at admission. */
        private final long reserved;

        private boolean settled;

        private Reservation(Bucket bucket, long reserved) {
            this.bucket = bucket;
            this.reserved = reserved;
        }

        /**
         * Charges {@code usedTokens} instead of the reservation: returns what was not
         * used, takes what was used beyond it.
         */
        synchronized void settle(long usedTokens) {
            if (bucket == null || settled) {
                return;
            }
            settled = true;
            long extra = usedTokens - reserved;
            if (extra > 0) {
                bucket.consumeIgnoringRateLimits(extra);
            }
            else if (extra < 0) {
                bucket.addTokens(-extra);
            }
        }

    }

}
