package dev.specula.autoconfigure.diagnostics;

import org.jspecify.annotations.Nullable;
import org.springframework.boot.context.properties.bind.BindException;
import org.springframework.boot.context.properties.source.ConfigurationProperty;
import org.springframework.boot.context.properties.source.ConfigurationPropertySource;
import org.springframework.boot.context.properties.source.ConfigurationPropertySources;
import org.springframework.boot.diagnostics.AbstractFailureAnalyzer;
import org.springframework.boot.diagnostics.FailureAnalysis;
import org.springframework.core.Ordered;
import org.springframework.core.convert.ConverterNotFoundException;
import org.springframework.core.env.Environment;

import dev.specula.autoconfigure.PropertyGroups;

/**
 * A nested group of {@code specula.*} properties given a value, as
 * {@code specula.target=DIR} or {@code --specula.draft=DIR} on a command line, when it is
 * bound before {@code SpeculaRenamedPropertiesAutoConfiguration}'s check (a bean of the
 * application's own needs the chat model first). Spring Boot alone reports only that no
 * converter was found, without the value (the failure is the group's, not a property's).
 * This finds the value in the environment and names the property to set instead. Ordered
 * before Boot's own bind analyzer.
 */
public class PropertyGroupGivenAValueFailureAnalyzer extends AbstractFailureAnalyzer<BindException> implements Ordered {

    private final Environment environment;

    public PropertyGroupGivenAValueFailureAnalyzer(Environment environment) {
        this.environment = environment;
    }

    @Override
    protected @Nullable FailureAnalysis analyze(Throwable rootFailure, BindException cause) {
        if (!(cause.getCause() instanceof ConverterNotFoundException)) {
            return null;
        }
        ConfigurationProperty given = given(cause);
        if (given == null || !(given.getValue() instanceof CharSequence value)) {
            return null;
        }
        String group = cause.getName().toString();
        String instead = PropertyGroups.instead(group, value);
        if (instead == null) {
            return null;
        }
        String origin = given.getOrigin() == null ? "" : String.format("%n    Origin: %s", given.getOrigin());
        String description = String.format(
                "%s is a group of properties, not a value.%n%n    Property: %s%n    Value: %s%s", group, group, value,
                origin);
        return new FailureAnalysis(description, "Set " + instead + ".", cause);
    }

    /**
     * The value given to the group itself, with its origin, from the environment (Boot's
     * exception has none: the failure is the group's); null if there is none.
     */
    private @Nullable ConfigurationProperty given(BindException cause) {
        for (ConfigurationPropertySource source : ConfigurationPropertySources.get(environment)) {
            ConfigurationProperty property = source.getConfigurationProperty(cause.getName());
            if (property != null) {
                return property;
            }
        }
        return null;
    }

    @Override
    public int getOrder() {
        return Ordered.HIGHEST_PRECEDENCE;
    }

}
