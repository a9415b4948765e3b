package dev.specula.policy;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

import org.jspecify.annotations.Nullable;

/**
 * What the policies of one owner (a serving layer, a CLI run) share across its sequences,
 * and must release: the draft length predictors it loaded (an ONNX Runtime session per
 * {@code ldlp.onnx}) and the goodput estimates (acceptance and timing priors, per target
 * model directory). Whoever creates it closes it, after the last sequence using its
 * policies ended; nothing here is shared with another owner.
 */
public final class PolicyResources implements AutoCloseable {

    private final Map<Path, LengthPredictor> predictors = new HashMap<>();

    private final Map<String, GoodputEstimates> estimates = new HashMap<>();

    private boolean closed;

    /** The predictor in {@code modelDirectory}, loaded on first use. */
    synchronized LengthPredictor predictor(Path modelDirectory) {
        requireOpen();
        Path model = modelDirectory.resolve(LengthPredictor.MODEL_FILE).toAbsolutePath().normalize();
        LengthPredictor predictor = predictors.get(model);
        if (predictor == null) {
            predictor = LengthPredictor.load(model);
            predictors.put(model, predictor);
        }
        return predictor;
    }

    /**
     * Estimates of the model in {@code directory} (null: unknown) kept apart under
     * {@code part} (e.g. one per round state).
     */
    synchronized GoodputEstimates estimates(@Nullable Path directory, String part, int positions) {
        requireOpen();
        String key = (directory == null ? "unknown-model" : directory.toAbsolutePath().normalize().toString()) + "#"
                + part;
        return estimates.computeIfAbsent(key, (k) -> new GoodputEstimates(positions));
    }

    private void requireOpen() {
        if (closed) {
            throw new IllegalStateException("These policy resources are closed: their owner (the service) was closed");
        }
    }

    /** Closes the predictors' sessions and forgets the estimates. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        RuntimeException failure = null;
        for (LengthPredictor predictor : predictors.values()) {
            try {
                predictor.close();
            }
            catch (RuntimeException ex) {
                failure = failure == null ? ex : failure;
            }
        }
        predictors.clear();
        estimates.clear();
        if (failure != null) {
            throw failure;
        }
    }

}
