package dev.specula.autoconfigure;

import java.util.LinkedHashMap;
import java.util.Map;

import org.springframework.ai.model.SpringAIModelProperties;
import org.springframework.boot.autoconfigure.AutoConfiguration;
import org.springframework.boot.autoconfigure.condition.ConditionalOnProperty;
import org.springframework.boot.context.properties.bind.Bindable;
import org.springframework.boot.context.properties.bind.Binder;
import org.springframework.boot.context.properties.source.InvalidConfigurationPropertyValueException;
import org.springframework.context.annotation.Bean;
import org.springframework.core.env.Environment;

/**
 * Refuses the {@code specula.*} keys that were renamed, naming the new key, and a value
 * given to a group of properties ({@code specula.policy=goodput}: Spring Boot would
 * ignore it), naming what to set instead, before any model loads: a setting is never
 * silently ignored. The renames are listed in docs/configuration.md.
 */
@AutoConfiguration(before = SpeculaModelsAutoConfiguration.class)
@ConditionalOnProperty(name = SpringAIModelProperties.CHAT_MODEL, havingValue = SpeculaModelsAutoConfiguration.PROVIDER,
        matchIfMissing = true)
public final class SpeculaRenamedPropertiesAutoConfiguration {

    /** Old key → new key. */
    static final Map<String, String> RENAMED = renamed();

    private SpeculaRenamedPropertiesAutoConfiguration() {
    }

    @Bean
    static RenamedPropertiesCheck speculaRenamedPropertiesCheck(Environment environment) {
        return new RenamedPropertiesCheck(environment);
    }

    /**
     * Done when it exists: its constructor throws on a renamed key or a group given a
     * value.
     */
    static final class RenamedPropertiesCheck {

        RenamedPropertiesCheck(Environment environment) {
            Binder binder = Binder.get(environment);
            RENAMED.forEach((oldName, newName) -> binder.bind(oldName, Bindable.of(String.class)).ifBound((value) -> {
                throw new InvalidConfigurationPropertyValueException(oldName, value,
                        "It was renamed: set " + newName + " instead.");
            }));
            for (String group : PropertyGroups.names()) {
                binder.bind(group, Bindable.of(String.class)).ifBound((value) -> {
                    throw new InvalidConfigurationPropertyValueException(group, value,
                            "It is a group of properties, not a value: set " + PropertyGroups.instead(group, value)
                                    + ".");
                });
            }
        }

    }

    private static Map<String, String> renamed() {
        Map<String, String> renamed = new LinkedHashMap<>();
        for (String key : new String[] { "enabled", "maximum-size", "time-to-live" }) {
            renamed.put("specula.cache." + key, "specula.cache.response." + key);
        }
        renamed.put("specula.scheduler.prefix-cache-size", "specula.cache.prefix.size");
        renamed.put("specula.scheduler.batching", "specula.batching.enabled");
        for (String key : new String[] { "max-batch-size", "queue-capacity", "max-wait" }) {
            renamed.put("specula.scheduler." + key, "specula.batching." + key);
        }
        renamed.put("specula.scheduler.batch-path", "specula.batching.path");
        renamed.put("specula.scheduler.stream-threads", "specula.chat.stream-threads");
        for (String key : new String[] { "failure-rate-threshold", "sliding-window-size", "minimum-number-of-calls",
                "wait-duration-in-open-state" }) {
            renamed.put("specula.resilience." + key, "specula.resilience.draft-breaker." + key);
        }
        return renamed;
    }

}
