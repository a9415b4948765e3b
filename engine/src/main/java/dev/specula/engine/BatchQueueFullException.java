package dev.specula.engine;

/** The batch scheduler's queue is full: retry later, or raise the queue capacity. */
public class BatchQueueFullException extends RuntimeException {

    public BatchQueueFullException(int capacity) {
        super("Busy: " + capacity + " requests are already waiting for a place in the batch; retry later or raise "
                + "specula.batching.queue-capacity");
    }

}
