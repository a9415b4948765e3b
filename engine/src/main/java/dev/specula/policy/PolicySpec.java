package dev.specula.policy;

/**
 * A policy as requests and the CLI name it: {@code name} or {@code name:γ} (e.g. {@code fixed:5}). The only
 * place that syntax is parsed.
 *
 * @param name the policy's name
 * @param gamma γ given after the colon, or null
 */
public record PolicySpec(String name, Integer gamma) {

    /**
     * Splits {@code spec} at its colon.
     *
     * @throws InvalidPolicyOptionException when the part after the colon is not an integer
     */
    public static PolicySpec parse(String spec) {
        String name = spec.trim();
        int colon = name.indexOf(':');
        if (colon < 0) {
            return new PolicySpec(name, null);
        }
        String gammaText = name.substring(colon + 1).trim();
        name = name.substring(0, colon).trim();
        try {
            return new PolicySpec(name, Integer.parseInt(gammaText));
        }
        catch (NumberFormatException ex) {
            throw new InvalidPolicyOptionException(name, InvalidPolicyOptionException.GAMMA, gammaText,
                    "the draft length γ, an integer, after the ':' of '" + spec.trim() + "'");
        }
    }
}
