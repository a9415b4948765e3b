package dev.specula.serving;

/**
 * Every generation slot is taken (the bulkhead is full): retry later, or raise the limit.
 */
public class ServiceBusyException extends RuntimeException {

    private final int maxConcurrentGenerations;

    public ServiceBusyException(int maxConcurrentGenerations) {
        super("Busy: all " + maxConcurrentGenerations + " generation slots are in use; retry later or raise "
                + "specula.resilience.max-concurrent-generations (or resilience4j.bulkhead.instances.specula.max-concurrent-calls)");
        this.maxConcurrentGenerations = maxConcurrentGenerations;
    }

    /** Busy for another reason than the bulkhead (e.g. the batch queue is full). */
    public ServiceBusyException(String message) {
        super(message);
        this.maxConcurrentGenerations = -1;
    }

    public int maxConcurrentGenerations() {
        return maxConcurrentGenerations;
    }

}
