package dev.specula.model;

import java.util.List;

import ai.onnxruntime.OrtException;

import dev.specula.kv.KvSequence;
import dev.specula.kv.KvStore;
import dev.specula.tokenizer.TextTokenizer;

/**
 * What the decode loop needs of a model: new caches and a batch-first forward step.
 * {@link DecoderModel} is the ONNX Runtime implementation; a decorator of one (e.g. a
 * draft that fails on purpose in a fallback test) is the other use.
 */
public interface Decoder extends AutoCloseable {

    /** Short name: the model directory's name. */
    String name();

    /** The files the model was loaded from. */
    ModelFiles files();

    /**
     * What identifies this model's KV for the {@link dev.specula.kv.PrefixCache}: the
     * model file's path, size and modification time, and its external weights' if any, so
     * a model re-exported at the same path gets new keys.
     */
    default String kvIdentity() {
        return files().kvIdentity();
    }

    /** The model's tokenizer. */
    TextTokenizer tokenizer();

    /** Columns of the logits. */
    int logitsWidth();

    /** Longest sequence (prompt + generated tokens) the model accepts. */
    int contextLength();

    /**
     * How many tokens one call of this model may carry for its rows to compute what they
     * compute in any other call: {@link CallTokens#ANY} for float activations; for
     * weights quantized with int8 activations, at least 2 ({@code int4-b32-a8}: one-token
     * calls take ONNX Runtime's one-row paths) and, with blocks of 128, an even number
     * ({@code int4-b128-a8}: rows computed two at a time). The graph's metadata says so;
     * the decode loop then never verifies another number of tokens, and prefill chunks
     * are cut to sizes it allows.
     */
    default CallTokens callTokens() {
        return CallTokens.ANY;
    }

    /**
     * Whether a step may carry a draft tree ({@link StepInput#tree()}): the graph takes
     * an {@code attention_bias}, which can say that a node sees only its ancestors, and
     * holes are exact (the rejected branches stay in the cache as holes).
     */
    default boolean supportsTrees() {
        return false;
    }

    /**
     * Whether this is a feature head (GRIFFIN): each step takes the target's hidden
     * states ({@link StepInput#features()}) and returns its {@code regress} rows as
     * hidden states.
     */
    default boolean takesFeatures() {
        return false;
    }

    /**
     * Width of the hidden states this model returns (the target's
     * {@code last_hidden_state}, a head's {@code regress}); -1 when it returns none.
     */
    default int hiddenSize() {
        return -1;
    }

    /**
     * A new, empty sequence in a KV store of its own (one row), for a sequence decoded
     * alone.
     */
    KvSequence newCache();

    /**
     * A new, empty sequence in a KV store of its own that will hold at most
     * {@code maxTokens} tokens (its prompt and all it may generate): a store written in
     * place takes no room beyond them, so the KV budget, which counts them, bounds its
     * memory. Rolled-back slots awaiting compaction may still need more.
     */
    default KvSequence newCache(int maxTokens) {
        return newCache();
    }

    /**
     * A KV store for batched steps, which sequences {@link KvStore#join() join}:
     * {@link KvStore.Layout#PACKED} when the graph takes an attention bias,
     * {@link KvStore.Layout#PADDED} when it takes an attention mask.
     */
    KvStore newStore();

    /**
     * Whether rolled-back slots left in the cache as masked holes change nothing: probed
     * at load; false for a model whose {@link #callTokens()} are not
     * {@link CallTokens#ANY} (its int8 activations magnify the last-bit differences a
     * hole makes). When false, every rollback squeezes the cache back to compact (one
     * copy) and sequences are not batched (padded rows are holes too).
     */
    boolean holesAreExact();

    /**
     * Appends each input's tokens to its sequence's cache and returns the requested
     * logits rows, in input order.
     */
    List<StepOutput> forward(List<StepInput> batch) throws OrtException;

    @Override
    void close();

}
