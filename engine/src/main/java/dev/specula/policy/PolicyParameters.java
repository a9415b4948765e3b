package dev.specula.policy;

import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;

/**
 * Settings a policy is created with: the draft length γ (the starting or maximum length, depending on the
 * policy), named options (e.g. {@code threshold=0.4}, validated by the policy that reads them) and the
 * target model's directory, where learned policies find their files (ldlp.onnx) and by which policies share
 * what they learn across requests of the same model pair.
 *
 * @param gamma draft length γ
 * @param options policy options by name
 * @param modelDirectory the target model's directory; null when unknown
 */
public record PolicyParameters(int gamma, Map<String, String> options, Path modelDirectory) {

    public static final int DEFAULT_GAMMA = 4;

    public PolicyParameters {
        options = Map.copyOf(options);
    }

    public PolicyParameters(int gamma, Map<String, String> options) {
        this(gamma, options, null);
    }

    public static PolicyParameters ofGamma(int gamma) {
        return new PolicyParameters(gamma, Map.of());
    }

    public PolicyParameters withGamma(int newGamma) {
        return new PolicyParameters(newGamma, options, modelDirectory);
    }

    public PolicyParameters withModelDirectory(Path directory) {
        return new PolicyParameters(gamma, options, directory);
    }

    public Optional<Path> model() {
        return Optional.ofNullable(modelDirectory);
    }

    /** A numeric option in [min, max], or its default; a malformed or out-of-range value names the option and the range. */
    public double option(String policy, String name, double defaultValue, double min, double max) {
        String raw = options.get(name);
        if (raw == null) {
            return defaultValue;
        }
        double value;
        try {
            value = Double.parseDouble(raw.trim());
        }
        catch (NumberFormatException ex) {
            throw new IllegalArgumentException("Option '" + name + "' of policy '" + policy + "' must be a number in ["
                    + min + ", " + max + "] but was '" + raw + "'");
        }
        if (!(value >= min && value <= max)) {
            throw new IllegalArgumentException("Option '" + name + "' of policy '" + policy + "' must be in [" + min + ", "
                    + max + "] but was " + raw);
        }
        return value;
    }

    /** An integer option in [min, max], or its default. */
    public int intOption(String policy, String name, int defaultValue, int min, int max) {
        double value = option(policy, name, defaultValue, min, max);
        if (value != Math.rint(value)) {
            throw new IllegalArgumentException("Option '" + name + "' of policy '" + policy + "' must be an integer in ["
                    + min + ", " + max + "] but was " + options.get(name));
        }
        return (int) value;
    }

    /** γ checked against the policy's range. */
    public int gamma(String policy, int min, int max) {
        if (gamma < min || gamma > max) {
            throw new IllegalArgumentException("gamma of policy '" + policy + "' must be in [" + min + ", " + max
                    + "] but was " + gamma);
        }
        return gamma;
    }
}
