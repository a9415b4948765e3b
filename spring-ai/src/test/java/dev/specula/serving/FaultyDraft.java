package dev.specula.serving;

import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

import ai.onnxruntime.OrtException;

import dev.specula.kv.KvSequence;
import dev.specula.model.Decoder;
import dev.specula.model.DecoderModel;
import dev.specula.model.ModelFiles;
import dev.specula.model.StepInput;
import dev.specula.model.StepOutput;
import dev.specula.tokenizer.TextTokenizer;

/**
 * A test double of the draft only: a real draft model that, after {@code healthyCalls}
 * forward calls, throws, hangs (until interrupted) or slows down. The target stays real.
 */
final class FaultyDraft implements Decoder {

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
    public dev.specula.kv.KvStore newStore() {
        return real.newStore();
    }

    @Override
    public void close() {
        real.close();
    }

}
