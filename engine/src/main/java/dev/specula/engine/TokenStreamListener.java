package dev.specula.engine;

/**
 * Receives the output as soon as the target has accepted it. Text that a later round
 * could take back is never sent: a possible start of a stop string and an incomplete
 * UTF-8 character are held until settled.
 */
@FunctionalInterface
public interface TokenStreamListener {

    /** New text, in order; the concatenation of all calls is the final text. */
    void onText(String text);

}
