package dev.specula.policy;

/**
 * A policy option, or γ, with a value the policy does not accept: which policy, which
 * option ({@link #GAMMA} for the draft length), the value as given and what is allowed,
 * so callers can name their own setting (a property, a request field, a CLI flag) without
 * parsing the message.
 */
public class InvalidPolicyOptionException extends IllegalArgumentException {

    /** The option name under which a bad draft length γ is reported. */
    public static final String GAMMA = "gamma";

    private final String policy;

    private final String option;

    private final String value;

    private final String allowed;

    /**
     * A bad option of a policy.
     * @param policy the policy's name
     * @param option the option's name, or {@link #GAMMA}
     * @param value the value as given
     * @param allowed what is accepted, e.g. "in [0.0, 1.0]"
     */
    public InvalidPolicyOptionException(String policy, String option, String value, String allowed) {
        super((GAMMA.equals(option) ? "gamma of policy '" + policy + "'"
                : "Option '" + option + "' of policy '" + policy + "'") + " must be " + allowed + " but was " + value);
        this.policy = policy;
        this.option = option;
        this.value = value;
        this.allowed = allowed;
    }

    public String policy() {
        return policy;
    }

    public String option() {
        return option;
    }

    public String value() {
        return value;
    }

    public String allowed() {
        return allowed;
    }

}
