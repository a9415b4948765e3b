package dev.specula.policy;

import java.io.IOException;
import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import dev.specula.model.ModelLoadException;

/**
 * AdaEAGLE's Lightweight Draft Length Predictor as exported by
 * {@code python -m specula_tools train-ldlp}: {@code ldlp.onnx} (inputs
 * {@code hidden_state} float32 [1, H], {@code token_id} int64 [1]; output {@code length}
 * float32 [1]: the predicted number of accepted drafts) and {@code ldlp.json} (its γmax),
 * next to the target's model.onnx. One instance per file and {@link PolicyResources},
 * shared by that owner's sequences (ONNX Runtime sessions are safe for concurrent runs)
 * and closed with it.
 */
public final class LengthPredictor implements DraftLengthPredictor, AutoCloseable {

    public static final String MODEL_FILE = "ldlp.onnx";

    public static final String INFO_FILE = "ldlp.json";

    private final OrtEnvironment environment;

    private final OrtSession session;

    private final int hiddenSize;

    private final int gammaMax;

    private LengthPredictor(OrtEnvironment environment, OrtSession session, int hiddenSize, int gammaMax) {
        this.environment = environment;
        this.session = session;
        this.hiddenSize = hiddenSize;
        this.gammaMax = gammaMax;
    }

    /** Loads {@code model} (an ldlp.onnx) and its ldlp.json; the caller closes it. */
    static LengthPredictor load(Path model) {
        Path info = model.resolveSibling(INFO_FILE);
        if (!Files.isRegularFile(model) || !Files.isRegularFile(info)) {
            throw new ModelLoadException(model,
                    "Policy 'ldlp' needs " + MODEL_FILE + " and " + INFO_FILE + " next to the target's "
                            + "model.onnx (" + model.getParent()
                            + "); train them with `python -m specula_tools train-ldlp` (tools/README.md)");
        }
        try {
            JsonNode json = new ObjectMapper().readTree(info.toFile());
            OrtEnvironment environment = dev.specula.model.OrtEnvironments.get();
            try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
                options.setIntraOpNumThreads(1);
                options.setInterOpNumThreads(1);
                OrtSession session = environment.createSession(model.toString(), options);
                return new LengthPredictor(environment, session, json.path("hidden_size").asInt(),
                        json.path("gamma_max").asInt(10));
            }
        }
        catch (IOException | OrtException ex) {
            throw new ModelLoadException(model,
                    "Cannot load the draft length predictor " + model + ": " + ex.getMessage(), ex);
        }
    }

    /**
     * Predicted accepted drafts for the next round.
     * @param hiddenState the target's last hidden state [H] at the position that
     * predicted {@code lastToken}
     * @param lastToken the last committed token
     */
    @Override
    public double predict(float[] hiddenState, int lastToken) {
        if (hiddenState.length != hiddenSize) {
            throw new IllegalArgumentException("The draft length predictor expects a hidden state of " + hiddenSize
                    + " values but got " + hiddenState.length + ": it was trained for another target");
        }
        try (OnnxTensor hidden = OnnxTensor.createTensor(environment, FloatBuffer.wrap(hiddenState),
                new long[] { 1, hiddenSize });
                OnnxTensor token = OnnxTensor.createTensor(environment, LongBuffer.wrap(new long[] { lastToken }),
                        new long[] { 1 });
                OrtSession.Result result = session.run(Map.of("hidden_state", hidden, "token_id", token))) {
            return ((float[]) result.get(0).getValue())[0];
        }
        catch (OrtException ex) {
            throw new IllegalStateException("The draft length predictor failed: " + ex.getMessage(), ex);
        }
    }

    /** The longest draft the predictor was trained to predict. */
    public int gammaMax() {
        return gammaMax;
    }

    /** Closes the ONNX Runtime session. */
    @Override
    public void close() {
        try {
            session.close();
        }
        catch (OrtException ex) {
            throw new IllegalStateException("Could not close the draft length predictor: " + ex.getMessage(), ex);
        }
    }

}
