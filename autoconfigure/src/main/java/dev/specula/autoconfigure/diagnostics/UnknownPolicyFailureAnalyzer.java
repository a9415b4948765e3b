package dev.specula.autoconfigure.diagnostics;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.springframework.boot.diagnostics.AbstractFailureAnalyzer;
import org.springframework.boot.diagnostics.FailureAnalysis;

import dev.specula.policy.SpeculationPolicies;
import dev.specula.policy.UnknownPolicyException;

/** {@code specula.policy.name} names no known policy: lists the known ones. */
public class UnknownPolicyFailureAnalyzer extends AbstractFailureAnalyzer<UnknownPolicyException> {

    /**
     * The unknown name in the exception's message ("Unknown speculation policy 'x':
     * ...").
     */
    private static final Pattern QUOTED = Pattern.compile("'([^']*)'");

    @Override
    protected FailureAnalysis analyze(Throwable rootFailure, UnknownPolicyException cause) {
        String known = String.join(", ", SpeculationPolicies.names());
        Matcher quoted = QUOTED.matcher(String.valueOf(cause.getMessage()));
        String description = String.format(
                "Unknown speculation policy.%n%n    Property: specula.policy.name%n    Value: %s" + "%n    Reason: %s",
                quoted.find() ? quoted.group(1) : "(see reason)", cause.getMessage());
        String action = String
            .format("Set specula.policy.name to one of %s (and the draft length with specula.policy.gamma); "
                    + "or put a dev.specula.policy.SpeculationPolicyProvider of that name on the classpath "
                    + "(META-INF/services/dev.specula.policy.SpeculationPolicyProvider).", known);
        return new FailureAnalysis(description, action, cause);
    }

}
