package dev.specula.sample;

import java.util.concurrent.atomic.AtomicLong;

/**
 * What an answer of the overflow remote costs its caller's tokens per minute: the tokens
 * reserved at admission ({@link RateLimits.Reservation}) are settled with the usage the
 * remote reports; when it reports none (a remote that ignores
 * {@code stream_options.include_usage}), with the prompt's tokens as reserved plus the
 * text it sent, estimated as {@link RateLimits#estimateTokens} does. A remote that does
 * not answer costs nothing; a stream the client left keeps its reservation, as a local
 * one does.
 */
final class OverflowCharge {

    /** The caller's reservation, settled once. */
    private final RateLimits.Reservation reservation;

    /** The prompt's tokens as reserved: counted, or estimated from its characters. */
    private final long promptTokens;

    /** Characters of text the remote sent so far. */
    private final AtomicLong sentCharacters = new AtomicLong();

    OverflowCharge(RateLimits.Reservation reservation, long promptTokens) {
        this.reservation = reservation;
        this.promptTokens = promptTokens;
    }

    /** Counts text the remote sent, for when it reports no usage. */
    void sent(String text) {
        sentCharacters.addAndGet(text == null ? 0 : text.length());
    }

    /**
     * Settles the reservation with {@code reportedTokens}, the remote's total usage; 0
     * when it reported none, then with the estimate.
     */
    void settle(long reportedTokens) {
        reservation.settle(reportedTokens > 0 ? reportedTokens : estimatedTokens());
    }

    /** The remote did not answer: the request costs nothing. */
    void refund() {
        reservation.settle(0);
    }

    /** The prompt's tokens and the text's, estimated. */
    long estimatedTokens() {
        return estimatedUsage().totalTokens();
    }

    /**
     * The usage estimated: the prompt's tokens as reserved, the text's from its
     * characters.
     */
    OpenAiJson.Usage estimatedUsage() {
        int prompt = (int) Math.min(Integer.MAX_VALUE, promptTokens);
        int completion = (int) Math.min(Integer.MAX_VALUE, RateLimits.estimateTokens(sentCharacters.get()));
        return new OpenAiJson.Usage(prompt, completion, (int) Math.min(Integer.MAX_VALUE, (long) prompt + completion),
                null);
    }

}
