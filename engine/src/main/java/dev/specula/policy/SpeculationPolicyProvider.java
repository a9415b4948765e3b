package dev.specula.policy;

/**
 * Makes a policy available by name. Built-in policies are registered by
 * {@link SpeculationPolicies}; others drop in through {@link java.util.ServiceLoader}
 * ({@code META-INF/services/dev.specula.policy.SpeculationPolicyProvider}).
 */
public interface SpeculationPolicyProvider {

    /** The name users select it by. */
    String name();

    /**
     * A fresh policy for one sequence; invalid parameters fail with a message naming the
     * parameter and its range.
     */
    SpeculationPolicy create(PolicyParameters parameters);

}
