package dev.specula.policy;

import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;

import org.jspecify.annotations.Nullable;

/**
 * Settings a policy is created with: the draft length γ (the starting or maximum length,
 * depending on the policy), named options (e.g. {@code threshold=0.4}, validated by the
 * policy that reads them), the target model's directory, where learned policies find
 * their files (ldlp.onnx), and the {@link PolicyResources} through which the sequences of
 * one owner share what they load and learn.
 *
 * @param gamma draft length γ
 * @param options policy options by name
 * @param modelDirectory the target model's directory; null when unknown
 * @param resources what the policies share, owned and closed by the caller; null: each
 * {@link SpeculationPolicies#factory factory} gets its own
 */
public record PolicyParameters(int gamma, Map<String, String> options, @Nullable Path modelDirectory,
        @Nullable PolicyResources resources) {

    /**
     * The draft length γ when none is configured: the CLI's {@code --gamma}, the
     * service's and the properties' default.
     */
    public static final int DEFAULT_GAMMA = 4;

    public PolicyParameters {
        options = Map.copyOf(options);
    }

    public PolicyParameters(int gamma, Map<String, String> options, @Nullable Path modelDirectory) {
        this(gamma, options, modelDirectory, null);
    }

    public PolicyParameters(int gamma, Map<String, String> options) {
        this(gamma, options, null, null);
    }

    public static PolicyParameters ofGamma(int gamma) {
        return new PolicyParameters(gamma, Map.of());
    }

    public PolicyParameters withGamma(int newGamma) {
        return new PolicyParameters(newGamma, options, modelDirectory, resources);
    }

    public PolicyParameters withModelDirectory(Path directory) {
        return new PolicyParameters(gamma, options, directory, resources);
    }

    public PolicyParameters withResources(PolicyResources newResources) {
        return new PolicyParameters(gamma, options, modelDirectory, newResources);
    }

    public Optional<Path> model() {
        return Optional.ofNullable(modelDirectory);
    }

    /**
     * A numeric option in [min, max], or its default.
     * @throws InvalidPolicyOptionException when the value is malformed or out of range
     */
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
            throw new InvalidPolicyOptionException(policy, name, raw, "a number in [" + min + ", " + max + "]");
        }
        if (!(value >= min && value <= max)) {
            throw new InvalidPolicyOptionException(policy, name, raw, "in [" + min + ", " + max + "]");
        }
        return value;
    }

    /** An integer option in [min, max], or its default. */
    public int intOption(String policy, String name, int defaultValue, int min, int max) {
        double value = option(policy, name, defaultValue, min, max);
        if (value != Math.rint(value)) {
            throw new InvalidPolicyOptionException(policy, name, options.get(name),
                    "an integer in [" + min + ", " + max + "]");
        }
        return (int) value;
    }

    /** γ checked against the policy's range. */
    public int gamma(String policy, int min, int max) {
        if (gamma < min || gamma > max) {
            throw new InvalidPolicyOptionException(policy, InvalidPolicyOptionException.GAMMA, String.valueOf(gamma),
                    "in [" + min + ", " + max + "]");
        }
        return gamma;
    }
}
