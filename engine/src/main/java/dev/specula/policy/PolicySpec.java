package dev.specula.policy;

import org.jspecify.annotations.Nullable;

/**
 * A policy as requests and the CLI name it: {@code name} or {@code name:γ} (e.g.
 * {@code fixed:5}). The only place that syntax is parsed.
 *
 * @param name the policy's name
 * @param gamma γ given after the colon, or null
 */
public record PolicySpec(String name, @Nullable Integer gamma) {

    /**
     * The name part of {@code spec} (before its colon, if any), whatever follows the
     * colon.
     */
    public static String nameOf(String spec) {
        int colon = spec.indexOf(':');
        return (colon < 0 ? spec : spec.substring(0, colon)).trim();
    }

    /**
     * Splits {@code spec} at its colon.
     * @throws InvalidPolicyOptionException when the part after the colon is not an
     * integer
     */
    public static PolicySpec parse(String spec) {
        String name = nameOf(spec);
        int colon = spec.indexOf(':');
        if (colon < 0) {
            return new PolicySpec(name, null);
        }
        String gammaText = spec.substring(colon + 1).trim();
        try {
            return new PolicySpec(name, Integer.parseInt(gammaText));
        }
        catch (NumberFormatException ex) {
            throw new InvalidPolicyOptionException(name, InvalidPolicyOptionException.GAMMA, gammaText,
                    "the draft length γ, an integer, after the ':' of '" + spec.trim() + "'");
        }
    }
}
