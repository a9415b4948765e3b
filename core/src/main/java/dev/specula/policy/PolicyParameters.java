package dev.specula.policy;

import java.util.Map;

/**
 * Settings a policy is created with: the draft length γ (the starting or maximum length, depending on the
 * policy) and named options (e.g. {@code threshold=0.4}), validated by the policy that reads them.
 */
public record PolicyParameters(int gamma, Map<String, String> options) {

    public static final int DEFAULT_GAMMA = 4;

    public PolicyParameters {
        options = Map.copyOf(options);
    }

    public static PolicyParameters ofGamma(int gamma) {
        return new PolicyParameters(gamma, Map.of());
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
}
