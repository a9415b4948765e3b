package dev.specula.autoconfigure.diagnostics;

import dev.specula.autoconfigure.InvalidSpeculaPropertyException;
import org.springframework.boot.diagnostics.AbstractFailureAnalyzer;
import org.springframework.boot.diagnostics.FailureAnalysis;

/** A {@code specula.*} value out of range: names the property, the value and what is allowed. */
public class InvalidSpeculaPropertyFailureAnalyzer extends AbstractFailureAnalyzer<InvalidSpeculaPropertyException> {

    @Override
    protected FailureAnalysis analyze(Throwable rootFailure, InvalidSpeculaPropertyException cause) {
        String description = String.format("Invalid Specula configuration.%n%n    Property: %s%n    Value: %s%n    Allowed: %s",
                cause.getProperty(), cause.getValue() == null ? "(unset)" : cause.getValue(), cause.getAllowed());
        String action = String.format("Set %s to %s. Change it where it is set (application.properties, "
                + "application.yml, a profile or the environment), or remove it to use its default.", cause.getProperty(),
                cause.getAllowed());
        return new FailureAnalysis(description, action, cause);
    }
}
