package dev.specula.autoconfigure.actuate;

import org.springframework.beans.factory.ObjectProvider;
import org.springframework.boot.actuate.autoconfigure.endpoint.condition.ConditionalOnAvailableEndpoint;
import org.springframework.boot.actuate.endpoint.annotation.Endpoint;
import org.springframework.boot.autoconfigure.AutoConfiguration;
import org.springframework.boot.autoconfigure.condition.ConditionalOnBean;
import org.springframework.boot.autoconfigure.condition.ConditionalOnClass;
import org.springframework.boot.autoconfigure.condition.ConditionalOnMissingBean;
import org.springframework.boot.health.autoconfigure.contributor.ConditionalOnEnabledHealthIndicator;
import org.springframework.boot.health.contributor.HealthIndicator;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

import dev.specula.autoconfigure.SpeculaModelsAutoConfiguration.ModelLocationsResolved;
import dev.specula.autoconfigure.SpeculaServingAutoConfiguration;
import dev.specula.serving.GenerationService;

/**
 * The {@code specula} health indicator and the {@code /actuator/specula} endpoint, when a
 * {@link GenerationService} exists and Spring Boot's health / actuator modules are on the
 * classpath.
 */
@AutoConfiguration(after = SpeculaServingAutoConfiguration.class)
@ConditionalOnBean(GenerationService.class)
public final class SpeculaActuatorAutoConfiguration {

    /** Name of the health indicator (from its bean name) and of the endpoint. */
    public static final String NAME = "specula";

    private SpeculaActuatorAutoConfiguration() {
    }

    /**
     * {@code management.health.specula.enabled=false} switches it off. The condition sits
     * on the method: its condition class is in spring-boot-health, which the class
     * condition checks first.
     */
    @Configuration(proxyBeanMethods = false)
    @ConditionalOnClass({ HealthIndicator.class, ConditionalOnEnabledHealthIndicator.class })
    static class HealthIndicatorConfiguration {

        @Bean
        @ConditionalOnMissingBean(name = "speculaHealthIndicator")
        @ConditionalOnEnabledHealthIndicator(NAME)
        SpeculaHealthIndicator speculaHealthIndicator(GenerationService service,
                ObjectProvider<ModelLocationsResolved> locations) {
            return new SpeculaHealthIndicator(service, modelName(locations));
        }

    }

    /**
     * Available once exposed, e.g.
     * {@code management.endpoints.web.exposure.include=health,specula}.
     */
    @Configuration(proxyBeanMethods = false)
    @ConditionalOnClass({ Endpoint.class, ConditionalOnAvailableEndpoint.class })
    static class EndpointConfiguration {

        @Bean
        @ConditionalOnMissingBean
        @ConditionalOnAvailableEndpoint
        SpeculaEndpoint speculaEndpoint(GenerationService service, ObjectProvider<ModelLocationsResolved> locations) {
            return new SpeculaEndpoint(service, modelName(locations));
        }

    }

    private static String modelName(ObjectProvider<ModelLocationsResolved> locations) {
        ModelLocationsResolved resolved = locations.getIfUnique();
        return resolved == null ? null : resolved.modelName();
    }

}
