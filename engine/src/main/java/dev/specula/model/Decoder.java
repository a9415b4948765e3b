package dev.specula.model;

import ai.onnxruntime.OrtException;
import dev.specula.kv.KvCache;
import dev.specula.kv.KvPool;
import dev.specula.tokenizer.TextTokenizer;

import java.util.List;

/**
 * What the decode loop needs of a model: new caches and a batch-first forward step. {@link DecoderModel}
 * is the ONNX Runtime implementation; a decorator of one (e.g. a draft that fails on purpose in a
 * fallback test) is the other use.
 */
public interface Decoder extends AutoCloseable {

    /** Short name: the model directory's name. */
    String name();

    ModelFiles files();

    TextTokenizer tokenizer();

    /** Columns of the logits. */
    int logitsWidth();

    /** Longest sequence (prompt + generated tokens) the model accepts. */
    int contextLength();

    /** A new, empty KV cache for one sequence in this model. */
    KvCache newCache();

    /**
     * A pool for batched steps: {@link KvPool.Layout#PACKED} when the graph takes an attention bias,
     * {@link KvPool.Layout#PADDED} when it takes an attention mask.
     */
    KvPool newPool();

    /** Appends each input's tokens to its sequence's cache and returns the requested logits rows, in input order. */
    List<StepOutput> forward(List<StepInput> batch) throws OrtException;

    @Override
    void close();
}
