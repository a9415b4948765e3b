package dev.specula.autoconfigure;

/**
 * A {@code specula.*} property whose value is out of its range. Thrown while the {@link SpeculaProperties}
 * bean is created, so the application does not start; {@code InvalidSpeculaPropertyFailureAnalyzer} turns it
 * into a message naming the property, the value and what is allowed.
 */
public class InvalidSpeculaPropertyException extends IllegalArgumentException {

    private final String property;
    private final transient Object value;
    private final String allowed;

    /**
     * @param property full property name, e.g. {@code specula.policy.gamma}
     * @param value the value that was set (may be null)
     * @param allowed what is allowed, e.g. "an integer from 1 to 64"
     */
    public InvalidSpeculaPropertyException(String property, Object value, String allowed) {
        this(property, value, allowed, null);
    }

    public InvalidSpeculaPropertyException(String property, Object value, String allowed, Throwable cause) {
        super("Invalid value '" + value + "' for property " + property + ": allowed is " + allowed, cause);
        this.property = property;
        this.value = value;
        this.allowed = allowed;
    }

    /** Full name of the property at fault. */
    public String getProperty() {
        return property;
    }

    /** The value that was set. */
    public Object getValue() {
        return value;
    }

    /** What the property accepts. */
    public String getAllowed() {
        return allowed;
    }
}
