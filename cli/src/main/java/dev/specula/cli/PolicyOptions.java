package dev.specula.cli;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Supplier;

import dev.specula.engine.ModelPair;
import dev.specula.policy.PolicyParameters;
import dev.specula.policy.PolicyResources;
import dev.specula.policy.SpeculationPolicies;
import dev.specula.policy.SpeculationPolicy;

/**
 * {@code --policy NAME[:γ]}, {@code --gamma N} and {@code --policy-option key=value} into
 * a policy factory.
 */
final class PolicyOptions {

    private PolicyOptions() {
    }

    /**
     * A policy factory whose loaded files (ldlp predictors) and estimates live in
     * {@code resources}, closed by the caller.
     */
    static Supplier<SpeculationPolicy> factory(String spec, Arguments arguments, ModelPair models,
            PolicyResources resources) {
        Map<String, String> options = new LinkedHashMap<>();
        for (String option : arguments.all("policy-option")) {
            int equals = option.indexOf('=');
            if (equals <= 0) {
                throw new CliException("--policy-option must be key=value but was '" + option + "'");
            }
            options.put(option.substring(0, equals).trim(), option.substring(equals + 1).trim());
        }
        int gamma = arguments.integer("gamma", PolicyParameters.DEFAULT_GAMMA, 1, 64);
        try {
            return SpeculationPolicies.factory(spec,
                    new PolicyParameters(gamma, options, models.target().files().directory(), resources));
        }
        catch (IllegalArgumentException | dev.specula.model.ModelLoadException ex) {
            throw new CliException(ex.getMessage());
        }
    }

}
