package dev.specula.autoconfigure;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

import org.jspecify.annotations.Nullable;

/**
 * The groups of {@code specula.*} properties (the configuration metadata's groups), and
 * what to set instead when one is given a value itself ({@code specula.target=DIR},
 * {@code specula.policy=goodput}). Spring Boot ignores a value given to a top-level group
 * and fails without naming the fix for a nested one.
 */
public final class PropertyGroups {

    /**
     * Group → the property or properties to set instead ({@code %s}: the value given).
     */
    private static final Map<String, String> INSTEAD = instead();

    private PropertyGroups() {
    }

    /** The group names, e.g. {@code specula.cache.response}. */
    static Set<String> names() {
        return INSTEAD.keySet();
    }

    /**
     * What to set instead of giving {@code group} the value {@code value}; null when
     * {@code group} is not a group of Specula's.
     */
    public static @Nullable String instead(String group, Object value) {
        String instead = INSTEAD.get(group);
        return instead == null ? null : String.format(instead, value);
    }

    private static Map<String, String> instead() {
        Map<String, String> instead = new LinkedHashMap<>();
        String under = "the properties under it instead, e.g. ";
        instead.put("specula", under + SpeculaModelProperties.TARGET_LOCATION);
        for (String model : new String[] { "target", "draft", "griffin" }) {
            instead.put("specula." + model, "specula." + model + ".location=%s instead");
        }
        instead.put("specula.runtime", under + "specula.runtime.provider or specula.runtime.intra-op-threads");
        instead.put(SpeculaPolicyProperties.CONFIG_PREFIX, "specula.policy.name=%s instead");
        instead.put(SpeculaBatchingProperties.CONFIG_PREFIX, under + "specula.batching.enabled");
        instead.put(SpeculaCacheProperties.CONFIG_PREFIX,
                under + "specula.cache.response.enabled or specula.cache.prefix.size");
        instead.put("specula.cache.response", under + "specula.cache.response.enabled");
        instead.put("specula.cache.prefix", under + "specula.cache.prefix.size");
        instead.put(SpeculaChatProperties.CONFIG_PREFIX, under + "specula.chat.options.temperature");
        instead.put("specula.chat.options", under + "specula.chat.options.temperature");
        instead.put(SpeculaKvProperties.CONFIG_PREFIX, under + "specula.kv.max-bytes");
        instead.put(SpeculaResilienceProperties.CONFIG_PREFIX, under + "specula.resilience.round-timeout");
        instead.put("specula.resilience.draft-breaker",
                under + "specula.resilience.draft-breaker.failure-rate-threshold");
        instead.put("specula.resilience.goodput", under + "specula.resilience.goodput.enabled");
        return instead;
    }

}
