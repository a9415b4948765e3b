package dev.specula.engine;

/**
 * Why generation ended; the lowercase names are what the CLI and the OpenAI-style API
 * report.
 */
public enum FinishReason {

    /** The max-new-tokens budget was used up. */
    LENGTH,
    /** A stop string appeared; the text ends before it. */
    STOP,
    /** The model produced an end-of-sequence token. */
    EOS,
    /** The caller cancelled, or a time limit stopped the run. */
    CANCELLED;

    public String wireName() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }

}
