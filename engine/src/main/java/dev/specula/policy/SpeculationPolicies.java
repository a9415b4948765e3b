package dev.specula.policy;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.ServiceLoader;
import java.util.Set;
import java.util.function.Supplier;

/**
 * The policies selectable by name: the built-ins and any
 * {@link SpeculationPolicyProvider} on the classpath. A policy is named {@code name} or
 * {@code name:γ} (e.g. {@code fixed:4}, parsed by {@link PolicySpec}).
 */
public final class SpeculationPolicies {

    private static final Map<String, SpeculationPolicyProvider> PROVIDERS = load();

    private SpeculationPolicies() {
    }

    private static Map<String, SpeculationPolicyProvider> load() {
        Map<String, SpeculationPolicyProvider> providers = new LinkedHashMap<>();
        register(providers, PlainPolicy.NAME, (parameters) -> new PlainPolicy());
        register(providers, FixedPolicy.NAME, (parameters) -> new FixedPolicy(parameters.gamma()));
        register(providers, HfHeuristicPolicy.NAME, HfHeuristicPolicy::create);
        register(providers, GammaTunePolicy.NAME, (parameters) -> GammaTunePolicy.create(parameters, false));
        register(providers, GammaTunePolicy.NAME_PLUS, (parameters) -> GammaTunePolicy.create(parameters, true));
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
        String name = PolicySpec.nameOf(spec);
        if (!PROVIDERS.containsKey(name)) {
            throw new UnknownPolicyException(name, names());
        }
    }

    /**
     * A factory of per-sequence policies for {@code spec} ({@code name} or
     * {@code name:γ}); γ from the spec wins over {@code defaults.gamma()}. Validates by
     * creating one policy now, so bad settings fail at once. Its policies share
     * {@code defaults.resources()}; when that is null the factory gets resources of its
     * own (shared by its sequences only, released when the factory is no longer
     * reachable, except an ldlp predictor's session: pass resources you close to own
     * that).
     * @throws UnknownPolicyException when no policy has that name
     * @throws InvalidPolicyOptionException when γ or an option is out of the policy's
     * range
     */
    public static Supplier<SpeculationPolicy> factory(String spec, PolicyParameters defaults) {
        PolicySpec parsed = PolicySpec.parse(spec);
        SpeculationPolicyProvider provider = PROVIDERS.get(parsed.name());
        if (provider == null) {
            throw new UnknownPolicyException(parsed.name(), names());
        }
        PolicyParameters parameters = parsed.gamma() == null ? defaults : defaults.withGamma(parsed.gamma());
        if (parameters.resources() == null) {
            parameters = parameters.withResources(new PolicyResources());
        }
        PolicyParameters checked = parameters;
        provider.create(checked);
        return () -> provider.create(checked);
    }

}
