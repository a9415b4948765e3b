package dev.specula.engine;

import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

import ai.onnxruntime.OrtException;

import dev.specula.kv.KvSequence;
import dev.specula.kv.KvStore;
import dev.specula.model.Decoder;
import dev.specula.model.DecoderModel;
import dev.specula.model.ModelFiles;
import dev.specula.model.StepInput;
import dev.specula.model.StepOutput;
import dev.specula.tokenizer.TextTokenizer;

/**
 * A test double of the target's steps: the real target model that, on its
 * {@code faultyCall}-th forward call, sleeps (a slow verification, e.g. a long prefill;
 * interrupted it stops as a terminated ONNX Runtime run does) or throws an {@link Error}
 * (as an {@code OutOfMemoryError: Direct buffer memory} would).
 */
final class FaultyTarget implements Decoder {

    enum Fault {

        SLOW, ERROR

    }

    private final DecoderModel real;

    private final Fault fault;

    private final int faultyCall;

    private final long slowMillis;

    private final AtomicInteger calls = new AtomicInteger();

    FaultyTarget(DecoderModel real, Fault fault, int faultyCall, long slowMillis) {
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

    @Override
    public String name() {
        return real.name();
    }

    @Override
    public ModelFiles files() {
        return real.files();
    }

    @Override
    public TextTokenizer tokenizer() {
        return real.tokenizer();
    }

    @Override
    public int logitsWidth() {
        return real.logitsWidth();
    }

    @Override
    public int contextLength() {
        return real.contextLength();
    }

    @Override
    public KvSequence newCache() {
        return real.newCache();
    }

    @Override
    public KvStore newStore() {
        return real.newStore();
    }

    /** The real target is shared between tests: its owner closes it. */
    @Override
    public void close() {
    }

}
