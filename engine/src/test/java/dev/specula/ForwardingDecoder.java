package dev.specula;

import java.util.List;

import ai.onnxruntime.OrtException;

import dev.specula.kv.KvSequence;
import dev.specula.kv.KvStore;
import dev.specula.model.CallTokens;
import dev.specula.model.Decoder;
import dev.specula.model.ModelFiles;
import dev.specula.model.StepInput;
import dev.specula.model.StepOutput;
import dev.specula.tokenizer.TextTokenizer;

/**
 * A {@link Decoder} that hands every call to a real one: test doubles that inject a fault
 * (a draft that throws or hangs, a slow target step, an {@link Error}) override
 * {@link #forward} alone.
 */
public abstract class ForwardingDecoder implements Decoder {

    private final Decoder delegate;

    protected ForwardingDecoder(Decoder delegate) {
        this.delegate = delegate;
    }

    @Override
    public List<StepOutput> forward(List<StepInput> batch) throws OrtException {
        return delegate.forward(batch);
    }

    @Override
    public String name() {
        return delegate.name();
    }

    @Override
    public ModelFiles files() {
        return delegate.files();
    }

    @Override
    public TextTokenizer tokenizer() {
        return delegate.tokenizer();
    }

    @Override
    public int logitsWidth() {
        return delegate.logitsWidth();
    }

    @Override
    public int contextLength() {
        return delegate.contextLength();
    }

    @Override
    public CallTokens callTokens() {
        return delegate.callTokens();
    }

    @Override
    public KvSequence newCache() {
        return delegate.newCache();
    }

    @Override
    public KvSequence newCache(int maxTokens) {
        return delegate.newCache(maxTokens);
    }

    @Override
    public KvStore newStore() {
        return delegate.newStore();
    }

    @Override
    public boolean supportsTrees() {
        return delegate.supportsTrees();
    }

    @Override
    public int hiddenSize() {
        return delegate.hiddenSize();
    }

    @Override
    public boolean holesAreExact() {
        return delegate.holesAreExact();
    }

    /**
     * Closes the real decoder; a double over a shared model overrides this to leave it
     * open.
     */
    @Override
    public void close() {
        delegate.close();
    }

}
