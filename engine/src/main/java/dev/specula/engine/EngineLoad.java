package dev.specula.engine;

/**
 * How busy an engine is now, for monitoring: read from other threads while the engine
 * runs, each figure exact on its own but not taken together at one instant.
 *
 * @param queued requests waiting for a place in the batch: in the batch queue, or first
 * in line for their KV memory ({@code specula.batching.queue-capacity} at most, plus that
 * one); 0 without batching
 * @param active sequences being decoded now: those the latest batched step advanced
 * together (0 once none runs), plus unbatched generations running
 * ({@link Engine#generate}, each a batch of one)
 * @param steps batched steps taken since the engine started (one draft phase and one
 * verification call over every active sequence)
 * @param steppedSequences sequences over all those steps (each step adds its batch size):
 * {@code steppedSequences / steps} is the mean batch size
 */
public record EngineLoad(int queued, int active, long steps, long steppedSequences) {

    /** An engine that has not started: nothing queued, running or stepped. */
    public static final EngineLoad IDLE = new EngineLoad(0, 0, 0, 0);

}
