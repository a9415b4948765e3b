package dev.specula.engine;

/**
 * The draft model failed during a round; the target's state is untouched, so plain decoding can take over
 * from {@link #generatedTokens()} (pass them as the retry's {@code continuation}).
 */
public class DraftModelException extends RuntimeException {

    private final int[] generatedTokens;
    private final transient GenerationStats stats;

    public DraftModelException(String message, Throwable cause) {
        this(message, cause, new int[0], new GenerationStats());
    }

    public DraftModelException(String message, Throwable cause, int[] generatedTokens, GenerationStats stats) {
        super(message, cause);
        this.generatedTokens = generatedTokens.clone();
        this.stats = stats;
    }

    /** Counters of the failed attempt up to the failure. */
    public GenerationStats stats() {
        return stats;
    }

    /** Tokens committed (and streamed) before the failure. */
    public int[] generatedTokens() {
        return generatedTokens.clone();
    }
}
