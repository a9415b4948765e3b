package dev.specula.policy;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.ServiceLoader;
import java.util.Set;
import java.util.function.Supplier;

/**
 * The policies selectable by name: the built-ins and any {@link SpeculationPolicyProvider} on the classpath.
 * A policy is named {@code name} or {@code name:γ} (e.g. {@code fixed:4}).
 */
public final class SpeculationPolicies {

    private static final Map<String, SpeculationPolicyProvider> PROVIDERS = load();

    private SpeculationPolicies() {
    }

    private static Map<String, SpeculationPolicyProvider> load() {
        Map<String, SpeculationPolicyProvider> providers = new LinkedHashMap<>();
        register(providers, PlainPolicy.NAME, parameters -> new PlainPolicy());
        register(providers, FixedPolicy.NAME, parameters -> new FixedPolicy(parameters.gamma()));
        register(providers, HfHeuristicPolicy.NAME, HfHeuristicPolicy::create);
        register(providers, GammaTunePolicy.NAME, parameters -> GammaTunePolicy.create(parameters, false));
        register(providers, GammaTunePolicy.NAME_PLUS, parameters -> GammaTunePolicy.create(parameters, true));
        register(providers, ConfidencePolicy.NAME, ConfidencePolicy::create);
        register(providers, AdaEdlPolicy.NAME, AdaEdlPolicy::create);
        register(providers, LdlpPolicy.NAME, LdlpPolicy::create);
        register(providers, GoodputPolicy.NAME, GoodputPolicy::create);
        for (SpeculationPolicyProvider provider : ServiceLoader.load(SpeculationPolicyProvider.class)) {
            providers.putIfAbsent(provider.name(), provider);
        }
        return Collections.unmodifiableMap(providers);
    }

    private static void register(Map<String, SpeculationPolicyProvider> providers, String name,
            java.util.function.Function<PolicyParameters, SpeculationPolicy> factory) {
        providers.put(name, new SpeculationPolicyProvider() {
            @Override
            public String name() {
                return name;
            }

            @Override
            public SpeculationPolicy create(PolicyParameters parameters) {
                return factory.apply(parameters);
            }
        });
    }

    /** Every selectable policy name. */
    public static Set<String> names() {
        return PROVIDERS.keySet();
    }

    /** Checks that {@code spec}'s name is a known policy (without creating one). */
    public static void requireKnown(String spec) {
        String name = spec.trim();
        int colon = name.indexOf(':');
        if (colon >= 0) {
            name = name.substring(0, colon).trim();
        }
        if (!PROVIDERS.containsKey(name)) {
            throw new UnknownPolicyException(name, names());
        }
    }

    /**
     * A factory of per-sequence policies for {@code spec} ({@code name} or {@code name:γ}); γ from the spec
     * wins over {@code defaults.gamma()}. Validates by creating one policy now, so bad settings fail at once.
     */
    public static Supplier<SpeculationPolicy> factory(String spec, PolicyParameters defaults) {
        String name = spec.trim();
        int gamma = defaults.gamma();
        int colon = name.indexOf(':');
        if (colon >= 0) {
            String gammaText = name.substring(colon + 1).trim();
            name = name.substring(0, colon).trim();
            try {
                gamma = Integer.parseInt(gammaText);
            }
            catch (NumberFormatException ex) {
                throw new IllegalArgumentException("Policy '" + spec + "': the part after ':' must be the draft length γ, an integer, but was '" + gammaText + "'");
            }
        }
        SpeculationPolicyProvider provider = PROVIDERS.get(name);
        if (provider == null) {
            throw new UnknownPolicyException(name, names());
        }
        PolicyParameters parameters = defaults.withGamma(gamma);
        provider.create(parameters);
        return () -> provider.create(parameters);
    }
}
