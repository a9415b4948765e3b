package dev.specula.autoconfigure;

import java.util.LinkedHashMap;
import java.util.Map;

import org.springframework.beans.factory.InitializingBean;
import org.springframework.boot.context.properties.ConfigurationProperties;

import dev.specula.policy.FixedPolicy;
import dev.specula.policy.SpeculationPolicies;
import dev.specula.policy.UnknownPolicyException;
import dev.specula.serving.PolicySettings;

/**
 * The default speculation policy (requests may choose another): its name, the draft
 * length γ and its options. Defaults are {@link PolicySettings#defaults()}'s. An unknown
 * name stops startup with an {@link UnknownPolicyException} listing the known ones; a bad
 * option or γ names its property once the policy is created (with the models).
 */
@ConfigurationProperties(SpeculaPolicyProperties.CONFIG_PREFIX)
public class SpeculaPolicyProperties implements InitializingBean {

    public static final String CONFIG_PREFIX = "specula.policy";

    /** Policy name, e.g. "fixed", "goodput"; "plain" turns speculation off. */
    private String name = "fixed";

    /**
     * Draft length gamma, 1 to 64: tokens drafted per round (the starting or maximum
     * length for adaptive policies).
     */
    private int gamma = 4;

    /** Policy options by name (e.g. threshold: 0.4), checked by the policy at startup. */
    private Map<String, String> options = new LinkedHashMap<>();

    public String getName() {
        return name;
    }

    public void setName(String name) {
        this.name = name;
    }

    public int getGamma() {
        return gamma;
    }

    public void setGamma(int gamma) {
        this.gamma = gamma;
    }

    public Map<String, String> getOptions() {
        return options;
    }

    public void setOptions(Map<String, String> options) {
        this.options = options;
    }

    @Override
    public void afterPropertiesSet() {
        String prefix = CONFIG_PREFIX + ".";
        if (name == null || name.isBlank()) {
            throw PropertyChecks.invalid(prefix + "name", name,
                    "a policy name, one of " + String.join(", ", SpeculationPolicies.names()));
        }
        if (name.indexOf(':') >= 0) {
            throw PropertyChecks.invalid(prefix + "name", name,
                    "a policy name without ':gamma' (set the draft length with " + prefix + "gamma), one of "
                            + String.join(", ", SpeculationPolicies.names()));
        }
        SpeculationPolicies.requireKnown(name);
        PropertyChecks.requireRange(prefix + "gamma", gamma, gamma, 1, FixedPolicy.MAX_GAMMA,
                "an integer from 1 to " + FixedPolicy.MAX_GAMMA);
    }

    /** These properties as the service takes them. */
    public PolicySettings toSettings() {
        return PolicySettings.builder().name(name.trim()).gamma(gamma).options(options).build();
    }

}
