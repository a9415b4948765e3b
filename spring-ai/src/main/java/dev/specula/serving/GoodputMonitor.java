package dev.specula.serving;

import java.util.concurrent.TimeUnit;

import io.github.resilience4j.circuitbreaker.CircuitBreaker;

import dev.specula.engine.GenerationStats;

/**
 * The second trigger of the fallback: speculation that does not pay. Each speculative
 * request's decoding speed (tokens per second after the prefill round) is compared with
 * plain decoding's, measured on plain requests and kept as a moving average; a slower
 * request is an error of the goodput circuit breaker. When slower requests reach the
 * breaker's failure rate it opens: requests decode plainly until its wait ends, then a
 * few speculative requests probe again (half-open) and close or re-open it.
 *
 * <p>
 * Plain decoding's speed is refreshed by a plain probe every {@code probeInterval}
 * speculative requests (and early on, until a first measurement exists), so the
 * comparison follows load and heat.
 */
final class GoodputMonitor {

    /** Weight of the newest plain measurement in the moving average. */
    private static final double SMOOTHING = 0.3;

    /**
     * Speculative requests before the first plain probe, while no plain measurement
     * exists.
     */
    private static final int FIRST_PROBE_AFTER = 2;

    private final CircuitBreaker breaker;

    private final int probeInterval;

    private final int minTokens;

    private double plainTokensPerSecond = Double.NaN;

    private double speculativeTokensPerSecond = Double.NaN;

    private long speculativeSinceProbe;

    private long probes;

    GoodputMonitor(CircuitBreaker breaker, int probeInterval, int minTokens) {
        this.breaker = breaker;
        this.probeInterval = probeInterval;
        this.minTokens = minTokens;
    }

    /**
     * Whether this speculative-eligible request should run plainly to measure plain
     * decoding.
     */
    synchronized boolean takeProbe() {
        boolean due = Double.isNaN(plainTokensPerSecond) ? speculativeSinceProbe >= FIRST_PROBE_AFTER
                : speculativeSinceProbe >= probeInterval;
        if (due) {
            speculativeSinceProbe = 0;
            probes++;
        }
        return due;
    }

    /**
     * Whether speculation may run now (the goodput breaker is closed, or half-open with a
     * probe slot).
     */
    boolean tryAcquire() {
        return breaker.tryAcquirePermission();
    }

    /**
     * Returns a permission taken by {@link #tryAcquire()} that no speculative run used.
     */
    void release() {
        breaker.releasePermission();
    }

    synchronized void recordPlain(GenerationStats stats) {
        double speed = stats.decodeTokensPerSecond();
        if (stats.generatedTokens() < minTokens || Double.isNaN(speed)) {
            return;
        }
        plainTokensPerSecond = Double.isNaN(plainTokensPerSecond) ? speed
                : (1 - SMOOTHING) * plainTokensPerSecond + SMOOTHING * speed;
    }

    /** Judges a speculative request that held a permission. */
    void recordSpeculative(GenerationStats stats) {
        double speed = stats.decodeTokensPerSecond();
        double plain;
        synchronized (this) {
            speculativeSinceProbe++;
            plain = plainTokensPerSecond;
            if (!Double.isNaN(speed) && stats.generatedTokens() >= minTokens) {
                speculativeTokensPerSecond = Double.isNaN(speculativeTokensPerSecond) ? speed
                        : (1 - SMOOTHING) * speculativeTokensPerSecond + SMOOTHING * speed;
            }
        }
        if (Double.isNaN(speed) || Double.isNaN(plain) || stats.generatedTokens() < minTokens) {
            breaker.releasePermission();
            return;
        }
        if (speed < plain) {
            breaker.onError(stats.wallNanos(), TimeUnit.NANOSECONDS, new SlowerThanPlainException(speed, plain));
        }
        else {
            breaker.onSuccess(stats.wallNanos(), TimeUnit.NANOSECONDS);
        }
    }

    CircuitBreaker breaker() {
        return breaker;
    }

    synchronized double plainTokensPerSecond() {
        return plainTokensPerSecond;
    }

    synchronized double speculativeTokensPerSecond() {
        return speculativeTokensPerSecond;
    }

    synchronized long probes() {
        return probes;
    }

    /**
     * Recorded as the goodput breaker's error: a speculative request decoded slower than
     * plain decoding does.
     */
    static final class SlowerThanPlainException extends RuntimeException {

        SlowerThanPlainException(double speculative, double plain) {
            super(String.format(java.util.Locale.ROOT, "speculation decoded %.1f tokens/s, plain decoding %.1f",
                    speculative, plain), null, false, false);
        }

    }

}
