package dev.specula.engine;

import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

import ai.onnxruntime.OrtException;

import dev.specula.ForwardingDecoder;
import dev.specula.model.Decoder;
import dev.specula.model.DecoderModel;
import dev.specula.model.StepInput;
import dev.specula.model.StepOutput;

/**
 * A test double of the target's steps: the real target model that, on its
 * {@code faultyCall}-th forward call, sleeps (a slow verification, e.g. a long prefill;
 * interrupted it stops as a terminated ONNX Runtime run does) or throws an {@link Error}
 * (as an {@code OutOfMemoryError: Direct buffer memory} would).
 */
final class FaultyTarget extends ForwardingDecoder {

    enum Fault {

        SLOW, ERROR

    }

    private final DecoderModel real;

    private final Fault fault;

    private final int faultyCall;

    private final long slowMillis;

    private final AtomicInteger calls = new AtomicInteger();

    FaultyTarget(DecoderModel real, Fault fault, int faultyCall, long slowMillis) {
        super(real);
        this.real = real;
        this.fault = fault;
        this.faultyCall = faultyCall;
        this.slowMillis = slowMillis;
    }

    /**
     * A pair of the real target (loaded, tokenizer) whose steps go through this double,
     * and {@code draft}.
     */
    ModelPair pairWith(Decoder draft) {
        return new ModelPair(real, this, draft);
    }

    @Override
    public List<StepOutput> forward(List<StepInput> batch) throws OrtException {
        if (calls.incrementAndGet() == faultyCall) {
            switch (fault) {
                case SLOW -> {
                    try {
                        Thread.sleep(slowMillis);
                    }
                    catch (InterruptedException ex) {
                        Thread.currentThread().interrupt();
                        throw new OrtException("the slow target step was terminated");
                    }
                }
                case ERROR -> throw new OutOfMemoryError("Direct buffer memory (injected by the test)");
            }
        }
        return real.forward(batch);
    }

    int calls() {
        return calls.get();
    }

    /** The real target is shared between tests: its owner closes it. */
    @Override
    public void close() {
    }

}
