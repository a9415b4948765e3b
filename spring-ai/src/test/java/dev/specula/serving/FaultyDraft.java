package dev.specula.serving;

import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

import ai.onnxruntime.OrtException;

import dev.specula.ForwardingDecoder;
import dev.specula.model.DecoderModel;
import dev.specula.model.StepInput;
import dev.specula.model.StepOutput;

/**
 * A test double of the draft only: a real draft model that, after {@code healthyCalls}
 * forward calls, throws, hangs (until interrupted) or slows down. The target stays real.
 */
final class FaultyDraft extends ForwardingDecoder {

    enum Fault {

        THROW, HANG, SLOW

    }

    private final DecoderModel real;

    private final Fault fault;

    private final int healthyCalls;

    private final long slowMillis;

    private final AtomicInteger calls = new AtomicInteger();

    private final AtomicInteger interrupted = new AtomicInteger();

    FaultyDraft(DecoderModel real, Fault fault, int healthyCalls, long slowMillis) {
        super(real);
        this.real = real;
        this.fault = fault;
        this.healthyCalls = healthyCalls;
        this.slowMillis = slowMillis;
    }

    @Override
    public List<StepOutput> forward(List<StepInput> batch) throws OrtException {
        if (calls.incrementAndGet() > healthyCalls) {
            switch (fault) {
                case THROW -> throw new IllegalStateException("draft failure injected by the test");
                case HANG -> sleep(600_000);
                case SLOW -> sleep(slowMillis);
            }
        }
        return real.forward(batch);
    }

    private void sleep(long millis) {
        try {
            Thread.sleep(millis);
        }
        catch (InterruptedException ex) {
            interrupted.incrementAndGet();
            Thread.currentThread().interrupt();
            throw new IllegalStateException("draft interrupted while hanging", ex);
        }
    }

    int calls() {
        return calls.get();
    }

    int interruptions() {
        return interrupted.get();
    }

}
