package dev.specula.model;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.nio.ShortBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxTensorLike;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtLoggingLevel;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.platform.Fp16Conversions;

/**
 * Checks at load whether a graph writes its new KV into the past it is given, so that a
 * KV store can bind past and present to one preallocated buffer per layer
 * ({@code [1, kvHeads, capacity, headDim]}) instead of taking a concatenated copy from
 * every call. ONNX Runtime's {@code GroupQueryAttention}, told the lengths by the mask
 * (or bias), writes the new slots right after the ones held and reads nothing beyond
 * them; a graph that concatenates (torch.onnx's, Optimum's) returns a present of another
 * shape, which ONNX Runtime refuses, or other logits.
 *
 * <p>
 * The probe: three tokens, then two more, into a buffer of eight slots whose unused slots
 * hold NaN, must give the logits of the same two calls over a compact past.
 */
final class InPlaceProbe {

    private static final int FIRST = 3;

    private static final int SECOND = 2;

    private static final int CAPACITY = 8;

    private InPlaceProbe() {
    }

    /**
     * The probe's outcome.
     *
     * @param writesInPlace whether the in-place calls gave the compact calls' logits
     * @param reason why not, for the log (empty when it does)
     */
    record Outcome(boolean writesInPlace, String reason) {
    }

    /**
     * Runs the probe.
     * @param vocabSize rows of the embedding; the probe's token ids stay below it
     */
    static Outcome probe(OrtEnvironment environment, OrtSession session, GraphSignature signature, int vocabSize) {
        long[] first = new long[FIRST];
        long[] second = new long[SECOND];
        for (int i = 0; i < FIRST; i++) {
            first[i] = (7L * i + 3) % vocabSize;
        }
        for (int i = 0; i < SECOND; i++) {
            second[i] = (11L * i + 5) % vocabSize;
        }
        List<OnnxTensor> created = new ArrayList<>();
        try (OrtSession.RunOptions quiet = new OrtSession.RunOptions()) {
            // a graph that concatenates fails the probe: no error in ONNX Runtime's log
            quiet.setLogLevel(OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL);
            Probe probe = new Probe(environment, session, signature, created);
            // compact: the presents of the first call are the second call's past
            OnnxTensor[] empty = probe.past(0, false);
            float[] compactFirst;
            float[] compactSecond;
            try (OrtSession.Result result = session.run(probe.feeds(first, 0, empty))) {
                compactFirst = lastRow(result);
                OnnxTensor[] presents = new OnnxTensor[2 * signature.layers()];
                for (int layer = 0; layer < signature.layers(); layer++) {
                    presents[2 * layer] = (OnnxTensor) result.get(GraphSignature.presentKey(layer)).orElseThrow();
                    presents[2 * layer + 1] = (OnnxTensor) result.get(GraphSignature.presentValue(layer)).orElseThrow();
                }
                try (OrtSession.Result next = session.run(probe.feeds(second, FIRST, presents))) {
                    compactSecond = lastRow(next);
                }
            }
            // in place: one buffer per layer and kind, bound as past and present
            OnnxTensor[] buffers = probe.past(CAPACITY, true);
            Map<String, OnnxTensor> pinned = new HashMap<>();
            for (int layer = 0; layer < signature.layers(); layer++) {
                pinned.put(GraphSignature.presentKey(layer), buffers[2 * layer]);
                pinned.put(GraphSignature.presentValue(layer), buffers[2 * layer + 1]);
            }
            float[] inPlaceFirst;
            float[] inPlaceSecond;
            try (OrtSession.Result result = session.run(probe.feeds(first, 0, buffers), Set.of(GraphSignature.LOGITS),
                    pinned, quiet)) {
                inPlaceFirst = lastRow(result);
            }
            try (OrtSession.Result result = session.run(probe.feeds(second, FIRST, buffers),
                    Set.of(GraphSignature.LOGITS), pinned, quiet)) {
                inPlaceSecond = lastRow(result);
            }
            double change = Math.max(maxDifference(compactFirst, inPlaceFirst),
                    maxDifference(compactSecond, inPlaceSecond));
            if (change <= HoleProbe.tolerance(signature)) {
                return new Outcome(true, "");
            }
            return new Outcome(false, "its logits moved by " + String.format(java.util.Locale.ROOT, "%.3g", change)
                    + " with past and present bound to one larger buffer");
        }
        catch (OrtException | RuntimeException ex) {
            return new Outcome(false,
                    "ONNX Runtime refused past and present bound to one larger buffer: " + gist(ex.getMessage()));
        }
        finally {
            created.forEach(OnnxTensor::close);
        }
    }

    /**
     * The gist of an ONNX Runtime message: the first sentence after its last
     * {@code " : "}, at most 200 characters.
     */
    private static String gist(String message) {
        String text = message == null ? "no message" : message.strip();
        int last = text.lastIndexOf(" : ");
        if (last >= 0) {
            text = text.substring(last + 3);
        }
        int end = text.indexOf(". ");
        if (end >= 0) {
            text = text.substring(0, end + 1);
        }
        return text.length() <= 200 ? text : text.substring(0, 197) + "...";
    }

    /** The last position's logits of a run: [vocab]. */
    private static float[] lastRow(OrtSession.Result result) {
        OnnxTensor tensor = (OnnxTensor) result.get(GraphSignature.LOGITS).orElseThrow();
        long[] shape = tensor.getInfo().getShape();
        int positions = (int) shape[1];
        return DecoderModel.rows(tensor, null, 0, positions, positions, 1, (int) shape[2], null);
    }

    /** The largest absolute difference; NaN anywhere counts as infinite. */
    private static double maxDifference(float[] a, float[] b) {
        if (a.length != b.length) {
            return Double.POSITIVE_INFINITY;
        }
        double max = 0;
        for (int i = 0; i < a.length; i++) {
            double difference = Math.abs(a[i] - b[i]);
            if (!(difference <= max)) {
                max = Double.isNaN(difference) ? Double.POSITIVE_INFINITY : difference;
            }
        }
        return max;
    }

    /** The probe's inputs for one graph. */
    private record Probe(OrtEnvironment environment, OrtSession session, GraphSignature signature,
            List<OnnxTensor> created) {

        /**
         * Feeds {@code tokens} after {@code held} tokens: the mask (or causal bias) spans
         * held + new slots, whatever the past's shape.
         */
        Map<String, OnnxTensorLike> feeds(long[] tokens, int held, OnnxTensor[] past) throws OrtException {
            Map<String, OnnxTensorLike> feeds = new HashMap<>();
            int total = held + tokens.length;
            long[] shape = { 1, tokens.length };
            long[] positions = new long[tokens.length];
            for (int i = 0; i < tokens.length; i++) {
                positions[i] = held + i;
            }
            feeds.put(GraphSignature.INPUT_IDS,
                    add(OnnxTensor.createTensor(environment, LongBuffer.wrap(tokens), shape)));
            if (signature.hasAttentionMask()) {
                long[] mask = new long[total];
                Arrays.fill(mask, 1);
                feeds.put(GraphSignature.ATTENTION_MASK,
                        add(OnnxTensor.createTensor(environment, LongBuffer.wrap(mask), new long[] { 1, total })));
            }
            else {
                // [1, 1, s, held + s]: the held slots, then the new tokens causally
                float[] bias = new float[tokens.length * total];
                for (int row = 0; row < tokens.length; row++) {
                    for (int column = held + row + 1; column < total; column++) {
                        bias[row * total + column] = Float.NEGATIVE_INFINITY;
                    }
                }
                feeds.put(GraphSignature.ATTENTION_BIAS, add(OnnxTensor.createTensor(environment,
                        FloatBuffer.wrap(bias), new long[] { 1, 1, tokens.length, total })));
            }
            if (signature.hasPositionIds()) {
                feeds.put(GraphSignature.POSITION_IDS,
                        add(OnnxTensor.createTensor(environment, LongBuffer.wrap(positions), shape)));
            }
            if (signature.hasLogitsToKeep()) {
                long[] keepShape = signature.logitsToKeepRank() == 0 ? new long[0] : new long[] { 1 };
                feeds.put(GraphSignature.LOGITS_TO_KEEP,
                        add(OnnxTensor.createTensor(environment, LongBuffer.wrap(new long[] { 1 }), keepShape)));
            }
            if (signature.hasUseCacheBranch()) {
                feeds.put(GraphSignature.USE_CACHE_BRANCH,
                        add(OnnxTensor.createTensor(environment, new boolean[] { true })));
            }
            if (signature.takesFeatures()) {
                // hidden_states [1, s, hidden]: features of a plausible magnitude
                int hidden = signature.hiddenSize();
                float[] features = new float[tokens.length * hidden];
                for (int i = 0; i < features.length; i++) {
                    features[i] = (float) Math.sin(0.37 * (i + 17L * held));
                }
                feeds.put(GraphSignature.FEATURES, add(OnnxTensor.createTensor(environment, FloatBuffer.wrap(features),
                        new long[] { 1, tokens.length, hidden })));
            }
            for (int layer = 0; layer < signature.layers(); layer++) {
                feeds.put(GraphSignature.pastKey(layer), past[2 * layer]);
                feeds.put(GraphSignature.pastValue(layer), past[2 * layer + 1]);
            }
            return feeds;
        }

        /**
         * A past of {@code slots} slots per layer and kind over direct buffers, NaN in
         * every slot when {@code poisoned}.
         */
        OnnxTensor[] past(int slots, boolean poisoned) throws OrtException {
            boolean half = signature.kvType() == OnnxJavaType.FLOAT16;
            int elements = signature.kvHeads() * slots * signature.headDim();
            long[] shape = { 1, signature.kvHeads(), slots, signature.headDim() };
            OnnxTensor[] past = new OnnxTensor[2 * signature.layers()];
            for (int i = 0; i < past.length; i++) {
                ByteBuffer bytes = ByteBuffer.allocateDirect(elements * (half ? 2 : 4)).order(ByteOrder.nativeOrder());
                if (half) {
                    ShortBuffer halves = bytes.asShortBuffer();
                    if (poisoned) {
                        short nan = Fp16Conversions.floatToFp16(Float.NaN);
                        for (int e = 0; e < elements; e++) {
                            halves.put(e, nan);
                        }
                    }
                    past[i] = add(OnnxTensor.createTensor(environment, halves, shape, OnnxJavaType.FLOAT16));
                }
                else {
                    FloatBuffer floats = bytes.asFloatBuffer();
                    if (poisoned) {
                        for (int e = 0; e < elements; e++) {
                            floats.put(e, Float.NaN);
                        }
                    }
                    past[i] = add(OnnxTensor.createTensor(environment, floats, shape));
                }
            }
            return past;
        }

        private OnnxTensor add(OnnxTensor tensor) {
            created.add(tensor);
            return tensor;
        }

    }

}
