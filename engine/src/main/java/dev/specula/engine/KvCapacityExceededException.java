package dev.specula.engine;

/**
 * The worst-case KV of a request (prompt + max new tokens, in the target and, when it
 * speculates, the draft) exceeds {@code specula.kv.max-bytes}: it could never run, even
 * alone, so it is refused before any work. A capacity refusal, code {@value #CODE} (the
 * gateway answers 429, like OpenAI's "request too large" for a tokens-per-minute limit):
 * retrying the same request does not help; lowering max new tokens, shortening the prompt
 * or raising the cap does.
 */
public class KvCapacityExceededException extends RuntimeException {

    public static final String CODE = "kv_capacity_exceeded";

    /** The property that sets the cap. */
    public static final String PROPERTY = "specula.kv.max-bytes";

    private final int promptTokens;

    private final int maxNewTokens;

    private final long bytesPerToken;

    private final long neededBytes;

    private final long maxBytes;

    /**
     * A request of {@code promptTokens} + {@code maxNewTokens} tokens at
     * {@code bytesPerToken} (target + draft) that needs {@code neededBytes}, more than
     * {@code maxBytes}.
     */
    public KvCapacityExceededException(int promptTokens, int maxNewTokens, long bytesPerToken, long neededBytes,
            long maxBytes) {
        super(message(promptTokens, maxNewTokens, bytesPerToken, neededBytes, maxBytes));
        this.promptTokens = promptTokens;
        this.maxNewTokens = maxNewTokens;
        this.bytesPerToken = bytesPerToken;
        this.neededBytes = neededBytes;
        this.maxBytes = maxBytes;
    }

    private static String message(int promptTokens, int maxNewTokens, long bytesPerToken, long neededBytes,
            long maxBytes) {
        long fitting = maxBytes / bytesPerToken - promptTokens;
        String lower = fitting >= 1 ? "lower max new tokens to at most " + fitting + ", shorten the prompt"
                : "shorten the prompt to fewer than " + (maxBytes / bytesPerToken) + " tokens";
        return "The request needs " + neededBytes + " bytes of KV cache (prompt of " + promptTokens
                + " tokens + max new tokens " + maxNewTokens + ", at " + bytesPerToken + " bytes per token) but "
                + PROPERTY + " caps the KV of all requests together at " + maxBytes + " bytes: " + lower + ", or raise "
                + PROPERTY;
    }

    public int getPromptTokens() {
        return promptTokens;
    }

    public int getMaxNewTokens() {
        return maxNewTokens;
    }

    /** KV bytes of one token, target plus draft when the request speculates. */
    public long getBytesPerToken() {
        return bytesPerToken;
    }

    /** The request's worst-case KV bytes. */
    public long getNeededBytes() {
        return neededBytes;
    }

    /** The cap, {@value #PROPERTY}. */
    public long getMaxBytes() {
        return maxBytes;
    }

}
